//! What tests/inprocess.rs needs: slogate in-process in front of the harness's mock upstream
//! (or of a capturing upstream that records the exact bytes it received), each test with its
//! own registry, access log and ports, all stopped when dropped (also when the test fails).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use slogate_harness::mock::{MockServer, MockStats};
use slogate_harness::rules::ProxyRules;
use slogate_harness::scenario::Scenario;
use slogate_proxy::InProcess;
pub use slogate_test_support::*;

/// How long to wait for a request's metrics and log line (recorded when its answer ends).
pub const SETTLE: Duration = Duration::from_secs(5);

/// The parts of slogate's configuration a test changes.
pub struct Settings {
    /// `upstream.read_timeout`.
    pub read_timeout: &'static str,
    /// `server.max_body_size`.
    pub max_body_size: &'static str,
    /// `server.trusted_proxies`, as YAML.
    pub trusted_proxies: &'static str,
    /// `upstream.idle_timeout`.
    pub idle_timeout: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            read_timeout: "5s",
            max_body_size: "1MiB",
            trusted_proxies: "[]",
            idle_timeout: "15s",
        }
    }
}

/// slogate's configuration for `backend`, logging to `log`: one worker, no health checks.
pub fn config(backend: SocketAddr, log: &std::path::Path, s: &Settings) -> slogate_config::Config {
    let text = format!(
        "server:
  threads: 1
  max_body_size: {max_body}
  trusted_proxies: {trusted}
upstream:
  name: app
  backends: ['{backend}']
  connect_timeout: 1s
  read_timeout: {read}
  idle_timeout: {idle}
  health_check: {{enabled: false}}
access_log:
  target: '{log}'
",
        max_body = s.max_body_size,
        trusted = s.trusted_proxies,
        read = s.read_timeout,
        idle = s.idle_timeout,
        log = log.display(),
    );
    slogate_config::parse_str("inprocess-test.yaml", &text)
        .unwrap_or_else(|e| panic!("test configuration: {e}\n{text}"))
}

/// slogate in-process with its own registry and access log. Fields drop in order: the
/// proxy stops before its upstream and before its log directory goes.
pub struct Proxy {
    pub slogate: InProcess,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// slogate in front of `backend`.
    pub fn start(backend: SocketAddr, settings: &Settings) -> Proxy {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("access.log");
        let config = config(backend, &log, settings);
        let registry = slogate_metrics::Registry::new();
        let slogate = InProcess::start_local(config, registry).expect("slogate in-process");
        Proxy {
            slogate,
            log,
            _dir: dir,
        }
    }

    /// `127.0.0.1:port` of the proxy.
    pub fn addr(&self) -> String {
        self.slogate.addr().to_string()
    }

    /// POSTs a GraphQL JSON body to `/graphql`.
    pub fn graphql(&self, body: &str) -> Response {
        self.graphql_with(body, &[])
    }

    /// POSTs a GraphQL JSON body to `/graphql` with extra headers.
    pub fn graphql_with(&self, body: &str, headers: &[(&str, &str)]) -> Response {
        post(
            &self.addr(),
            "/graphql",
            "application/json",
            body.as_bytes(),
            headers,
        )
        .expect("a response from slogate")
    }

    /// The metrics now.
    pub fn metrics(&self) -> Metrics {
        Metrics::parse_strict(&self.slogate.metrics_text())
    }

    /// Waits until `slogate_requests_total` for (operation, type, outcome) is `n`; fails the
    /// test with the request table otherwise.
    pub fn wait_requests(&self, operation: &str, op_type: &str, outcome: &str, n: f64) {
        wait_for_or(
            &format!("slogate_requests_total{{{operation},{op_type},{outcome}}} == {n}"),
            SETTLE,
            || (self.metrics().requests(operation, op_type, outcome) == n).then_some(()),
            || format!("requests: {:#?}", self.metrics().request_table()),
        );
    }

    /// The access log lines written so far, as JSON.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.slogate.flush_access_log();
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits for the access log line of the request `request_id`.
    pub fn log_line(&self, request_id: &str) -> serde_json::Value {
        wait_for_or(
            &format!("the access log line of {request_id}"),
            SETTLE,
            || {
                self.log_lines()
                    .into_iter()
                    .find(|l| l["request_id"] == request_id)
            },
            || std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }
}

/// A GraphQL request body for `document`.
pub fn query(document: &str) -> String {
    serde_json::json!({ "query": document }).to_string()
}

/// The harness's mock upstream serving `scenario` (YAML) with the default rules.
pub fn mock(scenario: &str) -> MockServer {
    let scenario = Scenario::parse("inprocess-scenario.yaml", scenario)
        .unwrap_or_else(|e| panic!("test scenario: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the mock");
    MockServer::spawn(listener, Arc::new(scenario), ProxyRules::defaults()).expect("mock")
}

/// slogate in front of the mock: dropped proxy first, then the mock.
pub struct Rig {
    pub proxy: Proxy,
    pub mock: MockServer,
}

impl Rig {
    /// The mock serving `scenario`, slogate in front of it.
    pub fn start(scenario: &str, settings: &Settings) -> Rig {
        let mock = mock(scenario);
        let proxy = Proxy::start(mock.addr(), settings);
        Rig { proxy, mock }
    }

    /// What the mock answered.
    pub fn stats(&self) -> MockStats {
        self.mock.stats()
    }
}

/// An address where nothing listens (a port just released).
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("a port");
    l.local_addr().expect("its address")
}

/// One request as an upstream received it: the head as sent and the body's bytes.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    /// The values of a header (case-insensitive name), in the order sent.
    pub fn header_values<'a: 'n, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + 'n {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(move |(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// A header's value, if sent once or more (the first).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// How many times a header was sent.
    pub fn header_count(&self, name: &str) -> usize {
        self.header_values(name).count()
    }
}

/// An upstream that records every request's exact bytes and answers a GraphQL success
/// (`Connection: close`). The mock counts and answers; this one shows what arrived.
pub struct Capture {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    pub fn start() -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the capture");
        let addr = listener.local_addr().expect("its address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some(req) = read_request(&mut conn) {
                    r.lock().unwrap().push(req);
                    let body = br#"{"data":{"ok":true}}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(body);
                }
            }
        });
        Capture {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a message head up to its blank line, a byte at a time, so nothing after it (an
/// upgraded connection's first bytes) is taken; what arrived if the peer closes first.
pub fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads one HTTP/1.1 request: the head, then a `Content-Length` or chunked body (decoded).
fn read_request(conn: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
    let mut rest = buf[head_end..].to_vec();
    let probe = Received {
        head: head.clone(),
        body: Vec::new(),
    };
    let chunked = probe
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        while !rest.windows(5).any(|w| w == b"0\r\n\r\n") {
            let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
            rest.extend_from_slice(&chunk[..n]);
        }
        dechunk(&rest)
    } else {
        let len: usize = probe
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    };
    Some(Received { head, body })
}
