//! One request through the hyper engine: decide what it is, answer it locally or pass it to
//! the app, and hand the answer back with its tracker. Each step is a few lines around the
//! runtime's edge features and the core's [`Exchange`].

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use slogate_config::UpstreamClient;
use slogate_core::exchange::{Exchange, Measure};
use slogate_core::response::ResponseHead;
use tokio::sync::mpsc;

use super::app::{self, AppBody, AppConn};
use super::body::{BoxError, Encoder, FromApp, ResBody, Source, UpBody};
use super::file::FileStream;
use super::head::{self, strip_hop_by_hop, Forwarding, Underscores, X_REQUEST_ID};
use super::pool;
use super::track::{LogFields, LoggedClient, Tracker};
use crate::forwarded::{self, Arrival};
use crate::request_id;
use crate::runtime::Runtime;
use crate::static_files::{self, FoundFile};

/// A request body up to this size is read whole before the request goes upstream, and
/// leaves with its head in one write; a larger one streams after it.
const PREFETCH: usize = 64 * 1024;

/// How long and how much of an unread request body slogate reads and discards after
/// answering early, so the client reads the answer instead of a reset (nginx's lingering
/// close: `lingering_time`, `lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_BYTES: u64 = 64 * 1024 * 1024;
const LINGER_IDLE: Duration = Duration::from_secs(2);

/// How long slogate reads an unsent body to name its operation after answering itself.
const NAMING_TIME: Duration = Duration::from_millis(250);

/// What the connection knows about every request on it.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The peer (`None` over a Unix socket).
    pub peer: Option<IpAddr>,
    /// The peer as a header value (`X-Forwarded-For`, `X-Real-IP`), formatted once.
    pub peer_value: Option<HeaderValue>,
    /// The local port as a header value (`X-Forwarded-Port`), formatted once per listener.
    pub port_value: Option<HeaderValue>,
    /// Arrived over TLS.
    pub tls: bool,
}

/// Per-request state while the request is decided.
struct Cx {
    rt: &'static Runtime,
    conn: Conn,
    parts: http::request::Parts,
    client: forwarded::Client,
    request_id: HeaderValue,
    generated_id: bool,
    /// The status to refuse the request with before the app ([`refusal`]).
    refused: Option<u16>,
    /// The request's `Content-Length`.
    length: Declared,
    content_type: Option<HeaderValue>,
    accept_encoding: Option<HeaderValue>,
}

/// A request's `Content-Length`, as declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    /// No `Content-Length`.
    Absent,
    /// One that does not read as a number (hyper refuses most such requests itself).
    Unreadable,
    /// This many bytes.
    Bytes(u64),
}

impl Declared {
    fn of(value: Option<&HeaderValue>) -> Declared {
        match value {
            None => Declared::Absent,
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map_or(Declared::Unreadable, Declared::Bytes),
        }
    }

    fn bytes(self) -> Option<u64> {
        match self {
            Declared::Bytes(n) => Some(n),
            Declared::Absent | Declared::Unreadable => None,
        }
    }
}

/// The request headers slogate reads, found in one pass over them (a lookup by name hashes
/// the name; a request has a dozen headers or so). Each is the first value of its name, as
/// `HeaderMap::get` gives; `Host` is counted.
#[derive(Default)]
struct RequestFields<'a> {
    host: Option<&'a HeaderValue>,
    hosts: usize,
    transfer_encoding: bool,
    content_length: Option<&'a HeaderValue>,
    content_type: Option<&'a HeaderValue>,
    accept_encoding: Option<&'a HeaderValue>,
    user_agent: Option<&'a HeaderValue>,
    request_id: Option<&'a HeaderValue>,
    forwarded_for: Option<&'a HeaderValue>,
}

impl<'a> RequestFields<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut f = RequestFields::default();
        for (name, value) in headers {
            let slot = if name == header::HOST {
                f.hosts += 1;
                &mut f.host
            } else if name == header::CONTENT_LENGTH {
                &mut f.content_length
            } else if name == header::CONTENT_TYPE {
                &mut f.content_type
            } else if name == header::USER_AGENT {
                &mut f.user_agent
            } else if name == header::ACCEPT_ENCODING {
                &mut f.accept_encoding
            } else if name == header::TRANSFER_ENCODING {
                f.transfer_encoding = true;
                continue;
            } else if name == X_REQUEST_ID {
                &mut f.request_id
            } else if name == forwarded::X_FORWARDED_FOR {
                &mut f.forwarded_for
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        f
    }
}

fn text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    as_text(headers.get(name))
}

/// `fut` within `limit`; a timer is armed only when the answer is not ready at once (a
/// body already in the connection's buffer costs no timer).
pub(super) async fn within<F: std::future::Future>(
    limit: Duration,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(out) => Ok(out),
        std::task::Poll::Pending => tokio::time::timeout(limit, fut).await,
    }
}

/// Handles one request. Not itself async: the request's state is made here and the future
/// returned is `route`'s, one level less of future (each level holds its callee's whole
/// state, moved into place when it starts).
pub fn handle(
    rt: &'static Runtime,
    conn: Conn,
    mut req: Request<Incoming>,
) -> impl std::future::Future<Output = Response<ResBody>> + Send {
    let start = Instant::now();
    let upgrade = is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let fields = RequestFields::of(&parts.headers);
    let (request_id, generated_id) = match fields.request_id {
        Some(v) if request_id::is_acceptable(v.as_bytes()) => (v.clone(), false),
        _ => (
            HeaderValue::from_bytes(&request_id::generate_bytes())
                .unwrap_or(HeaderValue::from_static("-")),
            true,
        ),
    };
    let client = forwarded::client(
        conn.peer,
        as_text(fields.forwarded_for),
        &rt.config.server.trusted_proxies,
    );
    let path = if rt.config.access_log.include_query {
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    } else {
        parts.uri.path()
    };
    let tracker = Box::new(Tracker {
        exchange: Exchange::new(&rt.extractor, &rt.config.policy, start),
        rt,
        bytes_sent: 0,
        error: None,
        upstream_failed: None,
        backend: None,
        log: LogFields {
            started_at: SystemTime::now(),
            request_id: request_id.clone(),
            client: match (client.ip, &conn.peer_value) {
                (None, _) => LoggedClient::Unix,
                (Some(_), Some(text)) if client.ip == conn.peer => LoggedClient::Peer(text.clone()),
                (Some(ip), _) => LoggedClient::Forwarded(ip),
            },
            method: parts.method.clone(),
            // Only the access log reads it.
            path: if rt.access_log.enabled() {
                path.to_string()
            } else {
                String::new()
            },
            user_agent: fields.user_agent.cloned(),
        },
    });
    let cx = Cx {
        rt,
        conn,
        refused: refusal(&parts, &fields),
        length: Declared::of(fields.content_length),
        content_type: fields.content_type.cloned(),
        accept_encoding: fields.accept_encoding.cloned(),
        parts,
        client,
        request_id,
        generated_id,
    };
    route(cx, tracker, body, upgrade)
}

async fn route(
    cx: Cx,
    mut tracker: Box<Tracker>,
    body: Incoming,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ResBody> {
    let rt = cx.rt;
    let path = cx.parts.uri.path();
    if let Some(status) = cx.refused {
        measure(&cx, &mut tracker);
        linger(body);
        return cx.page(status, tracker).close();
    }
    if rt.pages.maintenance_on() && !rt.pages.allowed_in_maintenance(path) {
        measure(&cx, &mut tracker);
        // Boxed here and below: the rare paths' futures are not part of every request's.
        let body = Box::pin(name_from_body(rt, body, &mut tracker)).await;
        linger(body);
        return cx.page(503, tracker);
    }
    if let Some(limit) = rt.config.server.max_body_size {
        if cx.length.bytes().is_some_and(|len| len > limit) {
            // Answered before any upstream call; the body is not inspected.
            measure(&cx, &mut tracker);
            linger(body);
            return cx.page(413, tracker).close();
        }
    }
    if let Some(file) = cx.static_file() {
        tracker.exchange.measure(Measure::Route(
            format!("{} (static)", cx.parts.method.as_str()).into(),
        ));
        linger(body);
        return Box::pin(cx.serve_file(&file, 200, &[], tracker)).await;
    }
    measure(&cx, &mut tracker);
    let body = match prefetch(rt, body, &mut tracker).await {
        Ok(b) => b,
        Err((refusal, rest)) => {
            if !matches!(refusal, Refusal::TimedOut) {
                linger(rest);
            }
            // A client that left gets nothing; its exchange ends as canceled when the
            // answer cannot be written.
            return cx.page(refusal.status(), tracker).close();
        }
    };
    // By reference: the request's context stays in this future, not copied into each
    // callee's.
    proxy(&cx, tracker, body, upgrade).await
}

/// Names the request: a GraphQL endpoint's operations come from its body, a route's from
/// the configured templates.
fn measure(cx: &Cx, tracker: &mut Tracker) {
    let rt = cx.rt;
    let (method, path) = (cx.parts.method.as_str(), cx.parts.uri.path());
    let m = if rt.is_graphql_path(path) {
        Measure::graphql(
            &rt.extractor,
            method,
            as_text(cx.content_type.as_ref()),
            cx.parts.uri.query(),
        )
    } else {
        Measure::route(rt.config.routes.name(method, path).as_deref())
    };
    tracker.exchange.measure(m);
}

/// Why a request body was refused.
enum Refusal {
    TooLarge,
    TimedOut,
    Broken,
}

impl Refusal {
    fn status(&self) -> u16 {
        match self {
            Refusal::TooLarge => 413,
            Refusal::TimedOut => 408,
            Refusal::Broken => 400,
        }
    }
}

/// A request body: whole, or its first part and the rest still to read.
enum Prefetched {
    Whole(Option<Bytes>),
    Partial(Bytes, Incoming),
}

/// Reads the body up to [`PREFETCH`] bytes, feeding the exchange.
async fn prefetch(
    rt: &Runtime,
    mut body: Incoming,
    tracker: &mut Tracker,
) -> Result<Prefetched, (Refusal, Incoming)> {
    if body.is_end_stream() {
        tracker.exchange.request_end();
        return Ok(Prefetched::Whole(None));
    }
    let (mut held, mut size) = (Vec::new(), 0);
    loop {
        let chunk = match next_chunk(rt, &mut body, tracker).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(refusal) => return Err((refusal, body)),
        };
        size += chunk.len();
        held.push(chunk);
        if body.is_end_stream() {
            break; // the common case: the whole body came with the head
        }
        if size >= PREFETCH {
            let part = joined(held, size).unwrap_or_default();
            return Ok(Prefetched::Partial(part, body));
        }
    }
    tracker.exchange.request_end();
    Ok(Prefetched::Whole(joined(held, size)))
}

/// Chunks read ahead as one buffer: none, the only one (no copy), or their concatenation.
fn joined(mut chunks: Vec<Bytes>, size: usize) -> Option<Bytes> {
    match chunks.len() {
        0 => None,
        1 => chunks.pop(),
        _ => {
            let mut all = BytesMut::with_capacity(size);
            for chunk in &chunks {
                all.extend_from_slice(chunk);
            }
            Some(all.freeze())
        }
    }
}

/// The next data chunk of a request body, within the body timeout and the size limit.
async fn next_chunk(
    rt: &Runtime,
    body: &mut Incoming,
    tracker: &mut Tracker,
) -> Result<Option<Bytes>, Refusal> {
    let timeout = rt.config.server.client_body_timeout;
    loop {
        let frame = match within(timeout, body.frame()).await {
            Err(_) => return Err(Refusal::TimedOut),
            Ok(None) => return Ok(None),
            Ok(Some(Err(_))) => return Err(Refusal::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        tracker.exchange.request_chunk(&data);
        if let Some(limit) = rt.config.server.max_body_size {
            if tracker.exchange.bytes_received() > limit {
                return Err(Refusal::TooLarge);
            }
        }
        return Ok(Some(data));
    }
}

/// When slogate answers without the app (maintenance), the body is still unread: read what
/// names the operation, briefly, so the request counts against the right operation.
async fn name_from_body(rt: &Runtime, mut body: Incoming, tracker: &mut Tracker) -> Incoming {
    let read = async {
        while tracker.exchange.wants_request_body() {
            match next_chunk(rt, &mut body, tracker).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracker.exchange.request_end();
                    break;
                }
                Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(NAMING_TIME, read).await;
    body
}

/// Reads and discards what is left of a request body after an early answer, for a bounded
/// time and size, so a client that sends its whole body before reading gets the answer.
fn linger(mut body: Incoming) {
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let mut read = 0u64;
        let drain = async {
            while let Ok(Some(Ok(frame))) = tokio::time::timeout(LINGER_IDLE, body.frame()).await {
                if let Some(d) = frame.data_ref() {
                    read += d.len() as u64;
                    if read > LINGER_BYTES {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}

/// The status for a request refused before the app: a head two servers could read two ways
/// (RFC 9112 3.2, 6.1, 6.3), a target a proxy must not pass on, a method nginx refuses. The
/// request-parsing table in `docs/request-parsing.md` lists each case beside nginx.
fn refusal(parts: &http::request::Parts, fields: &RequestFields<'_>) -> Option<u16> {
    let headers = &parts.headers;
    let host = fields.host;
    if fields.hosts > 1 {
        return Some(400);
    }
    if fields.transfer_encoding && !plain_chunked(headers) {
        return Some(400);
    }
    if parts.version == Version::HTTP_11 && host.is_none() && parts.uri.authority().is_none() {
        return Some(400); // HTTP/1.1 requires Host
    }
    if let Some(h) = host {
        // Empty is allowed (RFC 9112 3.2); otherwise a host and an optional port, nothing
        // that could change the meaning of a URL built from it.
        if !h.is_empty() && http::uri::Authority::try_from(h.as_bytes()).is_err() {
            return Some(400);
        }
    }
    let target = parts.uri.path_and_query().map(|p| p.as_str());
    match parts.method {
        Method::CONNECT => return Some(400), // slogate is no tunnel (nginx's answer)
        Method::TRACE => return Some(405),   // nginx's answer: it could echo credentials
        Method::OPTIONS => {}
        _ if target == Some("*") => return Some(400),
        _ => {}
    }
    if parts.uri.scheme().is_none() && parts.uri.authority().is_some() {
        return Some(400); // authority-form is for CONNECT only
    }
    None
}

/// Whether `Transfer-Encoding` is exactly `chunked`, once: any other coding (`identity,
/// chunked`, `gzip, chunked`) or a second `chunked` would be read two ways, or passed on
/// decoded once and still meant encoded (nginx answers 400 or 501 to each; slogate 400).
/// (With `Content-Length` beside it, hyper's parser lets chunked win and drops the length,
/// RFC 9112 6.3; the connection closes after the answer.)
fn plain_chunked(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    matches!(
        (codings.next(), codings.next()),
        (Some(c), None) if c.eq_ignore_ascii_case(b"chunked")
    )
}

/// A WebSocket upgrade (ActionCable): the only protocol switch passed on. Any other
/// `Upgrade` (`h2c` above all, which would let a client talk to the app past the proxy) is
/// removed as a hop-by-hop header.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

static X_ACCEL_REDIRECT: HeaderName = HeaderName::from_static("x-accel-redirect");
static X_SENDFILE: HeaderName = HeaderName::from_static("x-sendfile");
static X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// What the app's request is made of besides the client's headers.
fn forwarding(cx: &Cx) -> Forwarding<'_> {
    Forwarding {
        arrival: Arrival {
            client: &cx.client,
            scheme: if cx.conn.tls { "https" } else { "http" },
            port_value: cx.conn.port_value.as_ref(),
            peer_value: cx.conn.peer_value.as_ref(),
            now: SystemTime::now(),
        },
        generated_id: cx.generated_id.then_some(&cx.request_id),
        accel_mapping: cx.rt.accel_mapping.as_deref(),
    }
}

/// The request as the app gets it through hyper's client.
fn upstream_request(cx: &Cx, body: UpBody, upgrade: bool) -> Request<UpBody> {
    let forwarding = forwarding(cx);
    let headers = head::upstream_headers(
        &cx.parts.headers,
        cx.parts.uri.authority(),
        upgrade,
        &forwarding,
    );
    let mut req = Request::new(body);
    *req.method_mut() = cx.parts.method.clone();
    // The origin-form target (path and query) as the client sent it: shared, not parsed again.
    if let Some(target) = cx.parts.uri.path_and_query() {
        let mut uri = http::uri::Parts::default();
        uri.path_and_query = Some(target.clone());
        if let Ok(uri) = http::Uri::from_parts(uri) {
            *req.uri_mut() = uri;
        }
    }
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    req
}

/// Passes the request to the app: a healthy backend (or any, when all fail their checks),
/// a pooled connection or a new one, the next backend when a connection cannot be made.
async fn proxy(
    cx: &Cx,
    mut tracker: Box<Tracker>,
    body: Prefetched,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ResBody> {
    let rt = cx.rt;
    let up = &rt.config.upstream;
    let (whole, mut rest) = match body {
        Prefetched::Whole(b) => (Some(b), None),
        Prefetched::Partial(first, rest) => (None, Some((first, rest))),
    };
    let attempts = rt.backends.all().len().max(1);
    let mut last_failure = 502;
    for attempt in 0..attempts {
        let i = rt.backends.pick_or_any();
        let backend = &rt.backends.all()[i];
        tracker.backend = Some(i);
        // An upgrade goes through hyper's client, which hands its socket over.
        let client = match upgrade {
            Some(_) => UpstreamClient::Hyper,
            None => up.client,
        };
        // The pool holds the configured client's connections; an upgrade through the
        // other opens its own.
        let pooled = if client == up.client {
            backend.pool.checkout(up.idle_timeout).await
        } else {
            None
        };
        let reused = pooled.is_some();
        let sender = match pooled {
            Some(s) => s,
            None => match pool::connect(backend, up.connect_timeout, client).await {
                Ok(s) => s,
                Err(e) => {
                    let (status, why) = e.answer();
                    tracing::debug!(backend = %backend.label, "{why}");
                    tracker.error = Some(why);
                    last_failure = status;
                    if attempt + 1 < attempts {
                        continue;
                    }
                    break;
                }
            },
        };
        let (up_body, pump) = match (&whole, rest.take()) {
            (Some(b), _) => (UpBody::Full(b.clone()), None),
            (None, Some((first, more))) => {
                let (tx, rx) = mpsc::channel(2);
                let body = UpBody::Streaming {
                    first: Some(first),
                    rest: rx,
                    length: cx.length.bytes(),
                };
                (body, Some((more, tx)))
            }
            (None, None) => (UpBody::empty(), None),
        };
        tracker.exchange.upstream_sent(Instant::now());
        let upgrading = upgrade.is_some();
        let mut sent = send(cx, sender, up_body, upgrading, pump, &mut tracker, reused).await;
        if let Sent::Stale = sent {
            // The pooled connection was closed by the app before the request could be sent
            // (or read), or the request repeats no write: sent once more, on a new
            // connection (where it cannot turn out stale).
            match pool::connect(backend, up.connect_timeout, client).await {
                Ok(fresh) => {
                    let body = UpBody::Full(whole.clone().flatten());
                    sent = send(cx, fresh, body, upgrading, None, &mut tracker, false).await;
                }
                Err(e) => {
                    let (status, why) = e.answer();
                    tracker.error = Some(why);
                    last_failure = status;
                    break;
                }
            }
        }
        match sent {
            Sent::Answered(mut resp, complete) => {
                // The connection can carry another request once the request went out whole
                // and the answer ended (never after a 101: the socket is handed over).
                if complete && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                    resp.body_mut().reuse_into(&backend.pool);
                }
                return cx.pass_on(resp, &backend.pool, tracker, upgrade).await;
            }
            Sent::Failed(status, why) => {
                tracker.error = Some(why);
                last_failure = status;
            }
            Sent::Stale => {
                tracker.error = Some("upstream closed a new connection".into());
                last_failure = 502;
            }
        }
        break;
    }
    cx.gateway_error(last_failure, tracker)
}

/// What became of a request sent upstream.
enum Sent {
    /// The app answered; `true` when the request body was sent whole (the connection can
    /// be reused after the answer).
    Answered(Response<AppBody>, bool),
    /// A pooled connection turned out closed, and the request can be sent again: it did
    /// not reach the app, or it repeats no write.
    Stale,
    /// The app failed: the status to answer, and why.
    Failed(u16, String),
}

/// Why sending a request, or reading its answer's head, failed.
enum Failure {
    /// The request did not leave: it was given back.
    Unsent(String),
    /// The app closed or reset the connection before answering.
    ClosedEarly(String),
    /// The app took none of the request for `upstream.write_timeout`.
    TimedOut(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    fn hyper(mut e: hyper::client::conn::TrySendError<Request<UpBody>>) -> Failure {
        let why = format!("upstream: {}", e.error());
        if e.take_message().is_some() {
            Failure::Unsent(why)
        } else if e.error().is_incomplete_message() || is_reset(e.error()) {
            Failure::ClosedEarly(why)
        } else {
            Failure::Other(why)
        }
    }

    fn slogate(e: app::SendError) -> Failure {
        let why = e.to_string();
        match e {
            app::SendError::Unsent(_) => Failure::Unsent(why),
            app::SendError::Closed(_) => Failure::ClosedEarly(why),
            app::SendError::TimedOut(_) => Failure::TimedOut(why),
            app::SendError::Failed(_) => Failure::Other(why),
        }
    }
}

/// Sends the request (`body`, and an upgrade when `upgrade`) on `sender` and reads the head
/// of the answer.
async fn send(
    cx: &Cx,
    sender: AppConn,
    body: UpBody,
    upgrade: bool,
    pump: Option<(Incoming, mpsc::Sender<Result<Bytes, BoxError>>)>,
    tracker: &mut Tracker,
    reused: bool,
) -> Sent {
    let rt = cx.rt;
    let read_timeout = rt.config.upstream.read_timeout;
    let is_full = matches!(body, UpBody::Full(_));
    // A pooled connection may close as the request goes out. Unsent (hyper gives the
    // request back), it is always sent again on a new connection. Sent, the app may have
    // read and acted on it: only a request that cannot repeat a write is sent again (an
    // idempotent method, RFC 9110 9.2.2, or GraphQL queries only), as nginx never resends a
    // POST once sent (`proxy_next_upstream` without `non_idempotent`).
    let retryable = reused && is_full;
    let resendable =
        retryable && (cx.parts.method.is_idempotent() || tracker.exchange.only_queries());
    let response = async move {
        match sender {
            AppConn::Hyper(mut sender) => {
                if sender.ready().await.is_err() {
                    return Err(Failure::Other("upstream connection closed".into()));
                }
                let request = upstream_request(cx, body, upgrade);
                match sender.try_send_request(request).await {
                    Ok(resp) => Ok(resp.map(|body| AppBody::hyper(body, sender))),
                    Err(e) => Err(Failure::hyper(e)),
                }
            }
            AppConn::Slogate(conn) => {
                // The head is written straight from the client's headers (no map built).
                let head = app::Head {
                    method: &cx.parts.method,
                    target: cx.parts.uri.path_and_query().map_or("/", |p| p.as_str()),
                    declared_length: cx.length != Declared::Absent,
                };
                let lines = |out: &mut Vec<u8>| {
                    let forwarding = forwarding(cx);
                    let (headers, authority) = (&cx.parts.headers, cx.parts.uri.authority());
                    head::write_upstream_lines(out, headers, authority, upgrade, &forwarding);
                };
                app::send(conn, head, lines, body, rt.config.upstream.write_timeout)
                    .await
                    .map_err(Failure::slogate)
            }
        }
    };
    let (answer, pumped) = match pump {
        None => (tokio::time::timeout(read_timeout, response).await, true),
        // A body larger than PREFETCH still coming: its own (boxed) future, so that the
        // common request's state is not sized for it.
        Some((body, tx)) => Box::pin(answer_while_pumping(rt, response, body, tx, tracker)).await,
    };
    match answer {
        Ok(Ok(resp)) => Sent::Answered(resp, pumped),
        Ok(Err(failure)) => match failure {
            Failure::Unsent(_) if retryable => Sent::Stale,
            // A pooled connection the app closed as the request went out, most likely
            // before reading it (its keep-alive timeout); resent, as it can repeat no write.
            Failure::ClosedEarly(_) if resendable => Sent::Stale,
            Failure::Unsent(why) | Failure::ClosedEarly(why) | Failure::Other(why) => {
                Sent::Failed(502, why)
            }
            Failure::TimedOut(why) => Sent::Failed(504, why),
        },
        Err(_) => Sent::Failed(504, "upstream read timed out".into()),
    }
}

/// The app's answer (within `upstream.read_timeout`) while the rest of the request body is
/// copied upstream; whether the body all went.
async fn answer_while_pumping<F>(
    rt: &Runtime,
    response: F,
    mut body: Incoming,
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
    tracker: &mut Tracker,
) -> (Result<F::Output, tokio::time::error::Elapsed>, bool)
where
    F: std::future::Future,
{
    let read_timeout = rt.config.upstream.read_timeout;
    let mut pumped = false;
    let answer = {
        let mut response = std::pin::pin!(response);
        let pumping = pump_body(rt, &mut body, tx, tracker);
        tokio::pin!(pumping);
        let mut pump_over = false;
        loop {
            tokio::select! {
                r = tokio::time::timeout(read_timeout, response.as_mut()) => break r,
                done = &mut pumping, if !pump_over => {
                    pump_over = true;
                    pumped = done;
                }
            }
        }
    };
    if !pumped {
        // The app failed, or answered, while the body was still coming: read what names the
        // operation, briefly, so the answer counts against it (and not as an unnamed
        // request); the rest is read and discarded after the answer.
        linger(name_from_body(rt, body, tracker).await);
    }
    (answer, pumped)
}

fn is_reset(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = s.source();
    }
    false
}

/// Copies the rest of a request body upstream; returns whether it all went.
async fn pump_body(
    rt: &Runtime,
    body: &mut Incoming,
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
    tracker: &mut Tracker,
) -> bool {
    loop {
        match next_chunk(rt, body, tracker).await {
            Ok(Some(chunk)) => {
                if tx.send(Ok(chunk)).await.is_err() {
                    return false;
                }
            }
            Ok(None) => {
                tracker.exchange.request_end();
                return true;
            }
            Err(refusal) => {
                let why = match refusal {
                    Refusal::TooLarge => "request body over server.max_body_size",
                    Refusal::TimedOut => "request body timed out",
                    Refusal::Broken => "request body broken",
                };
                let _ = tx.send(Err(why.into())).await;
                return false;
            }
        }
    }
}

impl Cx {
    fn hsts(&self) -> Option<HeaderValue> {
        if !self.conn.tls {
            return None;
        }
        let tls = self.rt.config.server.tls.as_ref()?;
        tls.hsts
            .as_deref()
            .and_then(|h| HeaderValue::from_str(h).ok())
    }

    /// Headers slogate adds to every answer.
    fn stamp(&self, headers: &mut HeaderMap) {
        headers.insert(X_REQUEST_ID.clone(), self.request_id.clone());
        if let Some(h) = self.hsts() {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, h);
        }
    }

    /// An HTML page slogate answers itself.
    fn page(&self, status: u16, mut tracker: Box<Tracker>) -> Response<ResBody> {
        tracker.exchange.answer_locally(status);
        let body = self.rt.pages.body_for(status);
        let mut resp = Response::new(ResBody::full(body, Some(tracker)));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        self.stamp(h);
        resp
    }

    /// 502 or 504 for an app that failed before its head.
    fn gateway_error(&self, status: u16, mut tracker: Box<Tracker>) -> Response<ResBody> {
        tracker.upstream_failed = Some(status);
        self.page(status, tracker)
    }

    /// `try_files $uri @app`: a GET/HEAD for a file under the static root.
    fn static_file(&self) -> Option<FoundFile> {
        let rt = self.rt;
        let settings = &rt.config.static_files;
        let root = settings.root.as_ref()?;
        let (method, path) = (&self.parts.method, self.parts.uri.path());
        if (method != Method::GET && method != Method::HEAD) || rt.is_graphql_path(path) {
            return None;
        }
        let accept = as_text(self.accept_encoding.as_ref());
        static_files::find(settings, root, path, accept)
    }

    async fn serve_file(
        &self,
        file: &FoundFile,
        status_ok: u16,
        kept: &[(String, String)],
        mut tracker: Box<Tracker>,
    ) -> Response<ResBody> {
        let headers = &self.parts.headers;
        let plan = static_files::plan(|n| text(headers, n), file, status_ok, kept);
        let head_only = self.parts.method == Method::HEAD;
        let source = if head_only || plan.length == 0 {
            Source::Empty
        } else {
            match FileStream::open(&file.path, plan.segments, plan.length).await {
                Ok(f) => Source::File(f),
                Err(e) => {
                    tracing::warn!("serving {}: {e}", file.path.display());
                    return self.page(500, tracker);
                }
            }
        };
        tracker.exchange.answer_locally(plan.status);
        let compress = self.encoder_for(
            plan.status,
            Some(file.content_type),
            Some(file.len),
            file.encoding,
        );
        let mut body = ResBody::new(source, Some(tracker));
        let mut resp_headers = HeaderMap::with_capacity(plan.headers.len() + 3);
        for (k, v) in &plan.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v)) {
                resp_headers.insert(k, v);
            }
        }
        match compress {
            Some(enc) => {
                resp_headers.insert(
                    header::CONTENT_ENCODING,
                    HeaderValue::from_static(enc.name()),
                );
                append_vary(&mut resp_headers);
                body = body.compress(enc);
            }
            None if plan.status != 304 => {
                resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(plan.length));
            }
            None => {}
        }
        self.stamp(&mut resp_headers);
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(plan.status).unwrap_or(StatusCode::OK);
        *resp.headers_mut() = resp_headers;
        resp
    }

    /// The client's preferred algorithm, if this answer is to be compressed. Never for
    /// streams, already-encoded bodies, partial content or HEAD.
    fn encoder_for(
        &self,
        status: u16,
        content_type: Option<&str>,
        len: Option<u64>,
        encoding: Option<&str>,
    ) -> Option<Encoder> {
        let settings = &self.rt.config.compression;
        let head = self.parts.method == Method::HEAD;
        if !static_files::compressible(settings, status, head, content_type, len, encoding) {
            return None;
        }
        let accept = as_text(self.accept_encoding.as_ref())?;
        settings
            .algorithms
            .iter()
            .find(|(alg, _)| static_files::accepts(accept, algorithm_token(*alg)))
            .and_then(|(alg, level)| Encoder::new(*alg, *level))
    }

    /// The app's answer: passed on with its body classified on the way (or the file it
    /// named served, or the upgraded connection spliced).
    async fn pass_on(
        &self,
        resp: Response<AppBody>,
        pool: &'static super::pool::Pool,
        mut tracker: Box<Tracker>,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Response<ResBody> {
        let rt = self.rt;
        let (mut parts, body) = resp.into_parts();
        // The client's connection speaks its own version (the app may answer HTTP/1.0).
        parts.version = Version::HTTP_11;
        let status = parts.status.as_u16();
        let now = Instant::now();
        let error_code_name = rt.config.error_code_header.as_deref();
        let fields = AnswerFields::of(&parts.headers, error_code_name);
        if rt.config.static_files.sendfile {
            if let Some((file, kept)) = self.sendfile(&parts.headers, &fields) {
                tracker.exchange.response_head(
                    ResponseHead {
                        status,
                        ..ResponseHead::default()
                    },
                    now,
                );
                tracker.exchange.response_end(now);
                // The app's body is not wanted; its connection goes with it.
                drop(body);
                return Box::pin(self.serve_file(&file, 200, &kept, tracker)).await;
            }
        }
        let head_request = self.parts.method == Method::HEAD;
        let error_code_header = as_text(fields.error_code);
        let content_type = as_text(fields.content_type);
        let content_encoding = as_text(fields.content_encoding);
        tracker.exchange.response_head(
            ResponseHead {
                status,
                graphql: false,
                has_body: !head_request && !matches!(status, 101 | 204 | 304),
                content_type,
                content_encoding,
                error_code_header,
            },
            now,
        );
        if status == 101 {
            return self.splice(parts, body, tracker, upgrade, pool);
        }
        let streaming = content_type.is_some_and(|ct| ct.starts_with("text/event-stream"));
        let compress = if streaming {
            None
        } else {
            self.encoder_for(
                status,
                content_type,
                as_text(fields.content_length).and_then(|l| l.parse().ok()),
                content_encoding,
            )
        };
        let buffered = !streaming
            && !as_text(fields.accel_buffering).is_some_and(|v| v.eq_ignore_ascii_case("no"));
        let names_a_file = fields.names_a_file();
        let source = match (&rt.config.upstream.buffering, buffered) {
            (Some(settings), true) => {
                match buffer_answer(rt, settings, body, &mut tracker).await {
                    Ok(source) => source,
                    Err(status) => {
                        // Nothing was sent to the client yet: answer the gateway error.
                        tracker.exchange.answer_locally(status);
                        return self.gateway_error(status, tracker);
                    }
                }
            }
            _ => {
                let read_timeout = rt.config.upstream.read_timeout;
                let idle = Box::pin(tokio::time::sleep(read_timeout));
                Source::App(Box::new(FromApp {
                    body,
                    idle,
                    read_timeout,
                }))
            }
        };
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers, Underscores::Keep);
        if names_a_file {
            headers.remove(&X_ACCEL_REDIRECT);
            headers.remove(&X_SENDFILE);
        }
        self.stamp(headers);
        let announced = text(headers, header::CONTENT_LENGTH).and_then(|l| l.parse().ok());
        let mut out = ResBody::new(source, Some(tracker)).announced(announced);
        if let Some(enc) = compress {
            headers.remove(header::CONTENT_LENGTH);
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(enc.name()),
            );
            append_vary(headers);
            out = out.compress(enc);
        }
        Response::from_parts(parts, out)
    }

    /// A 101 from the app: both connections are handed over and copied both ways.
    fn splice(
        &self,
        parts: http::response::Parts,
        body: AppBody,
        tracker: Box<Tracker>,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
        pool: &'static super::pool::Pool,
    ) -> Response<ResBody> {
        let mut upstream = Response::from_parts(parts.clone(), body);
        let upstream_upgrade = hyper::upgrade::on(&mut upstream);
        if let Some(client_upgrade) = upgrade {
            // The app's socket leaves its pool's connection driver here: counted open in
            // `slogate_upstream_connections_open` while the two are spliced.
            let counted = pool.count_open();
            tokio::spawn(async move {
                let _counted = counted;
                let (client, app) = match tokio::join!(client_upgrade, upstream_upgrade) {
                    (Ok(c), Ok(a)) => (c, a),
                    _ => return,
                };
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut app = hyper_util::rt::TokioIo::new(app);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut app).await;
            });
        }
        let mut resp = Response::new(ResBody::new(Source::Empty, Some(tracker)));
        *resp.status_mut() = parts.status;
        *resp.headers_mut() = parts.headers;
        self.stamp(resp.headers_mut());
        resp
    }

    /// Whether the app's answer names a file for slogate to serve (`X-Accel-Redirect`,
    /// `X-Sendfile`), with the headers to keep.
    fn sendfile(
        &self,
        headers: &HeaderMap,
        fields: &AnswerFields<'_>,
    ) -> Option<(FoundFile, Vec<(String, String)>)> {
        let (accel, sendfile) = (as_text(fields.accel_redirect), as_text(fields.sendfile));
        if accel.is_none() && sendfile.is_none() {
            return None;
        }
        let settings = &self.rt.config.static_files;
        let accept = as_text(self.accept_encoding.as_ref());
        let found = static_files::sendfile_target(settings, accel, sendfile)
            .and_then(|p| static_files::sendfile_file(settings, p, accept));
        let Some(file) = found else {
            tracing::warn!(
                accel,
                sendfile,
                "the app named a file outside static.internal/static.root, or a missing one"
            );
            return None;
        };
        let kept = static_files::SENDFILE_KEPT
            .iter()
            .filter_map(|k| text(headers, *k).map(|v| (k.to_string(), v.to_string())))
            .collect();
        Some((file, kept))
    }
}

/// The app's answer headers slogate reads, found in one pass over them (a lookup by name
/// hashes the name; an answer has a dozen headers or so). Each is the first value of its
/// name, as `HeaderMap::get` gives.
#[derive(Default)]
struct AnswerFields<'a> {
    content_type: Option<&'a HeaderValue>,
    content_encoding: Option<&'a HeaderValue>,
    content_length: Option<&'a HeaderValue>,
    accel_buffering: Option<&'a HeaderValue>,
    accel_redirect: Option<&'a HeaderValue>,
    sendfile: Option<&'a HeaderValue>,
    /// `error_code_header`'s, when one is configured.
    error_code: Option<&'a HeaderValue>,
}

impl<'a> AnswerFields<'a> {
    fn of(headers: &'a HeaderMap, error_code_name: Option<&str>) -> Self {
        let mut f = AnswerFields::default();
        for (name, value) in headers {
            let slot = if name == header::CONTENT_TYPE {
                &mut f.content_type
            } else if name == header::CONTENT_LENGTH {
                &mut f.content_length
            } else if name == header::CONTENT_ENCODING {
                &mut f.content_encoding
            } else if name == X_ACCEL_BUFFERING {
                &mut f.accel_buffering
            } else if name == X_ACCEL_REDIRECT {
                &mut f.accel_redirect
            } else if name == X_SENDFILE {
                &mut f.sendfile
            } else if error_code_name.is_some_and(|n| name.as_str().eq_ignore_ascii_case(n)) {
                &mut f.error_code
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        f
    }

    /// The app named a file for slogate to serve (`X-Accel-Redirect`, `X-Sendfile`).
    fn names_a_file(&self) -> bool {
        self.accel_redirect.is_some() || self.sendfile.is_some()
    }
}

fn as_text(value: Option<&HeaderValue>) -> Option<&str> {
    value.and_then(|v| v.to_str().ok())
}

/// Closes the client connection after this answer (a refused body may still be arriving).
trait CloseAfter {
    fn close(self) -> Self;
}

impl CloseAfter for Response<ResBody> {
    fn close(mut self) -> Self {
        self.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        self
    }
}

fn append_vary(headers: &mut HeaderMap) {
    let has = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("accept-encoding"));
    if !has {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

fn algorithm_token(a: slogate_config::CompressionAlgorithm) -> &'static str {
    match a {
        slogate_config::CompressionAlgorithm::Gzip => "gzip",
        slogate_config::CompressionAlgorithm::Zstd => "zstd",
        slogate_config::CompressionAlgorithm::Brotli => "br",
    }
}

/// Reads the app's answer into memory, as nginx's `proxy_buffering` does: an answer that
/// fits is read whole now (the app's connection is free at once, and the answer leaves with
/// a length); a larger one goes on in the response buffer ([`super::spool`]). A failure
/// before anything was sent to the client is the status to answer instead.
async fn buffer_answer(
    rt: &Runtime,
    settings: &slogate_config::BufferingSettings,
    mut body: AppBody,
    tracker: &mut Tracker,
) -> Result<Source, u16> {
    let read_timeout = rt.config.upstream.read_timeout;
    let mut held: Vec<Bytes> = Vec::new();
    let mut size = 0usize;
    loop {
        if body.is_end_stream() {
            break;
        }
        match within(read_timeout, body.frame()).await {
            Err(_) => {
                tracker.error = Some("upstream read timed out in the body".into());
                return Err(504);
            }
            Ok(Some(Err(e))) => {
                tracker.error = Some(format!("upstream: {e}"));
                return Err(502);
            }
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    size += data.len();
                    held.push(data);
                    if size > settings.memory {
                        let limits = super::spool::Limits {
                            memory: settings.memory,
                            file: settings.max_temp_file_size,
                            dir: settings.temp_path.clone(),
                            read_timeout,
                        };
                        return Ok(Source::Spooled(super::spool::start(held, body, limits)));
                    }
                }
            }
        }
    }
    let now = Instant::now();
    for chunk in &held {
        tracker.exchange.response_chunk(chunk);
    }
    tracker.exchange.response_end(now);
    Ok(Source::Full(joined(held, size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a function returns.
    fn future_size<A, B, C, F>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Each request's future is moved into its box when it starts, and each level of it into
    /// its caller's state: it was ~6 KB (the context copied into every level, the rare paths'
    /// futures inline) before the context went by reference and the rare paths were boxed.
    #[test]
    fn a_request_future_is_not_sized_for_the_rare_paths() {
        let size = future_size::<&'static Runtime, Conn, Request<Incoming>, _>(handle);
        assert!(size <= 3072, "a request's future is {size} bytes");
    }
}
