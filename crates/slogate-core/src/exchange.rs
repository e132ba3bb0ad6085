//! One exchange (a request and its response) as slogate accounts for it.
//!
//! [`Exchange`] is the per-request state machine the proxy engine drives: it is fed the
//! request's measure (decided from its head), request body chunks, the response head,
//! response body chunks, and finally how the exchange [`Ending`] went. It answers with an
//! [`Account`]: the operations with their outcomes and error codes, the inspection limit
//! hit, and the fields the access log needs. It does no I/O and reads no clock: instants
//! are given to it, so every branch of the decision tree is testable without sockets.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use slogate_core::exchange::{Ending, Exchange, Measure};
//! use slogate_core::request::{ExtractorOptions, OperationExtractor};
//! use slogate_core::response::{ClassificationPolicy, ResponseHead};
//! use slogate_core::Outcome;
//!
//! let extractor = OperationExtractor::new(ExtractorOptions::default());
//! let policy = ClassificationPolicy::default();
//! let start = Instant::now();
//! let mut exchange = Exchange::new(&extractor, &policy, start);
//! exchange.measure(Measure::graphql(&extractor, "POST", Some("application/json"), None));
//! exchange.request_chunk(br#"{"query":"mutation Enroll { enroll { id } }"}"#);
//! exchange.request_end();
//! exchange.response_head(ResponseHead {
//!     status: 200,
//!     graphql: true,
//!     has_body: true,
//!     content_type: Some("application/json"),
//!     ..ResponseHead::default()
//! }, start + Duration::from_millis(3));
//! exchange.response_chunk(br#"{"data":null,"errors":[{"message":"boom"}]}"#);
//! let account = exchange.end(Ending::Complete, start + Duration::from_millis(4)).unwrap();
//! assert_eq!(&*account.operations[0].name, "Enroll");
//! assert_eq!(account.operations[0].outcome, Outcome::SystemError);
//! assert_eq!(account.status, 200);
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::outcome::{Kind, OperationType, Outcome};
use crate::request::{ExtractedRequest, Operation, OperationExtractor, RequestInspector};
use crate::response::{ClassificationPolicy, ResponseHead, ResponseInspector, Termination};

/// Where a bound stopped slogate from reading everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectionLimit {
    /// A request body longer than the inspection cap.
    RequestBody,
    /// A batch with more operations than counted.
    Batch,
}

impl InspectionLimit {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            InspectionLimit::RequestBody => "request_body",
            InspectionLimit::Batch => "batch",
        }
    }
}

/// How a request is measured, decided from its head (and the static-file lookup).
pub enum Measure {
    /// A GraphQL endpoint: the operations are named from the body or the query string.
    Graphql(RequestInspector),
    /// A plain HTTP request under a route: one operation, `METHOD /template`.
    Route(Arc<str>),
    /// Not measured: no metric and no access-log line.
    Excluded,
}

impl Measure {
    /// A GraphQL request, inspected by `extractor`.
    pub fn graphql(
        extractor: &OperationExtractor,
        method: &str,
        content_type: Option<&str>,
        query_string: Option<&str>,
    ) -> Measure {
        Measure::Graphql(extractor.inspect(method, content_type, query_string))
    }

    /// A request named by a route, or excluded when no route matched.
    pub fn route(name: Option<&str>) -> Measure {
        match name {
            Some(n) => Measure::Route(Arc::from(n)),
            None => Measure::Excluded,
        }
    }
}

/// The request side: what is known about the operations so far.
enum RequestSide {
    /// The head has not been measured yet.
    Unmeasured,
    /// A GraphQL body is being read.
    Reading(RequestInspector),
    /// A GraphQL request whose operations are known.
    Named(ExtractedRequest, bool),
    /// A routed HTTP request.
    Route(Arc<str>),
    /// Not measured.
    Excluded,
}

/// The response side: who answered, and how far.
enum ResponseSide<'p> {
    /// No response head yet.
    Awaiting,
    /// The app answered; its body is classified as it passes.
    Proxied {
        status: u16,
        inspector: ResponseInspector<'p>,
        /// Streams and upgrades: the duration ends at the head.
        streaming: bool,
        head_at: Instant,
    },
    /// slogate answered itself (a static file, the file the app named, maintenance, a
    /// limit, a gateway error): the status is the verdict.
    Local { status: u16 },
}

/// How an exchange ended, as the engine saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The response was delivered in full.
    Complete,
    /// The upstream failed before its response head (refused, timed out, reset, garbage);
    /// slogate answered the client with `status` (502 or 504), or with nothing when it
    /// could not (`None`: the client was gone too).
    UpstreamFailed {
        /// What slogate answered.
        status: Option<u16>,
    },
    /// The upstream failed after its head, in the middle of the body.
    UpstreamBroken,
    /// The client went away before the response was complete.
    ClientGone,
}

/// One operation's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResult {
    /// The operation's name (before any cardinality guard).
    pub name: Arc<str>,
    /// Its type.
    pub op_type: OperationType,
    /// What the user experienced.
    pub outcome: Outcome,
    /// The GraphQL error codes of its response element, with counts.
    pub error_codes: Vec<(String, u64)>,
}

/// What an exchange amounts to.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// `graphql` or `http`.
    pub kind: Kind,
    /// Every operation of the request with its outcome (at least one).
    pub operations: Vec<OperationResult>,
    /// The worst outcome of the operations (the access log's `outcome`).
    pub outcome: Outcome,
    /// The status the client got (0 when it got none).
    pub status: u16,
    /// The inspection bound the request hit, if any.
    pub limit: Option<InspectionLimit>,
    /// Elements of a batch response past [`crate::response::MAX_ELEMENTS`], which were
    /// not classified: the operations they answer (if the request's were counted) got the
    /// fallback outcome. Count them with `SliMetrics::observe_dropped_elements`.
    pub dropped_elements: u64,
    /// From the first byte of the request to the end of the response (to the response
    /// head for streams and upgrades).
    pub duration: Duration,
    /// From the request sent upstream to the end of the upstream response, when both
    /// happened.
    pub upstream_duration: Option<Duration>,
    /// Request body bytes received from the client.
    pub bytes_received: u64,
    /// The upstream failed (the access log's `error` applies).
    pub upstream_failed: bool,
}

/// The per-request state machine; see the module documentation.
pub struct Exchange<'p> {
    extractor: &'p OperationExtractor,
    policy: &'p ClassificationPolicy,
    start: Instant,
    request: RequestSide,
    response: ResponseSide<'p>,
    upstream_sent: Option<Instant>,
    upstream_done: Option<Instant>,
    bytes_received: u64,
}

impl<'p> Exchange<'p> {
    /// A new exchange whose request started at `start`.
    pub fn new(
        extractor: &'p OperationExtractor,
        policy: &'p ClassificationPolicy,
        start: Instant,
    ) -> Self {
        Exchange {
            extractor,
            policy,
            start,
            request: RequestSide::Unmeasured,
            response: ResponseSide::Awaiting,
            upstream_sent: None,
            upstream_done: None,
            bytes_received: 0,
        }
    }

    /// Decides how the request is measured. Called once; a later call replaces it (a
    /// request first routed, then found to be a static file).
    pub fn measure(&mut self, measure: Measure) {
        self.request = match measure {
            Measure::Graphql(inspector) => RequestSide::Reading(inspector),
            Measure::Route(name) => RequestSide::Route(name),
            Measure::Excluded => RequestSide::Excluded,
        };
    }

    /// Whether the exchange will be recorded at all.
    pub fn is_measured(&self) -> bool {
        !matches!(
            self.request,
            RequestSide::Excluded | RequestSide::Unmeasured
        )
    }

    /// The request's kind (GraphQL endpoint or plain HTTP).
    pub fn kind(&self) -> Kind {
        match self.request {
            RequestSide::Reading(_) | RequestSide::Named(..) => Kind::Graphql,
            _ => Kind::Http,
        }
    }

    /// Whether more request body would still change the operations' names.
    pub fn wants_request_body(&self) -> bool {
        match &self.request {
            RequestSide::Reading(inspector) => !inspector.truncated(),
            _ => false,
        }
    }

    /// The next request body chunk, as the client sent it.
    pub fn request_chunk(&mut self, chunk: &[u8]) {
        self.bytes_received += chunk.len() as u64;
        if let RequestSide::Reading(inspector) = &mut self.request {
            inspector.feed(chunk);
        }
    }

    /// Whether the request only reads: GraphQL read whole whose every operation is a
    /// query. The GraphQL spec makes queries free of side effects, so sending one to the
    /// app again cannot repeat a write; a mutation, a subscription, an operation of unknown
    /// type, a body cut by the inspection cap or a plain HTTP request answer `false`.
    pub fn only_queries(&self) -> bool {
        match &self.request {
            RequestSide::Named(request, false) => {
                !request.truncated
                    && !request.operations.is_empty()
                    && request
                        .operations
                        .iter()
                        .all(|o| o.op_type == OperationType::Query)
            }
            _ => false,
        }
    }

    /// Request body bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// The request body ended: the operations are named now.
    pub fn request_end(&mut self) {
        if let RequestSide::Reading(_) = self.request {
            let RequestSide::Reading(inspector) =
                std::mem::replace(&mut self.request, RequestSide::Unmeasured)
            else {
                return;
            };
            let truncated = inspector.truncated();
            self.request = RequestSide::Named(inspector.finish(self.extractor), truncated);
        }
    }

    /// The request head (and what body was ready) went upstream.
    pub fn upstream_sent(&mut self, at: Instant) {
        self.upstream_sent = Some(at);
    }

    /// The app's response head. Informational (1xx but 101) heads are ignored.
    pub fn response_head(&mut self, head: ResponseHead<'_>, at: Instant) {
        let status = head.status;
        if (100..200).contains(&status) && status != 101 {
            return;
        }
        let streaming = status == 101
            || head
                .content_type
                .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let head = ResponseHead {
            graphql: self.kind() == Kind::Graphql,
            ..head
        };
        self.response = ResponseSide::Proxied {
            status,
            inspector: self.policy.inspect(head),
            streaming,
            head_at: at,
        };
    }

    /// The next response body chunk, as the app sent it (possibly compressed).
    pub fn response_chunk(&mut self, chunk: &[u8]) {
        if let ResponseSide::Proxied { inspector, .. } = &mut self.response {
            inspector.feed(chunk);
        }
    }

    /// The app's response body ended.
    pub fn response_end(&mut self, at: Instant) {
        self.upstream_done = Some(at);
    }

    /// slogate answered the client itself with `status` (a file, maintenance, a limit, a
    /// gateway error page). Replaces whatever the app answered (X-Accel-Redirect).
    pub fn answer_locally(&mut self, status: u16) {
        self.response = ResponseSide::Local { status };
    }

    /// The status of the response the client is getting, if there is one.
    pub fn status(&self) -> Option<u16> {
        match &self.response {
            ResponseSide::Awaiting => None,
            ResponseSide::Proxied { status, .. } | ResponseSide::Local { status } => Some(*status),
        }
    }

    /// The exchange is over: what it amounts to, or `None` when it is not measured or was
    /// already accounted for (an exchange ends once, whoever calls first).
    pub fn end(&mut self, ending: Ending, at: Instant) -> Option<Account> {
        self.request_end();
        let kind = self.kind();
        let response = std::mem::replace(&mut self.response, ResponseSide::Awaiting);
        let (operations, limit) = match std::mem::replace(&mut self.request, RequestSide::Excluded)
        {
            RequestSide::Named(extracted, request_truncated) => {
                let limit = if request_truncated {
                    Some(InspectionLimit::RequestBody)
                } else if extracted.truncated {
                    Some(InspectionLimit::Batch)
                } else {
                    None
                };
                let mut ops = extracted.operations;
                if ops.is_empty() {
                    ops.push(Operation::invalid());
                }
                (ops, limit)
            }
            RequestSide::Route(name) => (
                vec![Operation {
                    name,
                    op_type: OperationType::Http,
                }],
                None,
            ),
            RequestSide::Excluded | RequestSide::Unmeasured | RequestSide::Reading(_) => {
                return None
            }
        };
        let termination = match ending {
            Ending::Complete => Termination::Complete,
            Ending::UpstreamFailed { .. } | Ending::UpstreamBroken => Termination::UpstreamFailed,
            Ending::ClientGone => Termination::ClientGone,
        };
        let (status, (verdict, dropped_elements), end) = match response {
            ResponseSide::Proxied {
                status,
                inspector,
                streaming,
                head_at,
            } => (
                status,
                inspector.finish_counting_dropped(),
                if streaming { head_at } else { at },
            ),
            ResponseSide::Local { status } => (status, (self.status_verdict(status), 0), at),
            ResponseSide::Awaiting => {
                let status = match ending {
                    Ending::UpstreamFailed { status } => status.unwrap_or(0),
                    _ => 0,
                };
                (status, (self.status_verdict(status), 0), at)
            }
        };
        let mut worst = Outcome::Success;
        let operations: Vec<OperationResult> = operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                let (outcome, codes) = verdict.for_operation(i);
                let outcome = termination.settle(outcome);
                worst = worst.worse(outcome);
                OperationResult {
                    name: op.name,
                    op_type: op.op_type,
                    outcome,
                    error_codes: codes.to_vec(),
                }
            })
            .collect();
        let upstream_duration = match (self.upstream_sent, self.upstream_done) {
            (Some(sent), Some(done)) => Some(done.saturating_duration_since(sent)),
            _ => None,
        };
        Some(Account {
            kind,
            operations,
            outcome: worst,
            status,
            limit,
            dropped_elements,
            duration: end.saturating_duration_since(self.start),
            upstream_duration,
            bytes_received: self.bytes_received,
            upstream_failed: matches!(
                ending,
                Ending::UpstreamFailed { .. } | Ending::UpstreamBroken
            ),
        })
    }

    fn status_verdict(&self, status: u16) -> crate::response::ResponseVerdict {
        let outcome = self
            .policy
            .status_outcome(status)
            .unwrap_or(Outcome::Success);
        crate::response::ResponseVerdict {
            elements: vec![(outcome, Vec::new())],
            batch: false,
            fallback: outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ExtractorOptions;

    struct Setup {
        extractor: OperationExtractor,
        policy: ClassificationPolicy,
        t0: Instant,
    }

    fn setup() -> Setup {
        Setup {
            extractor: OperationExtractor::new(ExtractorOptions::default()),
            policy: ClassificationPolicy::default(),
            t0: Instant::now(),
        }
    }

    fn ms(s: &Setup, n: u64) -> Instant {
        s.t0 + Duration::from_millis(n)
    }

    fn json_head(status: u16) -> ResponseHead<'static> {
        ResponseHead {
            status,
            has_body: true,
            content_type: Some("application/json"),
            ..ResponseHead::default()
        }
    }

    fn graphql<'a>(s: &'a Setup, body: &[u8]) -> Exchange<'a> {
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        e.measure(Measure::graphql(
            &s.extractor,
            "POST",
            Some("application/json"),
            None,
        ));
        e.request_chunk(body);
        e
    }

    const GET_COURSE: &[u8] = br#"{"query":"query GetCourse { course { id } }"}"#;
    const BATCH: &[u8] = br#"[{"query":"query A { a }"},{"query":"mutation B { b }"}]"#;

    fn outcomes(a: &Account) -> Vec<(String, Outcome)> {
        a.operations
            .iter()
            .map(|o| (o.name.to_string(), o.outcome))
            .collect()
    }

    #[test]
    fn only_a_request_read_whole_of_queries_only_may_be_sent_twice() {
        let s = setup();
        let named = |body: &[u8]| {
            let mut e = graphql(&s, body);
            e.request_end();
            e.only_queries()
        };
        assert!(named(GET_COURSE));
        assert!(named(br#"[{"query":"query A { a }"},{"query":"{ b }"}]"#));
        assert!(!named(BATCH), "a batch with a mutation");
        assert!(!named(br#"{"query":"mutation M { m }"}"#));
        assert!(!named(br#"{"query":"subscription S { s }"}"#));
        assert!(!named(
            br#"{"query":"query A { a } mutation B { b }","operationName":"B"}"#
        ));
        assert!(!named(br#"{"query":"query A { a"#), "unreadable");
        assert!(!named(b"[]"));
        // Not before the body ended, nor past the inspection cap, nor for plain HTTP.
        assert!(!graphql(&s, GET_COURSE).only_queries());
        let small = OperationExtractor::new(ExtractorOptions {
            max_inspect_bytes: 16,
            ..ExtractorOptions::default()
        });
        let mut e = Exchange::new(&small, &s.policy, s.t0);
        e.measure(Measure::graphql(
            &small,
            "POST",
            Some("application/json"),
            None,
        ));
        e.request_chunk(GET_COURSE);
        e.request_end();
        assert!(!e.only_queries(), "cut by the inspection cap");
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        e.measure(Measure::route(Some("GET /courses/{id}")));
        assert!(!e.only_queries());
    }

    #[test]
    fn success_with_upstream_timing() {
        let s = setup();
        let mut e = graphql(&s, GET_COURSE);
        e.request_end();
        e.upstream_sent(ms(&s, 1));
        e.response_head(json_head(200), ms(&s, 5));
        e.response_chunk(br#"{"data":{"course":{"id":"1"}}}"#);
        e.response_end(ms(&s, 6));
        let a = e.end(Ending::Complete, ms(&s, 7)).unwrap();
        assert_eq!(outcomes(&a), vec![("GetCourse".into(), Outcome::Success)]);
        assert_eq!(a.kind, Kind::Graphql);
        assert_eq!(a.duration, Duration::from_millis(7));
        assert_eq!(a.upstream_duration, Some(Duration::from_millis(5)));
        assert_eq!(a.bytes_received, GET_COURSE.len() as u64);
        assert_eq!(a.limit, None);
        assert!(!a.upstream_failed);
    }

    #[test]
    fn errors_with_codes_split_client_from_system() {
        let s = setup();
        let mut e = graphql(&s, GET_COURSE);
        e.response_head(json_head(200), ms(&s, 1));
        e.response_chunk(
            br#"{"data":{"course":null},"errors":[{"message":"x","extensions":{"code":"NOT_FOUND"}}]}"#,
        );
        let a = e.end(Ending::Complete, ms(&s, 2)).unwrap();
        assert_eq!(a.outcome, Outcome::ClientError);
        assert_eq!(a.operations[0].error_codes, vec![("NOT_FOUND".into(), 1)]);
    }

    #[test]
    fn a_failed_upstream_before_the_head_is_a_system_error_with_the_status_answered() {
        let s = setup();
        let mut e = graphql(&s, GET_COURSE);
        e.upstream_sent(ms(&s, 1));
        let a = e
            .end(Ending::UpstreamFailed { status: Some(502) }, ms(&s, 3))
            .unwrap();
        assert!(
            e.end(Ending::Complete, ms(&s, 4)).is_none(),
            "an exchange is accounted for once"
        );
        assert_eq!(a.status, 502);
        assert_eq!(a.outcome, Outcome::SystemError);
        assert!(a.upstream_failed);
        assert_eq!(&*a.operations[0].name, "GetCourse");
        assert_eq!(a.upstream_duration, None);
    }

    #[test]
    fn a_body_broken_after_a_good_head_is_a_system_error() {
        let s = setup();
        let mut e = graphql(&s, GET_COURSE);
        e.response_head(json_head(200), ms(&s, 1));
        e.response_chunk(br#"{"data":{"cou"#);
        let a = e.end(Ending::UpstreamBroken, ms(&s, 2)).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.outcome, Outcome::SystemError);
    }

    #[test]
    fn a_client_that_leaves_is_canceled_unless_the_upstream_failed() {
        let s = setup();
        let mut e = graphql(&s, GET_COURSE);
        e.response_head(json_head(200), ms(&s, 1));
        let a = e.end(Ending::ClientGone, ms(&s, 2)).unwrap();
        assert_eq!(a.outcome, Outcome::Canceled);
        let mut e = graphql(&s, GET_COURSE);
        let a = e.end(Ending::ClientGone, ms(&s, 2)).unwrap();
        assert_eq!(a.outcome, Outcome::Canceled);
        assert_eq!(a.status, 0);
    }

    #[test]
    fn local_answers_are_judged_by_status() {
        let s = setup();
        for (status, want) in [
            (413, Outcome::ClientError),
            (503, Outcome::SystemError),
            (200, Outcome::Success),
            (304, Outcome::Success),
        ] {
            let mut e = graphql(&s, GET_COURSE);
            e.answer_locally(status);
            let a = e.end(Ending::Complete, ms(&s, 1)).unwrap();
            assert_eq!((a.status, a.outcome), (status, want));
        }
    }

    #[test]
    fn a_file_named_by_the_app_replaces_its_answer() {
        let s = setup();
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        e.measure(Measure::route(Some("GET /downloads/:id")));
        e.response_head(json_head(200), ms(&s, 1));
        e.answer_locally(206);
        let a = e.end(Ending::Complete, ms(&s, 2)).unwrap();
        assert_eq!(a.status, 206);
        assert_eq!(a.kind, Kind::Http);
        assert_eq!(a.operations[0].op_type, OperationType::Http);
        assert_eq!(&*a.operations[0].name, "GET /downloads/:id");
    }

    #[test]
    fn excluded_and_unmeasured_requests_amount_to_nothing() {
        let s = setup();
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        assert!(!e.is_measured());
        e.measure(Measure::route(None));
        assert!(!e.is_measured());
        e.response_head(json_head(500), ms(&s, 1));
        assert!(e.end(Ending::Complete, ms(&s, 1)).is_none());
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        assert!(e.end(Ending::Complete, ms(&s, 1)).is_none());
    }

    #[test]
    fn batches_take_one_element_each_and_the_worst_is_reported() {
        let s = setup();
        let mut e = graphql(&s, BATCH);
        e.response_head(json_head(200), ms(&s, 1));
        e.response_chunk(br#"[{"data":{"a":1}},{"data":null,"errors":[{"message":"x"}]}]"#);
        let a = e.end(Ending::Complete, ms(&s, 2)).unwrap();
        assert_eq!(
            outcomes(&a),
            vec![
                ("A".into(), Outcome::Success),
                ("B".into(), Outcome::SystemError)
            ]
        );
        assert_eq!(a.outcome, Outcome::SystemError);
    }

    #[test]
    fn batch_elements_past_the_classification_bound_are_counted() {
        use crate::response::MAX_ELEMENTS;
        let s = setup();
        let mut e = graphql(&s, BATCH);
        e.response_head(json_head(200), ms(&s, 1));
        let body = format!("[{}]", vec![r#"{"data":{}}"#; MAX_ELEMENTS + 3].join(","));
        e.response_chunk(body.as_bytes());
        let a = e.end(Ending::Complete, ms(&s, 2)).unwrap();
        assert_eq!(a.dropped_elements, 3);
        assert_eq!(a.outcome, Outcome::Success);

        let mut e = graphql(&s, BATCH);
        e.response_head(json_head(200), ms(&s, 1));
        e.response_chunk(br#"[{"data":{"a":1}},{"data":{"b":1}}]"#);
        let a = e.end(Ending::Complete, ms(&s, 2)).unwrap();
        assert_eq!(a.dropped_elements, 0);
    }

    #[test]
    fn streams_end_at_the_head() {
        let s = setup();
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        e.measure(Measure::route(Some("GET /events")));
        e.response_head(
            ResponseHead {
                status: 200,
                has_body: true,
                content_type: Some("text/event-stream"),
                ..ResponseHead::default()
            },
            ms(&s, 2),
        );
        e.response_chunk(b"data: 1\n\n");
        let a = e.end(Ending::ClientGone, ms(&s, 9000)).unwrap();
        assert_eq!(a.duration, Duration::from_millis(2));
        let mut e = Exchange::new(&s.extractor, &s.policy, s.t0);
        e.measure(Measure::route(Some("GET /cable")));
        e.response_head(
            ResponseHead {
                status: 101,
                ..ResponseHead::default()
            },
            ms(&s, 3),
        );
        let a = e.end(Ending::Complete, ms(&s, 60_000)).unwrap();
        assert_eq!(
            (a.duration, a.outcome),
            (Duration::from_millis(3), Outcome::Success)
        );
    }

    #[test]
    fn informational_heads_are_skipped() {
        let s = setup();
        let mut e = graphql(&s, GET_COURSE);
        e.response_head(json_head(100), ms(&s, 1));
        assert_eq!(e.status(), None);
        e.response_head(json_head(200), ms(&s, 2));
        e.response_chunk(br#"{"data":{}}"#);
        let a = e.end(Ending::Complete, ms(&s, 3)).unwrap();
        assert_eq!((a.status, a.outcome), (200, Outcome::Success));
    }

    #[test]
    fn a_request_past_the_inspection_cap_reports_the_limit() {
        let s = Setup {
            extractor: OperationExtractor::new(ExtractorOptions {
                max_inspect_bytes: 16,
                ..ExtractorOptions::default()
            }),
            ..setup()
        };
        let mut e = graphql(&s, GET_COURSE);
        assert!(!e.wants_request_body());
        e.answer_locally(200);
        let a = e.end(Ending::Complete, ms(&s, 1)).unwrap();
        assert_eq!(a.limit, Some(InspectionLimit::RequestBody));
        assert_eq!(&*a.operations[0].name, crate::sentinel::INVALID);
    }

    #[test]
    fn a_batch_past_the_batch_limit_reports_it() {
        let s = Setup {
            extractor: OperationExtractor::new(ExtractorOptions {
                max_batch: 1,
                ..ExtractorOptions::default()
            }),
            ..setup()
        };
        let mut e = graphql(&s, BATCH);
        e.answer_locally(200);
        let a = e.end(Ending::Complete, ms(&s, 1)).unwrap();
        assert_eq!(a.limit, Some(InspectionLimit::Batch));
        assert_eq!(a.operations.len(), 1);
    }

    #[test]
    fn a_graphql_request_without_a_body_is_invalid() {
        let s = setup();
        let mut e = graphql(&s, b"");
        e.answer_locally(400);
        let a = e.end(Ending::Complete, ms(&s, 1)).unwrap();
        assert_eq!(&*a.operations[0].name, crate::sentinel::INVALID);
        assert_eq!(a.outcome, Outcome::ClientError);
    }
}
