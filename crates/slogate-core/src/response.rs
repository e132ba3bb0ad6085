//! Response side: did each operation succeed, fail because of the client, or fail because of
//! the system?
//!
//! Classification happens in steps, each able to settle the verdict (as in linkerd's
//! classifiers): the status line, then the body at end of stream. A GraphQL `200` carrying
//! `errors` is only known at the end, like a gRPC status in trailers. The body is decoded and
//! scanned as it streams, in constant memory.

use std::collections::{BTreeMap, HashSet};
use std::io;

use crate::decode::{Encoding, StreamDecoder};
use crate::json::{Interest, JsonScanner, Key, Status, Tag, ValueKind, Visitor, ROOT};
use crate::outcome::{sentinel, Outcome};

/// Distinct error codes kept per response element; further codes count as `(other)`.
pub const MAX_CODES_PER_ELEMENT: usize = 16;
/// Longest error code kept; longer ones count as `(other)`.
pub const MAX_CODE_LEN: usize = 64;
/// Batch response elements classified at most.
pub const MAX_ELEMENTS: usize = 1024;

/// The codes slogate treats as the client's fault by default (Apollo's and common ones).
pub const DEFAULT_CLIENT_CODES: &[&str] = &[
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_REQUEST",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_SUPPORTED",
    "OPERATION_RESOLUTION_FAILURE",
];

/// The codes slogate treats as the system's fault by default.
pub const DEFAULT_SYSTEM_CODES: &[&str] = &["INTERNAL_SERVER_ERROR"];

/// The rules that turn a response into an [`Outcome`]. Every rule is configurable.
#[derive(Clone, Debug)]
pub struct ClassificationPolicy {
    /// `extensions.code` values that make an error the client's.
    pub client_codes: HashSet<String>,
    /// `extensions.code` values that make an error the system's (checked first).
    pub system_codes: HashSet<String>,
    /// Outcome of a GraphQL response without a `data` key (a request error).
    pub no_data: Outcome,
    /// Outcome of field errors whose code is in neither set (or absent).
    pub unknown_code: Outcome,
    /// Outcome of a `2xx` GraphQL response whose body is not JSON.
    pub non_json: Outcome,
    /// Outcome for a status, overriding the `4xx`/`5xx` defaults (e.g. `429`).
    pub status_overrides: BTreeMap<u16, Outcome>,
    /// Decoded response bytes inspected at most; past it, the verdict rests on what was read.
    pub max_inspect_bytes: u64,
}

impl Default for ClassificationPolicy {
    fn default() -> Self {
        ClassificationPolicy {
            client_codes: DEFAULT_CLIENT_CODES.iter().map(|c| c.to_string()).collect(),
            system_codes: DEFAULT_SYSTEM_CODES.iter().map(|c| c.to_string()).collect(),
            no_data: Outcome::ClientError,
            unknown_code: Outcome::SystemError,
            non_json: Outcome::SystemError,
            status_overrides: BTreeMap::new(),
            max_inspect_bytes: 256 * 1024 * 1024,
        }
    }
}

impl ClassificationPolicy {
    /// The outcome the status alone decides, if it does.
    pub fn status_outcome(&self, status: u16) -> Option<Outcome> {
        if let Some(o) = self.status_overrides.get(&status) {
            return Some(*o);
        }
        match status {
            500..=599 => Some(Outcome::SystemError),
            400..=499 => Some(Outcome::ClientError),
            _ => None,
        }
    }

    /// Starts classifying a response. `graphql` says whether the request went to a GraphQL
    /// endpoint; `has_body` is false for `HEAD`, `204` and `304`.
    pub fn inspect(&self, head: ResponseHead<'_>) -> ResponseInspector<'_> {
        let status_outcome = self.status_outcome(head.status);
        let wants_body =
            head.graphql && head.has_body && wants_body(head.status, head.content_type);
        let body = if !wants_body {
            None
        } else {
            let content_type = head.content_type.unwrap_or("");
            match Encoding::from_header(head.content_encoding) {
                // An encoding slogate cannot decode: the status decides.
                None => None,
                Some(_) if is_streaming(content_type) => None,
                Some(enc) => Some(Box::new(StreamDecoder::new(
                    enc,
                    BodySink {
                        scanner: JsonScanner::new(),
                        visitor: ResponseVisitor::new(self),
                        fed: 0,
                        limit: self.max_inspect_bytes,
                        limited: false,
                    },
                ))),
            }
        };
        let header_code = head
            .error_code_header
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| c.to_string());
        ResponseInspector {
            policy: self,
            status_outcome,
            body,
            header_code,
        }
    }

    fn code_class(&self, code: Option<&str>) -> CodeClass {
        match code {
            Some(c) if self.system_codes.contains(c) => CodeClass::System,
            Some(c) if self.client_codes.contains(c) => CodeClass::Client,
            _ => CodeClass::Unknown,
        }
    }
}

/// Whether a `2xx`/`3xx` body is read: always for `2xx`, for `3xx` only when it is JSON.
fn wants_body(status: u16, content_type: Option<&str>) -> bool {
    match status {
        200..=299 => true,
        300..=399 => content_type.is_some_and(is_json),
        // 4xx/5xx bodies are read for their error codes; the status decides the outcome.
        400..=599 => content_type.is_some_and(is_json),
        _ => false,
    }
}

/// `application/json`, `application/graphql-response+json`... in any case.
fn is_json(content_type: &str) -> bool {
    crate::ends_with_ignoring_case(crate::media_type(content_type), "json")
}

/// Incremental delivery and subscriptions over SSE are streams of JSON documents, not one.
fn is_streaming(content_type: &str) -> bool {
    let m = crate::media_type(content_type).as_bytes();
    m.eq_ignore_ascii_case(b"text/event-stream")
        || m.get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"multipart/"))
}

/// What the classifier needs from a response head.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResponseHead<'a> {
    /// The status code.
    pub status: u16,
    /// Whether the request went to a GraphQL endpoint.
    pub graphql: bool,
    /// False when the response cannot have a body (`HEAD`, `204`, `304`).
    pub has_body: bool,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `Content-Encoding`.
    pub content_encoding: Option<&'a str>,
    /// The configured error-code header (e.g. `X-GraphQL-Error-Code`), if present.
    pub error_code_header: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CodeClass {
    Client,
    System,
    Unknown,
}

/// What one response element (the whole response, or one batch entry) said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElementSummary {
    /// The element has a `data` key (even `null`).
    pub data_present: bool,
    /// Number of entries in `errors`.
    pub error_count: u64,
    /// Some error's code is in the system set.
    pub any_system: bool,
    /// Some error's code is in neither set (or absent).
    pub any_unknown: bool,
    /// Error entries by code: [`sentinel::NO_CODE`] when absent, [`sentinel::OTHER`] past
    /// the bounds.
    pub codes: Vec<(String, u64)>,
}

impl ElementSummary {
    fn record_error(&mut self, code: Option<&str>, class: CodeClass) {
        self.error_count += 1;
        match class {
            CodeClass::System => self.any_system = true,
            CodeClass::Unknown => self.any_unknown = true,
            CodeClass::Client => {}
        }
        let label = code.unwrap_or(sentinel::NO_CODE);
        if let Some(entry) = self.codes.iter_mut().find(|(c, _)| c == label) {
            entry.1 += 1;
        } else if self.codes.len() < MAX_CODES_PER_ELEMENT {
            self.codes.push((label.to_string(), 1));
        } else if let Some(entry) = self.codes.iter_mut().find(|(c, _)| c == sentinel::OTHER) {
            entry.1 += 1;
        } else {
            // Make room for the overflow bucket by folding the last code into it.
            let last = self.codes.pop().map_or(0, |(_, n)| n);
            self.codes.push((sentinel::OTHER.to_string(), last + 1));
        }
    }

    /// The outcome of this element under `policy`, for a `2xx`/`3xx` response.
    pub fn outcome(&self, policy: &ClassificationPolicy) -> Outcome {
        if self.error_count == 0 {
            Outcome::Success
        } else if self.any_system {
            Outcome::SystemError
        } else if !self.data_present {
            policy.no_data
        } else if !self.any_unknown {
            Outcome::ClientError
        } else {
            policy.unknown_code
        }
    }
}

// Tags of the containers the response visitor tracks.
const ELEMENT: Tag = 1;
const BATCH: Tag = 2;
const ERRORS: Tag = 3;
const ERROR: Tag = 4;
const EXTENSIONS: Tag = 5;

struct ResponseVisitor<'p> {
    policy: &'p ClassificationPolicy,
    current: ElementSummary,
    /// Code of the error entry being read: `None` absent, `Some(None)` unusable.
    error_code: Option<Option<String>>,
    elements: Vec<ElementSummary>,
    batch: bool,
    /// Elements past [`MAX_ELEMENTS`] that were not kept.
    dropped: u64,
}

impl<'p> ResponseVisitor<'p> {
    fn new(policy: &'p ClassificationPolicy) -> Self {
        ResponseVisitor {
            policy,
            current: ElementSummary::default(),
            error_code: None,
            elements: Vec::new(),
            batch: false,
            dropped: 0,
        }
    }

    fn push_element(&mut self, element: ElementSummary) {
        if self.elements.len() < MAX_ELEMENTS {
            self.elements.push(element);
        } else {
            self.dropped += 1;
        }
    }

    fn record_error_with(&mut self, code: Option<Option<String>>) {
        let code = match code {
            None => None,
            Some(Some(c)) => Some(c),
            Some(None) => Some(sentinel::OTHER.to_string()),
        };
        let class = match code.as_deref() {
            Some(sentinel::OTHER) => CodeClass::Unknown,
            c => self.policy.code_class(c),
        };
        self.current.record_error(code.as_deref(), class);
    }
}

impl Visitor for ResponseVisitor<'_> {
    fn value(&mut self, parent: Tag, key: Key<'_>, kind: ValueKind) -> Interest {
        match (parent, key, kind) {
            (ROOT, _, ValueKind::Object) => Interest::Track(ELEMENT),
            (ROOT, _, ValueKind::Array) => {
                self.batch = true;
                Interest::Track(BATCH)
            }
            (BATCH, Key::Index(_), ValueKind::Object) => Interest::Track(ELEMENT),
            (BATCH, Key::Index(_), _) => {
                // Not a GraphQL response: count it as an element whose body is not JSON.
                self.push_element(ElementSummary {
                    error_count: u64::MAX,
                    ..ElementSummary::default()
                });
                Interest::Skip
            }
            (ELEMENT, Key::Member(b"data"), _) => {
                self.current.data_present = true;
                Interest::Skip
            }
            (ELEMENT, Key::Member(b"errors"), ValueKind::Array) => Interest::Track(ERRORS),
            (ELEMENT, Key::Member(b"errors"), ValueKind::Null) => Interest::Skip,
            (ELEMENT, Key::Member(b"errors"), _) => {
                self.record_error_with(None);
                Interest::Skip
            }
            (ERRORS, Key::Index(_), ValueKind::Object) => {
                self.error_code = None;
                Interest::Track(ERROR)
            }
            (ERRORS, Key::Index(_), _) => {
                self.record_error_with(None);
                Interest::Skip
            }
            (ERROR, Key::Member(b"extensions"), ValueKind::Object) => Interest::Track(EXTENSIONS),
            (EXTENSIONS, Key::Member(b"code"), ValueKind::String) => {
                Interest::Capture(MAX_CODE_LEN + 1)
            }
            (EXTENSIONS, Key::Member(b"code"), ValueKind::Null) => Interest::Skip,
            (EXTENSIONS, Key::Member(b"code"), _) => {
                self.error_code = Some(None);
                Interest::Skip
            }
            _ => Interest::Skip,
        }
    }

    fn string(&mut self, parent: Tag, key: Key<'_>, value: &[u8], truncated: bool) {
        if parent == EXTENSIONS && key == Key::Member(b"code") {
            self.error_code = match std::str::from_utf8(value) {
                Ok(code) if !truncated && !code.is_empty() => Some(Some(code.to_string())),
                _ => Some(None),
            };
        }
    }

    fn end(&mut self, tag: Tag) {
        match tag {
            ERROR => {
                let code = self.error_code.take();
                self.record_error_with(code);
            }
            ELEMENT => {
                let element = std::mem::take(&mut self.current);
                self.push_element(element);
            }
            _ => {}
        }
    }
}

/// Feeds decoded bytes to the scanner, up to the inspection limit.
struct BodySink<'p> {
    scanner: JsonScanner,
    visitor: ResponseVisitor<'p>,
    fed: u64,
    limit: u64,
    /// Bytes arrived past the limit and were not inspected.
    limited: bool,
}

impl io::Write for BodySink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Once the body is known not to be JSON there is nothing more to learn; bytes are
        // still accepted so the decoder keeps going.
        if matches!(self.scanner.status(), Status::Invalid(_)) {
            return Ok(buf.len());
        }
        let room = self.limit.saturating_sub(self.fed);
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if take < buf.len() {
            self.limited = true;
        }
        if take > 0 {
            self.fed += take as u64;
            self.scanner.feed(&buf[..take], &mut self.visitor);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Classifies one response as its body streams; see [`ClassificationPolicy::inspect`].
pub struct ResponseInspector<'p> {
    policy: &'p ClassificationPolicy,
    status_outcome: Option<Outcome>,
    body: Option<Box<StreamDecoder<BodySink<'p>>>>,
    header_code: Option<String>,
}

/// The verdict on a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseVerdict {
    /// Per response element: its outcome and its error codes. One entry for a single response
    /// or a status-only verdict; one per element for a batch.
    pub elements: Vec<(Outcome, Vec<(String, u64)>)>,
    /// The body was a JSON array.
    pub batch: bool,
    /// The outcome for operations with no matching element (a batch answered short, or a
    /// status-only verdict).
    pub fallback: Outcome,
}

impl ResponseVerdict {
    /// The outcome and error codes of the `index`-th operation of the request.
    pub fn for_operation(&self, index: usize) -> (Outcome, &[(String, u64)]) {
        let element = if self.batch {
            self.elements.get(index)
        } else {
            self.elements.first()
        };
        match element {
            Some((o, codes)) => (*o, codes.as_slice()),
            None => (self.fallback, &[]),
        }
    }
}

impl ResponseInspector<'_> {
    /// Looks at the next body chunk, as received from upstream (possibly compressed).
    pub fn feed(&mut self, chunk: &[u8]) {
        if let Some(body) = &mut self.body {
            body.write(chunk);
        }
    }

    /// The body ended; returns the verdict.
    pub fn finish(self) -> ResponseVerdict {
        self.finish_counting_dropped().0
    }

    /// Like [`ResponseInspector::finish`], with the number of batch elements past
    /// [`MAX_ELEMENTS`] that were not classified (the operations they answer, if counted,
    /// get the verdict's `fallback`).
    pub fn finish_counting_dropped(self) -> (ResponseVerdict, u64) {
        let policy = self.policy;
        let Some(mut body) = self.body else {
            let outcome = self.status_outcome.unwrap_or(Outcome::Success);
            let verdict = ResponseVerdict {
                elements: vec![(outcome, Vec::new())],
                batch: false,
                fallback: outcome,
            };
            return (verdict, 0);
        };
        let decoded = body.finish();
        let sink = body.sink_mut();
        let status = sink.scanner.finish(&mut sink.visitor);
        let limited = sink.limited;
        let visitor = &mut sink.visitor;
        let json_ok = decoded && status == Status::Complete;
        if !json_ok && limited && status == Status::Partial {
            // Past the inspection limit: rest the verdict on what was read.
            let partial = std::mem::take(&mut visitor.current);
            visitor.push_element(partial);
        }
        let body_usable = json_ok || (limited && status == Status::Partial);
        let non_json = self.status_outcome.unwrap_or(policy.non_json);
        let mut elements: Vec<(Outcome, Vec<(String, u64)>)> = Vec::new();
        if body_usable {
            for mut element in visitor.elements.drain(..) {
                if element.error_count == u64::MAX {
                    elements.push((non_json, Vec::new()));
                    continue;
                }
                if let Some(code) = &self.header_code {
                    let class = policy.code_class(Some(code));
                    // The header speaks for the classification; the body's codes are counted.
                    let counted = element.codes.clone();
                    element.record_error(Some(code), class);
                    element.codes = counted;
                }
                let outcome = self
                    .status_outcome
                    .unwrap_or_else(|| element.outcome(policy));
                elements.push((outcome, element.codes));
            }
        }
        let batch = body_usable && visitor.batch;
        if elements.is_empty() {
            elements.push((non_json, Vec::new()));
        }
        let verdict = ResponseVerdict {
            elements,
            batch,
            fallback: non_json,
        };
        (verdict, if body_usable { visitor.dropped } else { 0 })
    }
}

/// How an exchange ended, as the proxy saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The response was delivered in full.
    Complete,
    /// No usable upstream response: refused, timed out, reset, closed mid-body.
    UpstreamFailed,
    /// The client went away before the response was complete.
    ClientGone,
}

impl Termination {
    /// The final outcome: a failed upstream is a system error even if the client also left;
    /// a client that left is `canceled`; otherwise the response's own verdict stands.
    pub fn settle(self, verdict: Outcome) -> Outcome {
        match self {
            Termination::UpstreamFailed => Outcome::SystemError,
            Termination::ClientGone => Outcome::Canceled,
            Termination::Complete => verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_without_case_or_parameters() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json(" application/graphql-response+json "));
        assert!(!is_json("text/html"));
        assert!(!is_json("son"));
        assert!(!is_json(""));
        assert!(wants_body(404, Some("APPLICATION/JSON")));
        assert!(!wants_body(302, Some("text/html; charset=utf-8")));
        assert!(wants_body(200, None));
        assert!(is_streaming("text/event-stream"));
        assert!(is_streaming("Text/Event-Stream; charset=utf-8"));
        assert!(is_streaming("multipart/mixed; boundary=\"-\""));
        assert!(is_streaming("MULTIPART/mixed"));
        assert!(!is_streaming("multipart"));
        assert!(!is_streaming("application/json"));
    }
}
