//! The pingora [`ProxyHttp`] implementation: each phase hands what it sees to slogate-core
//! and the verdict is recorded in `logging`, which pingora calls for every request, failed
//! ones included.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use slogate_core::request::{ExtractedRequest, Operation, RequestInspector};
use slogate_core::response::{ResponseHead, ResponseInspector, ResponseVerdict, Termination};
use slogate_core::{Kind, OperationType, Outcome};
use slogate_metrics::{InspectionLimit, RequestLabels};

use crate::access_log::{rfc3339, AccessRecord, LoggedOperation};
use crate::request_id;
use crate::runtime::Runtime;

/// slogate's proxy logic over a shared [`Runtime`].
pub struct SlogateProxy {
    rt: &'static Runtime,
}

impl SlogateProxy {
    /// A proxy over `rt` (which lives as long as the process).
    pub fn new(rt: &'static Runtime) -> Self {
        SlogateProxy { rt }
    }
}

/// What slogate knows about one request as it goes through the phases.
pub struct RequestCtx {
    start: Instant,
    started_at: SystemTime,
    kind: Kind,
    excluded: bool,
    http_operation: Option<Arc<str>>,
    inspector: Option<RequestInspector>,
    request_truncated: bool,
    extracted: Option<ExtractedRequest>,
    response: Option<ResponseInspector<'static>>,
    upstream_sent: Option<Instant>,
    upstream_done: Option<Instant>,
    backend: Option<usize>,
    request_id: String,
    bytes_received: usize,
}

impl RequestCtx {
    fn finish_request(&mut self, rt: &Runtime) {
        if let Some(inspector) = self.inspector.take() {
            self.request_truncated = inspector.truncated();
            self.extracted = Some(inspector.finish(&rt.extractor));
        }
    }
}

#[async_trait]
impl ProxyHttp for SlogateProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            started_at: SystemTime::now(),
            kind: Kind::Http,
            excluded: false,
            http_operation: None,
            inspector: None,
            request_truncated: false,
            extracted: None,
            response: None,
            upstream_sent: None,
            upstream_done: None,
            backend: None,
            request_id: String::new(),
            bytes_received: 0,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let req = session.req_header();
        ctx.request_id = match req.headers.get("x-request-id") {
            Some(v) if request_id::is_acceptable(v.as_bytes()) => {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            }
            _ => request_id::generate(),
        };
        let path = req.uri.path();
        let method = req.method.as_str();
        if self.rt.is_graphql_path(path) {
            ctx.kind = Kind::Graphql;
            let content_type = req
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let inspector = self
                .rt
                .extractor
                .inspect(method, content_type, req.uri.query());
            ctx.inspector = Some(inspector);
            if session.as_mut().is_body_empty() {
                ctx.finish_request(self.rt);
            }
        } else {
            match self.rt.config.routes.name(method, path) {
                Some(name) => ctx.http_operation = Some(Arc::from(name)),
                None => ctx.excluded = true,
            }
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(chunk) = body {
            ctx.bytes_received += chunk.len();
            if let Some(inspector) = &mut ctx.inspector {
                inspector.feed(chunk);
            }
        }
        if end_of_stream {
            ctx.finish_request(self.rt);
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match self.rt.backends.select() {
            Some((i, peer)) => {
                ctx.backend = Some(i);
                Ok(peer)
            }
            None => Error::e_explain(
                ErrorType::ConnectNoRoute,
                "every backend is failing its health check",
            )
            .map_err(|e| e.into_up()),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_request.insert_header("x-request-id", ctx.request_id.as_str())?;
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        if (100..200).contains(&status) && status != 101 {
            return Ok(());
        }
        let headers = &upstream_response.headers;
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let head_request = session.req_header().method == http::Method::HEAD;
        let error_code_header = self.rt.config.error_code_header.as_deref().and_then(text);
        ctx.response = Some(self.rt.config.policy.inspect(ResponseHead {
            status,
            graphql: ctx.kind == Kind::Graphql,
            has_body: !head_request && !matches!(status, 101 | 204 | 304),
            content_type: text("content-type"),
            content_encoding: text("content-encoding"),
            error_code_header,
        }));
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header("x-request-id", ctx.request_id.as_str())?;
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let (Some(chunk), Some(response)) = (body.as_ref(), ctx.response.as_mut()) {
            response.feed(chunk);
        }
        if end_of_stream {
            ctx.upstream_done = Some(Instant::now());
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = error_status(e);
        if code > 0 {
            if let Err(write_err) = session.respond_error(code).await {
                tracing::debug!("could not send the error response: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if ctx.excluded {
            return;
        }
        if e.is_some() && ctx.inspector.is_some() {
            read_unsent_body(session, ctx).await;
        }
        ctx.finish_request(self.rt);
        let duration = ctx.start.elapsed().as_secs_f64();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let termination = termination(e, status);
        let policy = &self.rt.config.policy;
        let verdict = match ctx.response.take() {
            Some(r) => r.finish(),
            None => status_only(policy.status_outcome(status).unwrap_or(Outcome::Success)),
        };
        let operations = self.operations(ctx);
        let rt = self.rt;
        let service = rt.service();
        let mut logged = Vec::with_capacity(operations.len());
        let mut worst = Outcome::Success;
        for (i, op) in operations.iter().enumerate() {
            let (outcome, codes) = verdict.for_operation(i);
            let outcome = termination.settle(outcome);
            worst = worse(worst, outcome);
            let label = self.operation_label(op, ctx.kind);
            rt.metrics.observe_request(
                &RequestLabels {
                    service,
                    kind: ctx.kind,
                    operation: &label,
                    operation_type: op.op_type,
                    outcome,
                },
                duration,
            );
            let mut logged_codes = Vec::with_capacity(codes.len());
            for (code, n) in codes {
                let (code_label, replaced) = rt.guards.error_codes.admit_str(code);
                if replaced {
                    rt.metrics.observe_overflow(service, "code");
                }
                rt.metrics
                    .observe_graphql_errors(service, &label, &code_label, *n);
                logged_codes.push((code.as_str(), *n));
            }
            logged.push((label, op.op_type, outcome, logged_codes));
        }
        self.observe_limits(ctx);
        if rt.access_log.enabled() {
            self.log_access(session, ctx, e, status, duration, worst, &logged);
        }
    }
}

/// When the upstream failed before the request body was read (connection refused, no healthy
/// backend), the body is still in the socket: read what the inspector needs, briefly, so the
/// failure is counted against the right operation. The client already has its 502.
async fn read_unsent_body(session: &mut Session, ctx: &mut RequestCtx) {
    let read = async {
        while !session.is_body_done() {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    let Some(inspector) = ctx.inspector.as_mut() else {
                        break;
                    };
                    inspector.feed(&chunk);
                    if inspector.truncated() {
                        break;
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_millis(250), read).await;
}

/// The status nginx would answer for a proxying failure: 504 for upstream timeouts, 502 for
/// other upstream failures, 400/408 for bad or slow clients, nothing if the client is gone.
pub fn error_status(e: &Error) -> u16 {
    use ErrorType::*;
    match e.etype() {
        HTTPStatus(code) => *code,
        etype => match e.esource() {
            ErrorSource::Upstream => match etype {
                ConnectTimedout | ReadTimedout | WriteTimedout => 504,
                _ => 502,
            },
            ErrorSource::Downstream => match etype {
                WriteError | ReadError | ConnectionClosed => 0,
                ReadTimedout => 408,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// How the exchange ended: an upstream (or internal) failure, a client that left, or a
/// response delivered (including errors answered to a bad client).
fn termination(e: Option<&Error>, status: u16) -> Termination {
    let Some(e) = e else {
        return Termination::Complete;
    };
    match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(_)) => Termination::Complete,
        (ErrorSource::Downstream, _) if (400..500).contains(&status) => Termination::Complete,
        (ErrorSource::Downstream, _) => Termination::ClientGone,
        _ => Termination::UpstreamFailed,
    }
}

fn status_only(outcome: Outcome) -> ResponseVerdict {
    ResponseVerdict {
        elements: vec![(outcome, Vec::new())],
        batch: false,
        fallback: outcome,
    }
}

/// The outcome that says more about the system: system_error > client_error > canceled >
/// success.
fn worse(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Success => 0,
        Outcome::Canceled => 1,
        Outcome::ClientError => 2,
        Outcome::SystemError => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

type LoggedOp<'a> = (Arc<str>, OperationType, Outcome, Vec<(&'a str, u64)>);

impl SlogateProxy {
    fn operations(&self, ctx: &RequestCtx) -> Vec<Operation> {
        match ctx.kind {
            Kind::Graphql => ctx
                .extracted
                .as_ref()
                .map(|r| r.operations.clone())
                .filter(|ops| !ops.is_empty())
                .unwrap_or_else(|| vec![Operation::invalid()]),
            Kind::Http => vec![Operation {
                name: ctx
                    .http_operation
                    .clone()
                    .unwrap_or_else(|| Arc::from("OTHER /")),
                op_type: OperationType::Http,
            }],
        }
    }

    fn operation_label(&self, op: &Operation, kind: Kind) -> Arc<str> {
        let guard = match kind {
            Kind::Graphql => &self.rt.guards.graphql_operations,
            Kind::Http => &self.rt.guards.http_routes,
        };
        let (label, replaced) = guard.admit(&op.name);
        if replaced {
            self.rt
                .metrics
                .observe_overflow(self.rt.service(), "operation");
        }
        label
    }

    fn observe_limits(&self, ctx: &RequestCtx) {
        let service = self.rt.service();
        if ctx.request_truncated {
            self.rt
                .metrics
                .observe_limit(service, InspectionLimit::RequestBody);
        } else if ctx.extracted.as_ref().is_some_and(|r| r.truncated) {
            self.rt
                .metrics
                .observe_limit(service, InspectionLimit::Batch);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log_access(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        e: Option<&Error>,
        status: u16,
        duration: f64,
        worst: Outcome,
        logged: &[LoggedOp<'_>],
    ) {
        let req = session.req_header();
        let path = if self.rt.config.access_log.include_query {
            req.uri.path_and_query().map_or("/", |p| p.as_str())
        } else {
            req.uri.path()
        };
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet().map(|i| i.ip().to_string()))
            .unwrap_or_else(|| "unix".to_string());
        let upstream_duration = match (ctx.upstream_sent, ctx.upstream_done) {
            (Some(sent), Some(done)) => Some(done.duration_since(sent).as_secs_f64()),
            _ => None,
        };
        let record = AccessRecord {
            time: rfc3339(ctx.started_at),
            request_id: &ctx.request_id,
            client,
            method: req.method.as_str(),
            path,
            status,
            duration,
            upstream_duration,
            upstream: ctx.backend.map(|i| self.rt.backends.label(i)),
            bytes_sent: session.body_bytes_sent(),
            bytes_received: ctx.bytes_received,
            kind: ctx.kind.as_str(),
            service: self.rt.service(),
            outcome: worst.as_str(),
            operations: logged
                .iter()
                .map(|(name, t, o, codes)| LoggedOperation {
                    name,
                    op_type: t.as_str(),
                    outcome: o.as_str(),
                    error_codes: codes.clone(),
                })
                .collect(),
            error: e.map(|e| e.to_string()),
            user_agent: req.headers.get("user-agent").and_then(|v| v.to_str().ok()),
        };
        self.rt.access_log.write(&record);
    }
}
