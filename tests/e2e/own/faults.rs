//! Upstream faults under load (issue #11): while a steady open-loop load runs through
//! slogate, the upstream fails, and nothing may be lost, hang or leak.
//!
//! * The Rails fixture on a Puma of the test's own, killed and restarted: in
//!   `needs/rails/faults.rs`, with the same load and checks.
//! * A raw TCP upstream written here, whose fault is switched while the load runs: a reset
//!   in the middle of the body, a close right after the head, bytes that are not HTTP, a head
//!   whose body never ends, an answer slower than `upstream.read_timeout`.
//!
//! For every fault: each request the client sent is counted once in
//! `slogate_requests_total` and logged on one access-log line (by its `X-Request-Id`) with
//! the status and outcome the client saw; a failure is `system_error`, 502 or 504 when
//! slogate could still choose the status (or a cut 200 when the app's head had already gone
//! to the client, as nginx does); no request takes longer than a bound; the open fds of the
//! slogate process come back to where they were and `slogate_connections_open` to 0; every
//! request sent once the upstream is back succeeds.
//!
//! The load is plain threads, one connection (`Connection: close`) per request, sent at a
//! fixed rate: exact, and each request's status and timing is known. One test runs
//! keep-alive clients through every raw fault in turn; three send request bodies larger than
//! slogate reads ahead, so the body still streams to the app when it fails.
//!
//! The bugs these tests found have regression tests at the end; the one still open (a Puma
//! hot restart, in `needs/rails/faults.rs`) is `#[ignore = "..."]` with its cause.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The load: an open loop of plain threads

/// One request as the client saw it.
#[derive(Debug)]
pub(crate) struct Seen {
    id: String,
    /// When it was sent, from the start of the load.
    sent: Duration,
    took: Duration,
    /// `None`: no status line arrived.
    status: Option<u16>,
    /// The whole announced body arrived.
    complete: bool,
    body: Vec<u8>,
    error: Option<String>,
}

impl Seen {
    fn succeeded(&self) -> bool {
        self.status == Some(200) && self.complete && self.error.is_none()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An open-loop load: a request every `1 / rate` seconds, whatever became of the others.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    driver: std::thread::JoinHandle<Vec<Seen>>,
}

impl Load {
    /// Starts sending `body` (a GraphQL request) to `addr`; a request not answered within
    /// `bound` is reported as hung.
    pub(crate) fn start(addr: &str, body: &'static str, rate: f64, bound: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let (addr, halt) = (addr.to_string(), stop.clone());
        let driver = std::thread::spawn(move || {
            let (tx, rx) = mpsc::channel();
            let mut ids = Vec::new();
            while !halt.load(Ordering::Relaxed) {
                let due = started + Duration::from_secs_f64(ids.len() as f64 / rate);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let id = format!("fault-{}-{}", std::process::id(), ids.len());
                ids.push((id.clone(), due - started));
                let (tx, addr) = (tx.clone(), addr.clone());
                std::thread::spawn(move || {
                    let _ = tx.send(send_one(&addr, &id, body, due - started, bound));
                });
            }
            drop(tx);
            let deadline = Instant::now() + bound + Duration::from_secs(2);
            let mut seen: HashMap<String, Seen> = HashMap::new();
            while seen.len() < ids.len() {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(s) => {
                        seen.insert(s.id.clone(), s);
                    }
                    Err(_) => break,
                }
            }
            ids.into_iter()
                .map(|(id, sent)| {
                    seen.remove(&id).unwrap_or(Seen {
                        id,
                        sent,
                        took: bound,
                        status: None,
                        complete: false,
                        body: Vec::new(),
                        error: Some("no end within the bound: hung".into()),
                    })
                })
                .collect()
        });
        Load {
            stop,
            started,
            driver,
        }
    }

    /// Time since the load started.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops sending; returns every request once each ended (or hung past the bound).
    pub(crate) fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.driver.join().expect("the load driver")
    }
}

/// POSTs `body` to `/graphql` with `X-Request-Id: id` and reads until the server closes.
fn send_one(addr: &str, id: &str, body: &str, sent: Duration, bound: Duration) -> Seen {
    let start = Instant::now();
    let request = graphql_request(addr, id, body, "close");
    let mut buf = Vec::new();
    let error = (|| {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(bound))?;
        s.set_write_timeout(Some(bound))?;
        s.write_all(request.as_bytes())?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match s.read(&mut chunk)? {
                0 => return Ok(()),
                n => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })()
    .err()
    .map(|e: std::io::Error| e.to_string());
    let (status, complete, body) = read_head(&buf);
    Seen {
        id: id.to_string(),
        sent,
        took: start.elapsed(),
        status,
        complete,
        body,
        error,
    }
}

/// A GraphQL POST with `X-Request-Id: id` and `Connection: connection`.
fn graphql_request(addr: &str, id: &str, body: &str, connection: &str) -> String {
    format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nConnection: {connection}\r\nContent-Type: application/json\r\nX-Request-Id: {id}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A client on one keep-alive connection, sending a request after each answer (on a new
/// connection once slogate closed the last) until `stop`.
fn keep_alive_client(
    addr: &str,
    client: usize,
    started: Instant,
    stop: &AtomicBool,
    bound: Duration,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut conn: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("keepalive-{}-{client}-{}", std::process::id(), seen.len());
        let (sent, start) = (started.elapsed(), Instant::now());
        let mut buf = Vec::new();
        let result = (|| {
            if conn.is_none() {
                let s = TcpStream::connect(addr)?;
                s.set_read_timeout(Some(bound))?;
                conn = Some(s);
            }
            let s = conn.as_mut().expect("connected");
            ask(s, addr, &id, &mut buf)
        })();
        let (status, complete, body) = read_head(&buf);
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if !matches!(result, Ok(false)) || head.contains("\r\nconnection: close\r\n") {
            conn = None;
        }
        seen.push(Seen {
            id,
            sent,
            took: start.elapsed(),
            status,
            complete,
            body,
            error: result.err().map(|e: std::io::Error| e.to_string()),
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

/// Sends a keep-alive request on `s` and reads one answer into `buf`; `Ok(true)` when the
/// server closed before the answer was whole.
fn ask(s: &mut TcpStream, addr: &str, id: &str, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    s.write_all(graphql_request(addr, id, FAULTY_QUERY, "keep-alive").as_bytes())?;
    let mut chunk = [0u8; 16 * 1024];
    while !read_head(buf).1 {
        match s.read(&mut chunk)? {
            0 => return Ok(true),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(false)
}

/// The status, whether the body announced by the head arrived whole, and the body.
fn read_head(buf: &[u8]) -> (Option<u16>, bool, Vec<u8>) {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (None, false, Vec::new());
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok());
    let body = buf[end + 4..].to_vec();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let complete = match (header("content-length:"), header("transfer-encoding:")) {
        (Some(len), _) => len.parse() == Ok(body.len()),
        (None, Some(te)) if te.contains("chunked") => body.ends_with(b"0\r\n\r\n"),
        _ => true,
    };
    (status, complete, body)
}

// ---------------------------------------------------------------------------------------------
// What every fault test checks

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// What a process's fds are, sockets with their TCP state and peer (from `ss`).
fn describe_fds(pid: u32) -> String {
    let mut out = String::new();
    if let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in d.flatten() {
            let target = std::fs::read_link(e.path())
                .map_or_else(|e| e.to_string(), |t| t.display().to_string());
            out.push_str(&format!(
                "  {} -> {target}\n",
                e.file_name().to_string_lossy()
            ));
        }
    }
    if let Ok(o) = Command::new("ss").args(["-tanp"]).output() {
        let needle = format!("pid={pid},");
        for line in String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains(&needle))
        {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// What slogate's state was before the load.
pub(crate) struct Before {
    metrics: Metrics,
    log_lines: usize,
    fds: usize,
}

pub(crate) fn before(s: &Slogate) -> Before {
    Before {
        metrics: s.metrics(),
        log_lines: s.access_log().len(),
        fds: settled_fds(s.pid()),
    }
}

/// The open fds once they stop changing (the same count for 250 ms). slogate answers on its
/// port before its worker threads have their runtimes and copies of the listening sockets:
/// counted earlier, the baseline missed them, and a test failed saying 7 fds had not come
/// back.
fn settled_fds(pid: u32) -> usize {
    let mut last = open_fds(pid);
    let mut same = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while same < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = open_fds(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// How a failed request may look.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failures {
    /// Statuses slogate may answer instead of the app.
    statuses: &'static [u16],
    /// The app's head was passed on before the app failed: a `200` cut short, or nothing at
    /// all when the body failed before hyper flushed the head (the access log then says
    /// 200 though the client got no status).
    cut_200: bool,
}

/// The fault may only end in a gateway error.
pub(crate) const GATEWAY: Failures = Failures {
    statuses: &[502, 504],
    cut_200: false,
};

/// Everything the issue asks, for one run of the load; `back` is when the upstream was
/// healthy again (from the load's start). Returns (successes, failures).
pub(crate) fn check(
    s: &Slogate,
    b: &Before,
    seen: &[Seen],
    operation: &str,
    allowed: Failures,
    bound: Duration,
    back: Duration,
) -> (usize, usize) {
    let n = seen.len();
    let show = |r: &Seen| {
        format!(
            "{} sent at {:?} took {:?}: status {:?} complete {} error {:?} body {:.120}",
            r.id,
            r.sent,
            r.took,
            r.status,
            r.complete,
            r.error,
            r.text()
        )
    };
    assert!(n > 20, "the load ran: {n} requests");
    // Nothing hangs.
    for r in seen {
        assert!(r.took < bound, "not done within {bound:?}: {}", show(r));
    }
    // Each request a success or an allowed failure; after the upstream is back, a success.
    let mut failed = 0;
    for r in seen {
        if r.succeeded() {
            assert!(r.text().contains("\"data\""), "{}", show(r));
            continue;
        }
        failed += 1;
        let gateway = r.status.is_some_and(|st| allowed.statuses.contains(&st)) && r.complete;
        let cut = allowed.cut_200
            && (r.status == Some(200) && !r.complete || r.status.is_none() && r.body.is_empty());
        assert!(gateway || cut, "an unexpected answer: {}", show(r));
        assert!(
            r.sent < back,
            "failed though sent after the upstream was back at {back:?}: {}",
            show(r)
        );
    }
    let ok = n - failed;
    // Counted once each, with the client's outcome.
    let total = b.metrics.sum("slogate_requests_total", &[]) + n as f64;
    let m = s.wait_requests(total);
    let table = m.request_table();
    assert_eq!(
        m.sum("slogate_requests_total", &[]),
        total,
        "{n} sent: {table:?}"
    );
    let delta = |outcome| {
        m.requests(operation, "query", outcome) - b.metrics.requests(operation, "query", outcome)
    };
    assert_eq!(delta("success"), ok as f64, "{table:?}");
    // Failures by outcome over every operation: see
    // an_app_failure_during_a_streamed_request_body_keeps_the_operation_name.
    let errors = |m: &Metrics| m.sum("slogate_requests_total", &[("outcome", "system_error")]);
    assert_eq!(errors(&m) - errors(&b.metrics), failed as f64, "{table:?}");
    // One access-log line each, with the status and outcome the client saw.
    let lines = wait_for("the access log", Duration::from_secs(10), || {
        let l = s.access_log();
        (l.len() >= b.log_lines + n).then_some(l)
    });
    std::thread::sleep(Duration::from_millis(300));
    let lines_now = s.access_log().len();
    assert_eq!(
        lines_now,
        b.log_lines + n,
        "access-log lines for {n} requests"
    );
    let mut by_id: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for l in &lines[b.log_lines..] {
        by_id
            .entry(l["request_id"].as_str().unwrap_or(""))
            .or_default()
            .push(l);
    }
    for r in seen {
        let logged = by_id.get(r.id.as_str()).map_or(&[][..], Vec::as_slice);
        assert_eq!(logged.len(), 1, "log lines of {}: {logged:?}", show(r));
        let line = logged[0];
        let outcome = if r.succeeded() {
            "success"
        } else {
            "system_error"
        };
        assert_eq!(line["outcome"], outcome, "{line} for {}", show(r));
        let status = r.status.unwrap_or(if allowed.cut_200 { 200 } else { 0 });
        assert_eq!(line["status"], status, "{line} for {}", show(r));
    }
    // Nothing stays open once the clients are gone.
    let pid = s.pid();
    wait_for(
        "slogate_connections_open to come back to 0",
        Duration::from_secs(10),
        || {
            let open = s.metrics().sum("slogate_connections_open", &[]);
            (open == 0.0).then_some(())
        },
    );
    let fds = wait_for_or(
        "slogate's fds to come back",
        Duration::from_secs(10),
        || {
            let now = open_fds(pid);
            (now <= b.fds + 2).then_some(now)
        },
        || format!("{} fds before; now:\n{}", b.fds, describe_fds(pid)),
    );
    eprintln!(
        "{operation}: {n} requests, {ok} ok, {failed} failed; slogate fds {} before, {fds} after",
        b.fds
    );
    (ok, failed)
}

// ---------------------------------------------------------------------------------------------
// A raw upstream whose fault can be switched while the load runs

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    /// A complete `200` with a GraphQL result, the connection kept alive.
    None = 0,
    /// The head and half the body, then a reset (the request body is left unread, so the
    /// close sends RST).
    ResetMidBody,
    /// The head announcing a body, then a close.
    CloseAfterHead,
    /// Something that is not HTTP, then a close.
    Garbage,
    /// The head and the start of the body, then silence until slogate gives up.
    EndlessBody,
    /// A complete answer, three read timeouts late.
    Slow,
    /// On a connection that already served a request: a close without an answer (a
    /// pooled connection gone stale); on a new one: [`Fault::Slow`].
    StaleThenSlow,
}

/// slogate's `upstream.read_timeout` in front of the raw upstream.
const READ_TIMEOUT: Duration = Duration::from_millis(400);

const OK_BODY: &str = r#"{"data":{"ok":true}}"#;

/// The raw upstream: a thread per connection.
struct FaultyApp {
    addr: SocketAddr,
    fault: Arc<AtomicU8>,
    /// Connections open now.
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultyApp {
    fn start() -> FaultyApp {
        FaultyApp::start_with(APP_IDLE)
    }

    /// An upstream that closes a keep-alive connection after `idle` without a request.
    fn start_with(idle: Duration) -> FaultyApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the raw upstream");
        let addr = listener.local_addr().expect("its address");
        let fault = Arc::new(AtomicU8::new(Fault::None as u8));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, o, st) = (fault.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (f, o, st) = (f.clone(), o.clone(), st.clone());
                o.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve(conn, &f, &st, idle);
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultyApp {
            addr,
            fault,
            open,
            stop,
        }
    }

    fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }
}

impl Drop for FaultyApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// How long an idle keep-alive connection is kept (Puma's `persistent_timeout`, short).
const APP_IDLE: Duration = Duration::from_millis(500);

fn serve(mut c: TcpStream, fault: &AtomicU8, stop: &AtomicBool, app_idle: Duration) {
    let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
    for served in 0.. {
        // The head, a byte at a time: the request body stays unread until wanted.
        let mut head = Vec::new();
        let mut idle = Instant::now();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            match c.read(&mut byte) {
                Ok(0) => return,
                Ok(_) => {
                    head.push(byte[0]);
                    idle = Instant::now();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stop.load(Ordering::Relaxed) || idle.elapsed() > app_idle {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut current = fault.load(Ordering::SeqCst);
        if current == Fault::StaleThenSlow as u8 {
            if served > 0 {
                return;
            }
            current = Fault::Slow as u8;
        }
        if current != Fault::ResetMidBody as u8 {
            let mut body = vec![0u8; length];
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            if c.read_exact(&mut body).is_err() {
                return;
            }
            let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
        }
        let big_head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8192\r\n\r\n";
        let pad = format!("{{\"data\":{{\"pad\":\"{}", "x".repeat(8192));
        match current {
            x if x == Fault::ResetMidBody as u8 => {
                let _ = c.write_all(big_head.as_bytes());
                let _ = c.write_all(&pad.as_bytes()[..4096]);
                return; // unread request body: the close is a reset
            }
            x if x == Fault::CloseAfterHead as u8 => {
                let _ = c.write_all(big_head.as_bytes());
                return;
            }
            x if x == Fault::Garbage as u8 => {
                let _ =
                    c.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 this is not HTTP\r\n\r\n");
                return;
            }
            x if x == Fault::EndlessBody as u8 => {
                let _ = c.write_all(big_head.as_bytes());
                let _ = c.write_all(&pad.as_bytes()[..100]);
                // Until slogate closes (or the test ends).
                let mut sink = [0u8; 1024];
                loop {
                    match c.read(&mut sink) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            }
            x if x == Fault::Slow as u8 => std::thread::sleep(READ_TIMEOUT * 3),
            _ => {}
        }
        let ok = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{OK_BODY}",
            OK_BODY.len()
        );
        if c.write_all(ok.as_bytes()).is_err() {
            return;
        }
    }
}

const FAULTY_QUERY: &str = r#"{"query":"query Faulty { ok }"}"#;

/// slogate in front of the raw upstream, answers buffered (`proxy_buffering on`) or not.
///
/// slogate lets an idle connection to the app go before the app does (`idle_timeout` below
/// [`APP_IDLE`], as a deployment keeps it below Puma's `persistent_timeout`): otherwise a
/// request can leave on a connection the app is closing that instant, which fails a body too
/// large to send again (a 502 after the fault was over, seen once with hyper's client under
/// the full suite's load: it notices a close only when its connection task has run).
fn slogate_before(app: &FaultyApp, buffered: bool) -> Slogate {
    let yaml = format!(
        "upstream:\n  name: rails\n  backends: [\"{}\"]\n  read_timeout: {}ms\n  idle_timeout: {}ms\n  health_check:\n    enabled: false\n  buffering:\n    enabled: {buffered}\n",
        app.addr,
        READ_TIMEOUT.as_millis(),
        APP_IDLE.as_millis() * 3 / 5
    );
    start_slogate_with("unused", QUICK_HEADERS, &yaml)
}

/// start_slogate's readiness probe is a connection that never sends a head: it stays open
/// for `client_header_timeout`. Short, so that `slogate_connections_open` can reach 0.
pub(crate) const QUICK_HEADERS: &str = "  client_header_timeout: 1s\n";

/// Load at 40/s: healthy for 0.8 s, `fault` for 1.2 s, healthy for 1 s; then every check.
fn fault_under_load(fault: Fault, buffered: bool, allowed: Failures) {
    fault_under_load_sending(FAULTY_QUERY, fault, buffered, allowed);
}

/// [`fault_under_load`] with `body` as every request's body.
fn fault_under_load_sending(body: &'static str, fault: Fault, buffered: bool, allowed: Failures) {
    let _heavy = heavy();
    let app = FaultyApp::start();
    let s = slogate_before(&app, buffered);
    let b = before(&s);
    let bound = READ_TIMEOUT + Duration::from_secs(3);
    let load = Load::start(&s.addr(), body, 40.0, bound);
    std::thread::sleep(Duration::from_millis(800));
    app.set(fault);
    std::thread::sleep(Duration::from_millis(1200));
    app.set(Fault::None);
    let back = load.now();
    std::thread::sleep(Duration::from_millis(1000));
    let seen = load.finish();
    let (_, failed) = check(&s, &b, &seen, "Faulty", allowed, bound, back);
    assert!(failed >= 10, "{fault:?} failed only {failed} requests");
    // slogate holds no connection to the app once the load is over (the app closes idle
    // ones itself after APP_IDLE; a hung answer only ends when slogate lets go).
    wait_for(
        "the app's connections to close",
        Duration::from_secs(10),
        || (app.open.load(Ordering::SeqCst) == 0).then_some(()),
    );
}

/// slogate answers the gateway error itself.
pub(crate) const ONLY_502: Failures = Failures {
    statuses: &[502],
    cut_200: false,
};
const ONLY_504: Failures = Failures {
    statuses: &[504],
    cut_200: false,
};

/// A cut `200` is how a failure after the head reaches the client when answers stream.
const CUT_OR_GATEWAY: Failures = Failures {
    statuses: &[502, 504],
    cut_200: true,
};

#[test]
fn keep_alive_clients_ride_through_every_fault() {
    let _heavy = heavy();
    // Four clients each on a keep-alive connection; the faults follow one another. After a
    // gateway error the connection goes on (or is closed with `Connection: close`); after
    // a cut answer the client connects again. Every request is still counted and logged
    // once, with what its client saw.
    let app = FaultyApp::start();
    let s = slogate_before(&app, false);
    let b = before(&s);
    let bound = READ_TIMEOUT + Duration::from_secs(3);
    let (stop, started) = (Arc::new(AtomicBool::new(false)), Instant::now());
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (addr, stop) = (s.addr(), stop.clone());
            std::thread::spawn(move || keep_alive_client(&addr, i, started, &stop, bound))
        })
        .collect();
    for fault in [
        Fault::Garbage,
        Fault::Slow,
        Fault::CloseAfterHead,
        Fault::ResetMidBody,
        Fault::EndlessBody,
    ] {
        std::thread::sleep(Duration::from_millis(400));
        app.set(fault);
        std::thread::sleep(Duration::from_millis(600));
        app.set(Fault::None);
    }
    let back = started.elapsed();
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("a client"))
        .collect();
    let (_, failed) = check(&s, &b, &seen, "Faulty", CUT_OR_GATEWAY, bound, back);
    assert!(failed >= 10, "only {failed} failed");
    wait_for(
        "the app's connections to close",
        Duration::from_secs(10),
        || (app.open.load(Ordering::SeqCst) == 0).then_some(()),
    );
}

/// A request body larger than slogate reads ahead (64 KiB): it streams to the app while the
/// app fails.
fn big_query() -> &'static str {
    let pad = "x".repeat(256 * 1024);
    let body = format!(r#"{{"query":"query Faulty {{ ok }}","variables":{{"pad":"{pad}"}}}}"#);
    Box::leak(body.into_boxed_str())
}

#[test]
fn reset_mid_body_streamed() {
    fault_under_load(Fault::ResetMidBody, false, CUT_OR_GATEWAY);
}

#[test]
fn reset_mid_body_buffered_is_a_502() {
    fault_under_load(Fault::ResetMidBody, true, ONLY_502);
}

#[test]
fn close_after_head_streamed() {
    fault_under_load(Fault::CloseAfterHead, false, CUT_OR_GATEWAY);
}

#[test]
fn close_after_head_buffered_is_a_502() {
    fault_under_load(Fault::CloseAfterHead, true, ONLY_502);
}

#[test]
fn garbage_instead_of_http_is_a_502() {
    fault_under_load(Fault::Garbage, false, ONLY_502);
}

#[test]
fn endless_body_streamed_is_cut_at_the_read_timeout() {
    fault_under_load(Fault::EndlessBody, false, CUT_OR_GATEWAY);
}

#[test]
fn endless_body_buffered_is_a_504() {
    fault_under_load(Fault::EndlessBody, true, ONLY_504);
}

#[test]
fn slower_than_the_read_timeout_is_a_504() {
    fault_under_load(Fault::Slow, false, ONLY_504);
}

// ---------------------------------------------------------------------------------------------
// Known bugs

#[test]
fn connections_open_is_zero_without_clients() {
    // engine/listen.rs accept_loop takes its connection slot (Connections::admit, which
    // increments the gauge) before accept() returns a connection: every worker's accept
    // loop holds one slot while idle.
    let app = FaultyApp::start();
    let s = slogate_before(&app, false);
    // The readiness probe's connection is closed by client_header_timeout (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        s.metrics().sum("slogate_connections_open", &[]),
        0.0,
        "no client is connected"
    );
}

#[test]
fn idle_pooled_connections_are_closed_after_idle_timeout() {
    // engine/pool.rs Pool::checkout skips a connection idle longer than idle_timeout, but
    // nothing closes one that is never checked out again: after a burst, the connections
    // below the warmest (LIFO) stay open, each an fd in slogate and a connection in the app,
    // until the app closes them. The config says idle_timeout should be below Puma's
    // persistent_timeout "so slogate, not Puma, closes idle connections"; it never does.
    let app = FaultyApp::start_with(Duration::from_secs(3600));
    let s = start_slogate_with(
        "unused",
        QUICK_HEADERS,
        &format!(
            "upstream:\n  name: rails\n  backends: [\"{}\"]\n  idle_timeout: 500ms\n  health_check:\n    enabled: false\n",
            app.addr
        ),
    );
    app.set(Fault::Slow); // answers take 1.2 s: a burst opens a connection per request
    let burst: Vec<_> = (0..8)
        .map(|i| {
            let a = s.addr();
            std::thread::spawn(move || {
                send_one(
                    &a,
                    &format!("idle-{i}"),
                    FAULTY_QUERY,
                    Duration::ZERO,
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    for b in burst {
        assert!(b.join().expect("request").succeeded());
    }
    assert!(
        app.open.load(Ordering::SeqCst) >= 8,
        "a connection per request"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        app.open.load(Ordering::SeqCst),
        0,
        "connections idle for 4 idle_timeouts are still open"
    );
}

#[test]
fn a_streamed_request_body_and_an_app_reset_is_a_502() {
    fault_under_load_sending(big_query(), Fault::ResetMidBody, true, ONLY_502);
}

#[test]
fn a_streamed_request_body_and_an_app_reset_streamed() {
    fault_under_load_sending(big_query(), Fault::ResetMidBody, false, CUT_OR_GATEWAY);
}

#[test]
fn a_streamed_request_body_and_garbage_is_a_502() {
    fault_under_load_sending(big_query(), Fault::Garbage, false, ONLY_502);
}

#[test]
fn an_app_failure_during_a_streamed_request_body_keeps_the_operation_name() {
    // A body over the 64 KiB slogate reads ahead streams to the app (handler.rs proxy,
    // pump_body). When the app fails first, the rest of the body is dropped unread, so the
    // exchange never sees the end of the JSON and names the request `(invalid)` of type
    // `unknown`: the failure is charged to no operation and hidden from Faulty's SLI.
    // Here the client sends 100 KiB, pauses 100 ms (the app has reset by then), sends the
    // rest. Under load without the pause, about 40% of such failures are misnamed.
    let app = FaultyApp::start();
    app.set(Fault::ResetMidBody);
    let s = slogate_before(&app, true);
    let body = big_query();
    for i in 0..3 {
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-Request-Id: misnamed-{i}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut c = TcpStream::connect(s.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        c.write_all(head.as_bytes()).expect("head");
        c.write_all(&body.as_bytes()[..100 * 1024])
            .expect("first part");
        std::thread::sleep(Duration::from_millis(100));
        let _ = c.write_all(&body.as_bytes()[100 * 1024..]);
        let _ = c.read_to_end(&mut Vec::new());
    }
    let m = s.wait_requests(3.0);
    assert_eq!(
        m.requests("Faulty", "query", "system_error"),
        3.0,
        "{:?}",
        m.request_table()
    );
}

#[test]
fn a_client_gets_a_status_when_the_app_closes_after_its_head() {
    // Answers streamed (no upstream.buffering): the app's 200 head arrives, its body ends at
    // once. slogate returns the head with a body that fails on its first poll
    // (body.rs ResBody, Source::App -> Ending::UpstreamBroken); hyper's server has the
    // head buffered, not written, and closes the connection: the client gets nothing (in
    // about two of three requests; else the head and a cut body). The access log records
    // status 200, which no client received. No byte had gone to the client, so a 502 was
    // still possible (as the buffered path answers); nginx at least sends the head.
    let app = FaultyApp::start();
    app.set(Fault::CloseAfterHead);
    let s = slogate_before(&app, false);
    let bound = Duration::from_secs(5);
    let seen: Vec<Seen> = (0..10)
        .map(|i| {
            send_one(
                &s.addr(),
                &format!("head-{i}"),
                FAULTY_QUERY,
                Duration::ZERO,
                bound,
            )
        })
        .collect();
    let nothing = seen.iter().filter(|r| r.status.is_none()).count();
    assert_eq!(nothing, 0, "{nothing} of 10 clients got no status line");
}

#[test]
fn a_retry_after_a_stale_connection_keeps_its_504() {
    // handler.rs proxy(), Sent::Stale: the request is sent again on a new connection, and
    // whatever became of that (send() -> Sent::Failed(504, "upstream read timed out"), or a
    // connect that fails or times out) is replaced by `last_failure = 502` and no
    // tracker.error. Here the app closes the pooled connection as the request arrives
    // (Stale), then is slower than read_timeout on the new one.
    // Both requests on one client connection: one slogate worker, whose pool has the
    // connection of the first.
    let app = FaultyApp::start();
    let s = slogate_before(&app, false);
    let mut c = TcpStream::connect(s.addr()).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut first = Vec::new();
    assert_eq!(
        ask(&mut c, &s.addr(), "stale-0", &mut first).ok(),
        Some(false)
    );
    assert_eq!(read_head(&first).0, Some(200));
    app.set(Fault::StaleThenSlow);
    let mut second = Vec::new();
    let _ = ask(&mut c, &s.addr(), "stale-1", &mut second);
    s.wait_requests(2.0);
    let log = wait_for("the log line", Duration::from_secs(5), || {
        let l = s.access_log();
        (l.len() >= 2).then_some(l)
    });
    assert_eq!(
        read_head(&second).0,
        Some(504),
        "a read timeout: {}",
        log[1]
    );
    assert!(log[1]["error"].is_string(), "{}", log[1]);
}

#[test]
fn a_body_the_app_breaks_is_logged_with_its_error() {
    // body.rs ResBody::poll_source, Source::App: the `Poll::Ready(Some(Err(e)))` branch ends
    // the exchange as UpstreamBroken without setting tracker.error (the read-timeout branch
    // and the Spooled source set it), so the line says system_error with no reason.
    let app = FaultyApp::start();
    app.set(Fault::ResetMidBody);
    let s = slogate_before(&app, false);
    for i in 0..3 {
        let r = send_one(
            &s.addr(),
            &format!("broken-{i}"),
            FAULTY_QUERY,
            Duration::ZERO,
            Duration::from_secs(5),
        );
        assert!(!r.succeeded(), "{r:?}");
    }
    s.wait_requests(3.0);
    let log = wait_for("the log lines", Duration::from_secs(5), || {
        let l = s.access_log();
        (l.len() >= 3).then_some(l)
    });
    for line in &log {
        assert_eq!(line["outcome"], "system_error");
        assert!(line["error"].is_string(), "{line}");
    }
}
