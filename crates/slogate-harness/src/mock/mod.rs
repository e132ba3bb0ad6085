//! The mock upstream: a fast hyper server that answers like a Rails GraphQL app as the
//! scenario says, and counts what it answered per operation and per class. Its count,
//! served at `/__mock/stats`, is the ground truth the proxy's metrics are checked against.

mod plan;
mod reply;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use slogate_core::request::{ExtractorOptions, OperationExtractor};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::counts::{OpKey, OutcomeCounts};
use crate::rng::Rng;
use crate::rules::ProxyRules;
use crate::scenario::{AnswerKind, Scenario};

pub use reply::{Reply, ERROR_PAGE};

/// Request bodies read at most (a GraphQL server would refuse larger ones too).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Request ids remembered to recognise the proxy's retries.
const RECENT_IDS: usize = 200_000;

/// What the mock answered for one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockOperation {
    /// `graphql` or `http`.
    pub kind: String,
    /// The operation as the mock read it (`(invalid)` when unreadable).
    pub operation: String,
    /// Answers by label (`success`, `field_error:NOT_FOUND`, `status:500`, `reset`, ...).
    pub answers: BTreeMap<String, u64>,
    /// The outcome each answer must be classified as, under the proxy's rules.
    pub outcomes: OutcomeCounts,
}

/// The mock's ground truth.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockStats {
    /// HTTP requests answered (retries not counted again).
    pub requests: u64,
    /// Requests whose `X-Request-Id` was already answered: retries by the proxy, answered the
    /// same way and not counted again.
    pub duplicates: u64,
    /// Connections accepted.
    #[serde(default)]
    pub connections: u64,
    /// Per operation.
    pub operations: Vec<MockOperation>,
}

impl MockStats {
    /// Outcome counts per operation.
    pub fn outcomes(&self) -> BTreeMap<OpKey, OutcomeCounts> {
        self.operations
            .iter()
            .map(|o| {
                (
                    OpKey {
                        kind: o.kind.clone(),
                        operation: o.operation.clone(),
                    },
                    o.outcomes,
                )
            })
            .collect()
    }

    /// What was answered between `before` and `self`.
    pub fn since(&self, before: &MockStats) -> MockStats {
        let old: BTreeMap<OpKey, &MockOperation> = before
            .operations
            .iter()
            .map(|o| {
                (
                    OpKey {
                        kind: o.kind.clone(),
                        operation: o.operation.clone(),
                    },
                    o,
                )
            })
            .collect();
        let operations = self
            .operations
            .iter()
            .map(|o| {
                let key = OpKey {
                    kind: o.kind.clone(),
                    operation: o.operation.clone(),
                };
                let Some(prev) = old.get(&key) else {
                    return o.clone();
                };
                let answers = o
                    .answers
                    .iter()
                    .map(|(k, n)| {
                        (
                            k.clone(),
                            n.saturating_sub(*prev.answers.get(k).unwrap_or(&0)),
                        )
                    })
                    .filter(|(_, n)| *n > 0)
                    .collect();
                MockOperation {
                    answers,
                    outcomes: o.outcomes.since(&prev.outcomes),
                    ..o.clone()
                }
            })
            .filter(|o| o.outcomes.total() > 0)
            .collect();
        MockStats {
            requests: self.requests.saturating_sub(before.requests),
            duplicates: self.duplicates.saturating_sub(before.duplicates),
            connections: self.connections.saturating_sub(before.connections),
            operations,
        }
    }
}

#[derive(Default)]
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Recent {
    /// Remembers `id`; false if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

#[derive(Default)]
struct Counters {
    requests: u64,
    duplicates: u64,
    operations: BTreeMap<OpKey, (BTreeMap<String, u64>, OutcomeCounts)>,
}

struct State {
    scenario: Arc<Scenario>,
    rules: ProxyRules,
    extractor: OperationExtractor,
    apq: Mutex<HashSet<String>>,
    recent: Mutex<Recent>,
    counters: Mutex<Counters>,
    unnamed: AtomicU64,
    connections: AtomicU64,
}

impl State {
    fn stats(&self) -> MockStats {
        let Ok(c) = self.counters.lock() else {
            return MockStats::default();
        };
        MockStats {
            requests: c.requests,
            duplicates: c.duplicates,
            connections: self.connections.load(Ordering::Relaxed),
            operations: c
                .operations
                .iter()
                .map(|(k, (answers, outcomes))| MockOperation {
                    kind: k.kind.clone(),
                    operation: k.operation.clone(),
                    answers: answers.clone(),
                    outcomes: *outcomes,
                })
                .collect(),
        }
    }

    fn record(&self, ops: &[(OpKey, AnswerKind, bool)]) {
        let Ok(mut c) = self.counters.lock() else {
            return;
        };
        c.requests += 1;
        for (key, answer, graphql) in ops {
            let entry = c.operations.entry(key.clone()).or_default();
            *entry.0.entry(answer.label()).or_insert(0) += 1;
            entry.1.add(answer.outcome(&self.rules.policy, *graphql), 1);
        }
    }

    /// The generator of one request's draws: keyed by its id, so a retry draws the same.
    fn rng(&self, request_id: Option<&str>) -> Rng {
        match request_id {
            Some(id) => Rng::keyed(self.scenario.seed, id),
            None => {
                let n = self.unnamed.fetch_add(1, Ordering::Relaxed);
                Rng::keyed(self.scenario.seed, &format!("unnamed-{n}"))
            }
        }
    }

    /// Whether this request id is new (a retry is answered but not counted again).
    fn first_time(&self, request_id: Option<&str>) -> bool {
        let Some(id) = request_id else {
            return true;
        };
        let fresh = self.recent.lock().map(|mut r| r.insert(id)).unwrap_or(true);
        if !fresh {
            if let Ok(mut c) = self.counters.lock() {
                c.duplicates += 1;
            }
        }
        fresh
    }
}

/// A running mock upstream. Dropping it stops accepting connections.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Serves `scenario` on `listener`, on the current tokio runtime.
    pub fn start(
        listener: TcpListener,
        scenario: Arc<Scenario>,
        rules: ProxyRules,
    ) -> io::Result<MockServer> {
        let addr = listener.local_addr()?;
        let state = new_state(scenario, rules);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, state.clone(), stopped));
        Ok(MockServer {
            addr,
            state,
            stop,
            thread: None,
        })
    }

    /// Serves `scenario` on `listener` from a runtime of its own (two worker threads), for
    /// callers without one, such as tests.
    pub fn spawn(
        listener: std::net::TcpListener,
        scenario: Arc<Scenario>,
        rules: ProxyRules,
    ) -> io::Result<MockServer> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = new_state(scenario, rules);
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mock-upstream")
            .enable_all()
            .build()?;
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("mock-upstream".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, served, stopped).await,
                        Err(e) => tracing::error!("mock upstream: {e}"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(MockServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it answered so far.
    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    /// `http://ADDR/__mock/stats`.
    pub fn stats_url(&self) -> String {
        format!("http://{}/__mock/stats", self.addr)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn new_state(scenario: Arc<Scenario>, rules: ProxyRules) -> Arc<State> {
    // A GraphQL server reads the whole body: no inspection cap, no batch cap to speak of.
    let extractor = OperationExtractor::new(ExtractorOptions {
        max_inspect_bytes: MAX_BODY,
        max_batch: 100_000,
        ..ExtractorOptions::default()
    });
    Arc::new(State {
        scenario,
        rules,
        extractor,
        apq: Mutex::new(HashSet::new()),
        recent: Mutex::new(Recent::default()),
        counters: Mutex::new(Counters::default()),
        unnamed: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    })
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    state.connections.fetch_add(1, Ordering::Relaxed);
                    serve_connection(stream, state.clone())
                }
                Err(e) => {
                    tracing::warn!("mock upstream: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = stopped.changed() => return,
        }
    }
}

/// A duplicate of the connection's socket, kept to turn a close into a reset on demand.
struct Conn {
    fd: Option<OwnedFd>,
}

impl Conn {
    /// The next close of this connection sends a TCP RST instead of a FIN.
    fn reset_on_close(&self) {
        if let Some(fd) = &self.fd {
            let _ = socket2::SockRef::from(fd).set_linger(Some(Duration::ZERO));
        }
    }
}

fn serve_connection(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let conn = Arc::new(Conn {
        fd: stream.as_fd().try_clone_to_owned().ok(),
    });
    tokio::spawn(async move {
        let service = service_fn(move |req| {
            let (state, conn) = (state.clone(), conn.clone());
            async move { handle(state, conn, req).await }
        });
        let served = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
        if let Err(e) = served {
            tracing::debug!("mock upstream connection: {e}");
        }
    });
}

/// The body type of the mock's responses.
pub type MockBody = BoxBody<Bytes, io::Error>;

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<MockBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|e: Infallible| match e {})
            .boxed(),
    );
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(
    state: Arc<State>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, io::Error> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if let Some(admin) = path.strip_prefix("/__mock/") {
        return Ok(admin_response(&state, admin));
    }
    if matches!(path.as_str(), "/up" | "/health" | "/healthz") {
        return Ok(full(200, "text/plain", "OK"));
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(full(413, "text/plain", "request body too large\n")),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let request_id = header("x-request-id").map(String::from);
    let facts = plan::RequestFacts {
        method: parts.method.as_str(),
        path: &path,
        query: parts.uri.query(),
        content_type: header("content-type"),
        accepts_gzip: header("accept-encoding").is_some_and(|v| v.contains("gzip")),
    };
    let mut rng = state.rng(request_id.as_deref());
    let decision = if path == state.scenario.graphql_path {
        let ctx = plan::Context {
            scenario: &state.scenario,
            extractor: &state.extractor,
            apq: &state.apq,
        };
        plan::graphql(&ctx, &facts, &body, &mut rng)
    } else {
        let unmatched = state.rules.routes.name(facts.method, &path);
        plan::rest(&state.scenario, &facts, unmatched, &mut rng)
    };
    if state.first_time(request_id.as_deref()) {
        state.record(&decision.ops);
    }
    execute(decision.reply, &conn).await
}

fn admin_response(state: &State, what: &str) -> Response<MockBody> {
    match what {
        "stats" => {
            let text = serde_json::to_string_pretty(&state.stats()).unwrap_or_default();
            full(200, "application/json", text)
        }
        "reset" => {
            if let Ok(mut c) = state.counters.lock() {
                *c = Counters::default();
            }
            full(200, "application/json", "{}")
        }
        _ => full(
            404,
            "text/plain",
            "mock upstream: /__mock/stats, /__mock/reset\n",
        ),
    }
}

fn gzip(body: &[u8]) -> io::Result<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body)?;
    Ok(Bytes::from(enc.finish()?))
}

async fn execute(reply: Reply, conn: &Conn) -> Result<Response<MockBody>, io::Error> {
    match reply {
        Reply::Respond {
            status,
            content_type,
            body,
            gzip: compress,
            trickle,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            let body = if compress { gzip(&body)? } else { body };
            let mut response = match trickle {
                Some((chunks, interval)) => trickled(status, content_type, body, chunks, interval),
                None => full(status, content_type, body),
            };
            if compress {
                let h = response.headers_mut();
                h.insert(
                    hyper::header::CONTENT_ENCODING,
                    hyper::header::HeaderValue::from_static("gzip"),
                );
                h.insert(
                    hyper::header::VARY,
                    hyper::header::HeaderValue::from_static("Accept-Encoding"),
                );
            }
            Ok(response)
        }
        Reply::Reset { delay } => {
            tokio::time::sleep(delay).await;
            conn.reset_on_close();
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "scenario: reset",
            ))
        }
        Reply::Truncated { body, delay } => {
            tokio::time::sleep(delay).await;
            conn.reset_on_close();
            Ok(truncated(body))
        }
        Reply::Hang { duration, body } => {
            tokio::time::sleep(duration).await;
            Ok(full(200, "application/json", body))
        }
    }
}

/// A body sent in `chunks` pieces `interval` apart (chunked transfer encoding).
fn trickled(
    status: u16,
    content_type: &str,
    body: Bytes,
    chunks: u32,
    interval: Duration,
) -> Response<MockBody> {
    let (mut tx, channel) = http_body_util::channel::Channel::<Bytes, io::Error>::new(1);
    let size = body.len().div_ceil(chunks.max(1) as usize).max(1);
    tokio::spawn(async move {
        let mut rest = body;
        let mut first = true;
        while !rest.is_empty() {
            if !first {
                tokio::time::sleep(interval).await;
            }
            first = false;
            let piece = rest.split_to(size.min(rest.len()));
            if tx.send(Frame::data(piece)).await.is_err() {
                return;
            }
        }
    });
    let mut r = full(status, content_type, Bytes::new());
    *r.body_mut() = channel.boxed();
    r
}

/// Headers announcing `body` in full, half of it, then an error that aborts the connection.
fn truncated(body: Bytes) -> Response<MockBody> {
    let (mut tx, channel) = http_body_util::channel::Channel::<Bytes, io::Error>::new(1);
    let len = body.len();
    tokio::spawn(async move {
        let half = body.slice(..len / 2);
        if tx.send(Frame::data(half)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.abort(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "scenario: truncated",
            ));
        }
    });
    let mut r = full(200, "application/json", Bytes::new());
    *r.body_mut() = channel.boxed();
    r.headers_mut().insert(
        hyper::header::CONTENT_LENGTH,
        hyper::header::HeaderValue::from(len),
    );
    r
}
