//! The pingora [`ProxyHttp`] implementation: each phase hands what it sees to slogate-core
//! (or to the nginx-like edge features) and the verdict is recorded in `logging`, which
//! pingora calls for every request, failed ones included.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::modules::http::compression::ResponseCompression;
use pingora_core::protocols::http::compression::Algorithm;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use slogate_config::CompressionAlgorithm;
use slogate_core::request::{ExtractedRequest, Operation, RequestInspector};
use slogate_core::response::{ResponseHead, ResponseInspector, ResponseVerdict, Termination};
use slogate_core::{Kind, OperationType, Outcome};
use slogate_metrics::{InspectionLimit, RequestLabels};

use crate::access_log::{rfc3339, AccessRecord, LoggedOperation};
use crate::forwarded::{self, Arrival, Client};
use crate::request_id;
use crate::runtime::Runtime;
use crate::static_files::{self, FoundFile};

const X_REQUEST_ID: &str = "X-Request-Id";

/// The error kind that turns an `X-Accel-Redirect` answer into a file served by slogate.
const SENDFILE: ErrorType = ErrorType::Custom("slogate sendfile");

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
    /// When the response head arrived; the duration of streams and upgrades ends here.
    head_at: Option<Instant>,
    streaming: bool,
    backend: Option<usize>,
    connect_attempts: usize,
    request_id: String,
    /// The id was made by slogate (the request had none, or an unusable one).
    request_id_generated: bool,
    bytes_received: usize,
    client: Option<Client>,
    tls: bool,
    /// Answered by slogate itself (static file, maintenance, 413): the status.
    served: Option<u16>,
    /// The app answered with X-Accel-Redirect / X-Sendfile to this file.
    sendfile: Option<(FoundFile, Vec<(String, String)>)>,
    /// Read the body after a failure, to name the operation.
    name_after_failure: bool,
}

impl RequestCtx {
    fn finish_request(&mut self, rt: &Runtime) {
        if let Some(inspector) = self.inspector.take() {
            self.request_truncated = inspector.truncated();
            self.extracted = Some(inspector.finish(&rt.extractor));
        }
    }
}

fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
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
            head_at: None,
            streaming: false,
            backend: None,
            connect_attempts: 0,
            request_id: String::new(),
            request_id_generated: false,
            bytes_received: 0,
            client: None,
            tls: false,
            served: None,
            sendfile: None,
            name_after_failure: true,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The compression module reads Accept-Encoding only when enabled at request time;
        // each response then decides (see `compress_or_not`).
        let settings = &self.rt.config.compression;
        if settings.enabled {
            if let Some(module) = session
                .downstream_modules_ctx
                .get_mut::<ResponseCompression>()
            {
                for (alg, level) in &settings.algorithms {
                    module.adjust_algorithm_level(algorithm(*alg), *level);
                }
            }
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.identify(session, ctx);
        let rt = self.rt;
        session.set_read_timeout(Some(rt.config.server.client_body_timeout));
        let path = session.req_header().uri.path().to_string();
        if rt.pages.maintenance_on() && !rt.pages.allowed_in_maintenance(&path) {
            self.name_request(session, ctx, &path);
            let hsts = self.hsts(ctx);
            rt.pages
                .respond(session, 503, &self.extra_headers(ctx, hsts.as_deref()))
                .await?;
            ctx.served = Some(503);
            return Ok(true);
        }
        if let Some(limit) = rt.config.server.max_body_size {
            let declared = header(session.req_header(), "content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|len| len > limit) {
                // Answered before any upstream call; the body is never read.
                self.name_request(session, ctx, &path);
                ctx.name_after_failure = false;
                let hsts = self.hsts(ctx);
                rt.pages
                    .respond(session, 413, &self.extra_headers(ctx, hsts.as_deref()))
                    .await?;
                ctx.served = Some(413);
                return Ok(true);
            }
        }
        if let Some(status) = self.try_static(session, ctx, &path).await? {
            ctx.served = Some(status);
            return Ok(true);
        }
        self.name_request(session, ctx, &path);
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
            if let Some(limit) = self.rt.config.server.max_body_size {
                if ctx.bytes_received as u64 > limit {
                    // A chunked body that turned out too large.
                    ctx.name_after_failure = false;
                    return Error::e_explain(
                        ErrorType::HTTPStatus(413),
                        "request body over server.max_body_size",
                    );
                }
            }
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
        ctx.connect_attempts += 1;
        let (i, peer) = self.rt.backends.select();
        ctx.backend = Some(i);
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing reached the app: trying the next backend is safe, POST included.
        if ctx.connect_attempts < self.rt.backends.all().len() {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let fallback = Client {
            peer: None,
            trusted: false,
            ip: None,
        };
        let arrival = Arrival {
            client: ctx.client.as_ref().unwrap_or(&fallback),
            scheme: if ctx.tls { "https" } else { "http" },
            port: session
                .server_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.port()),
        };
        forwarded::set_upstream_headers(upstream_request, &arrival)?;
        if ctx.request_id_generated {
            upstream_request.insert_header(X_REQUEST_ID, ctx.request_id.as_str())?;
        }
        match &self.rt.accel_mapping {
            Some(mapping) => {
                // Rack::Sendfile reads both (newer Racks only the mapping).
                upstream_request.insert_header("x-sendfile-type", "X-Accel-Redirect")?;
                upstream_request.insert_header("x-accel-mapping", mapping.as_str())?;
            }
            None => {
                for name in ["x-accel-mapping", "x-sendfile-type"] {
                    if upstream_request.headers.contains_key(name) {
                        upstream_request.remove_header(name);
                    }
                }
            }
        }
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
        ctx.head_at = Some(Instant::now());
        if self.rt.config.static_files.sendfile && self.sendfile(session, upstream_response, ctx) {
            return Error::e_explain(SENDFILE, "the app named a file for slogate to serve");
        }
        let headers = &upstream_response.headers;
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let content_type = text("content-type");
        ctx.streaming =
            status == 101 || content_type.is_some_and(|ct| ct.starts_with("text/event-stream"));
        let head_request = session.req_header().method == http::Method::HEAD;
        let error_code_header = self.rt.config.error_code_header.as_deref().and_then(text);
        ctx.response = Some(self.rt.config.policy.inspect(ResponseHead {
            status,
            graphql: ctx.kind == Kind::Graphql,
            has_body: !head_request && !matches!(status, 101 | 204 | 304),
            content_type,
            content_encoding: text("content-encoding"),
            error_code_header,
        }));
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header(X_REQUEST_ID, ctx.request_id.as_str())?;
        for internal in ["x-accel-redirect", "x-sendfile"] {
            if upstream_response.headers.contains_key(internal) {
                upstream_response.remove_header(internal);
            }
        }
        if let Some(hsts) = self.hsts(ctx) {
            upstream_response.insert_header("strict-transport-security", hsts)?;
        }
        let head = session.req_header().method == http::Method::HEAD;
        self.configure_compression(session, upstream_response, head);
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
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
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if *e.etype() == SENDFILE {
            if let Some(code) = self.serve_sendfile(session, ctx).await {
                return FailToProxy {
                    error_code: code,
                    can_reuse_downstream: false,
                };
            }
        }
        let code = error_status(e);
        if code > 0 {
            let hsts = self.hsts(ctx);
            if let Err(write_err) = self
                .rt
                .pages
                .respond(session, code, &self.extra_headers(ctx, hsts.as_deref()))
                .await
            {
                tracing::debug!("could not send the error response: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.set_keepalive(session);
        if ctx.excluded {
            return;
        }
        let upstream_failed = e.is_some_and(|e| *e.etype() != SENDFILE);
        if ctx.inspector.is_some()
            && ctx.name_after_failure
            && (upstream_failed || ctx.served.is_some())
        {
            read_unsent_body(session, ctx).await;
        }
        ctx.finish_request(self.rt);
        let end = match (ctx.streaming, ctx.head_at) {
            (true, Some(head)) => head,
            _ => Instant::now(),
        };
        let duration = end.duration_since(ctx.start).as_secs_f64();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let termination = if ctx.sendfile.is_some() || ctx.served.is_some() {
            Termination::Complete
        } else {
            termination(e, status)
        };
        let policy = &self.rt.config.policy;
        let verdict = match ctx.response.take() {
            Some(r) if ctx.sendfile.is_none() => r.finish(),
            _ => status_only(policy.status_outcome(status).unwrap_or(Outcome::Success)),
        };
        let operations = self.operations(ctx);
        let logged = self.record(ctx, &operations, &verdict, termination, duration);
        self.observe_limits(ctx);
        if self.rt.access_log.enabled() {
            let worst = logged.iter().fold(Outcome::Success, |w, op| w.worse(op.2));
            self.log_access(
                session,
                ctx,
                e.filter(|_| upstream_failed),
                status,
                duration,
                worst,
                &logged,
            );
        }
    }
}

/// When the app failed before the request body was read (connection refused, no healthy
/// backend, maintenance), the body is still in the socket: read what the inspector needs,
/// briefly, so the request is counted against the right operation. The client already has
/// its answer.
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
    let _ = tokio::time::timeout(Duration::from_millis(250), read).await;
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

fn algorithm(a: CompressionAlgorithm) -> Algorithm {
    match a {
        CompressionAlgorithm::Gzip => Algorithm::Gzip,
        CompressionAlgorithm::Zstd => Algorithm::Zstd,
        // Refused by validation with this engine.
        CompressionAlgorithm::Brotli => Algorithm::Brotli,
    }
}

type LoggedOp<'a> = (Arc<str>, OperationType, Outcome, Vec<(&'a str, u64)>);

impl SlogateProxy {
    /// Request id, client address and scheme.
    fn identify(&self, session: &Session, ctx: &mut RequestCtx) {
        let req = session.req_header();
        ctx.request_id = match req.headers.get("x-request-id") {
            Some(v) if request_id::is_acceptable(v.as_bytes()) => {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            }
            _ => {
                ctx.request_id_generated = true;
                request_id::generate()
            }
        };
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.client = Some(forwarded::client(
            peer,
            header(req, "x-forwarded-for"),
            &self.rt.config.server.trusted_proxies,
        ));
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    }

    /// Decides the kind and starts naming the operation.
    fn name_request(&self, session: &mut Session, ctx: &mut RequestCtx, path: &str) {
        let req = session.req_header();
        let method = req.method.as_str();
        if self.rt.is_graphql_path(path) {
            ctx.kind = Kind::Graphql;
            let inspector =
                self.rt
                    .extractor
                    .inspect(method, header(req, "content-type"), req.uri.query());
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
    }

    fn hsts(&self, ctx: &RequestCtx) -> Option<String> {
        if !ctx.tls {
            return None;
        }
        self.rt
            .config
            .server
            .tls
            .as_ref()
            .and_then(|t| t.hsts.clone())
    }

    fn extra_headers<'a>(
        &self,
        ctx: &'a RequestCtx,
        hsts: Option<&'a str>,
    ) -> Vec<(&'static str, &'a str)> {
        let mut v = vec![("x-request-id", ctx.request_id.as_str())];
        if let Some(h) = hsts {
            v.push(("strict-transport-security", h));
        }
        v
    }

    /// `try_files $uri @app`: a GET/HEAD for a file under the static root is answered here.
    async fn try_static(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        path: &str,
    ) -> Result<Option<u16>> {
        let settings = &self.rt.config.static_files;
        let Some(root) = &settings.root else {
            return Ok(None);
        };
        let method = &session.req_header().method;
        if (method != http::Method::GET && method != http::Method::HEAD)
            || self.rt.is_graphql_path(path)
        {
            return Ok(None);
        }
        let accept = header(session.req_header(), "accept-encoding");
        let Some(file) = static_files::find(settings, root, path, accept) else {
            return Ok(None);
        };
        ctx.http_operation = Some(Arc::from(format!("{} (static)", method.as_str())));
        self.configure_file_compression(session, &file);
        let extra = self.static_headers(ctx, &[]);
        static_files::serve(session, &file, 200, &extra)
            .await
            .map(Some)
    }

    fn static_headers(&self, ctx: &RequestCtx, kept: &[(String, String)]) -> Vec<(String, String)> {
        let mut extra: Vec<(String, String)> = kept.to_vec();
        if !extra.iter().any(|(k, _)| k == "x-request-id") {
            extra.push(("x-request-id".into(), ctx.request_id.clone()));
        }
        if let Some(h) = self.hsts(ctx) {
            extra.push(("strict-transport-security".into(), h));
        }
        extra
    }

    /// Whether the app's answer names a file for slogate to serve (`X-Accel-Redirect`,
    /// `X-Sendfile`); if so it is remembered in `ctx` with the headers to keep.
    fn sendfile(&self, session: &Session, resp: &ResponseHeader, ctx: &mut RequestCtx) -> bool {
        let text = |name: &str| resp.headers.get(name).and_then(|v| v.to_str().ok());
        let (accel, sendfile) = (text("x-accel-redirect"), text("x-sendfile"));
        if accel.is_none() && sendfile.is_none() {
            return false;
        }
        let settings = &self.rt.config.static_files;
        let accept = header(session.req_header(), "accept-encoding");
        let found = static_files::sendfile_target(settings, accel, sendfile)
            .and_then(|p| static_files::sendfile_file(settings, p, accept));
        let Some(file) = found else {
            tracing::warn!(
                accel,
                sendfile,
                "the app named a file outside static.internal/static.root, or a missing one"
            );
            return false;
        };
        let kept = static_files::SENDFILE_KEPT
            .iter()
            .filter_map(|k| text(k).map(|v| (k.to_string(), v.to_string())))
            .collect();
        ctx.sendfile = Some((file, kept));
        true
    }

    async fn serve_sendfile(&self, session: &mut Session, ctx: &mut RequestCtx) -> Option<u16> {
        let (file, kept) = ctx.sendfile.clone()?;
        self.configure_file_compression(session, &file);
        let extra = self.static_headers(ctx, &kept);
        match static_files::serve(session, &file, 200, &extra).await {
            Ok(status) => Some(status),
            Err(e) => {
                tracing::warn!("serving {}: {e}", file.path.display());
                Some(500)
            }
        }
    }

    /// Compresses this response if its type and size allow (the module picks the algorithm
    /// from Accept-Encoding); otherwise turns compression off for it. Never for streams,
    /// already-encoded bodies, partial content or HEAD.
    fn configure_compression(&self, session: &mut Session, resp: &ResponseHeader, head: bool) {
        let text = |name: &str| resp.headers.get(name).and_then(|v| v.to_str().ok());
        let wanted = self.compressible(
            resp.status.as_u16(),
            head,
            text("content-type"),
            text("content-length").and_then(|l| l.parse::<u64>().ok()),
            text("content-encoding"),
        );
        if !wanted {
            if let Some(module) = session
                .downstream_modules_ctx
                .get_mut::<ResponseCompression>()
            {
                module.adjust_level(0);
            }
        }
    }

    fn compressible(
        &self,
        status: u16,
        head: bool,
        content_type: Option<&str>,
        len: Option<u64>,
        encoding: Option<&str>,
    ) -> bool {
        static_files::compressible(
            &self.rt.config.compression,
            status,
            head,
            content_type,
            len,
            encoding,
        )
    }

    /// The same decision for a file slogate serves itself.
    fn configure_file_compression(&self, session: &mut Session, file: &FoundFile) {
        let head = session.req_header().method == http::Method::HEAD;
        if !self.compressible(
            200,
            head,
            Some(file.content_type),
            Some(file.len),
            file.encoding,
        ) {
            if let Some(module) = session
                .downstream_modules_ctx
                .get_mut::<ResponseCompression>()
            {
                module.adjust_level(0);
            }
        }
    }

    /// nginx's `keepalive_timeout` for the client connection, once the response is done.
    fn set_keepalive(&self, session: &mut Session) {
        if session.get_keepalive().is_none() {
            return;
        }
        let secs = self.rt.config.server.keepalive_timeout.as_secs();
        session.set_keepalive(if secs == 0 { None } else { Some(secs) });
    }

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

    /// Records every operation's outcome and duration; returns what the access log shows.
    fn record<'v>(
        &self,
        ctx: &RequestCtx,
        operations: &[Operation],
        verdict: &'v ResponseVerdict,
        termination: Termination,
        duration: f64,
    ) -> Vec<LoggedOp<'v>> {
        let rt = self.rt;
        let service = rt.service();
        let mut logged = Vec::with_capacity(operations.len());
        for (i, op) in operations.iter().enumerate() {
            let (outcome, codes) = verdict.for_operation(i);
            let outcome = termination.settle(outcome);
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
        logged
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
        let client = ctx
            .client
            .as_ref()
            .and_then(|c| c.ip)
            .map_or_else(|| "unix".to_string(), |ip| ip.to_string());
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
            user_agent: header(req, "user-agent"),
        };
        self.rt.access_log.write(&record);
    }
}
