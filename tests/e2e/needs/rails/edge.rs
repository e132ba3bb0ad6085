//! slogate as the edge in front of Rails, doing what the usual nginx does: forwarding headers,
//! limits and timeouts, static files, X-Accel-Redirect, compression, streaming, WebSockets,
//! error and maintenance pages, several backends with health checks, TLS with HTTP/2, and
//! graceful upgrades under load.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::*;
use serde_json::json;

fn public() -> String {
    root().join("tests/rails-app/public").display().to_string()
}

fn files_dir() -> String {
    root().join("tests/rails-app/files").display().to_string()
}

fn static_config() -> String {
    format!(
        "static:\n  root: {}\n  internal:\n    \"/protected/\": {}\n",
        public(),
        files_dir()
    )
}

fn echo(addr: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let r = get_with(addr, "/echo", headers).expect("echo");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn forwarded_headers_reach_rails_as_nginx_sets_them() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let e = echo(
        &a,
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("Proxy", "http://evil:1"),
            ("X-Request-Id", "abc-123"),
        ],
    );
    let h = &e["headers"];
    assert_eq!(
        h["HTTP_X_FORWARDED_FOR"], "127.0.0.1",
        "an untrusted client cannot choose its IP"
    );
    assert_eq!(h["HTTP_X_REAL_IP"], "127.0.0.1");
    assert_eq!(h["HTTP_X_FORWARDED_PROTO"], "http");
    assert_eq!(h["HTTP_X_FORWARDED_HOST"], "127.0.0.1");
    assert_eq!(h["HTTP_X_FORWARDED_PORT"], s.port.to_string());
    assert_eq!(h["HTTP_HOST"], a, "Host as the client sent it ($http_host)");
    assert!(h.get("HTTP_PROXY").is_none(), "httpoxy: Proxy is stripped");
    assert_eq!(h["HTTP_X_REQUEST_ID"], "abc-123");
    let start: f64 = h["HTTP_X_REQUEST_START"]
        .as_str()
        .unwrap()
        .trim_start_matches("t=")
        .parse()
        .unwrap();
    assert!(
        (start - before).abs() < 5.0,
        "X-Request-Start is t=<seconds.millis> now: {start}"
    );
    assert_eq!(e["remote_ip"], "127.0.0.1");
}

#[test]
fn trusted_proxies_keep_forwarding_headers() {
    let s = start_slogate_with(
        &rails().addr(),
        "  trusted_proxies: [\"127.0.0.1/32\"]\n",
        "",
    );
    let e = echo(
        &s.addr(),
        &[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "shop.example"),
            ("X-Forwarded-Port", "443"),
        ],
    );
    let h = &e["headers"];
    assert_eq!(h["HTTP_X_FORWARDED_FOR"], "198.51.100.7, 127.0.0.1");
    assert_eq!(h["HTTP_X_REAL_IP"], "198.51.100.7");
    assert_eq!(h["HTTP_X_FORWARDED_PROTO"], "https");
    assert_eq!(h["HTTP_X_FORWARDED_HOST"], "shop.example");
    assert_eq!(h["HTTP_X_FORWARDED_PORT"], "443");
    assert_eq!(e["remote_ip"], "198.51.100.7");
    assert_eq!(e["ssl"], true, "Rails sees the original scheme");
    s.wait_requests(1.0);
    let log = wait_for("the access log", Duration::from_secs(5), || {
        s.access_log().into_iter().next()
    });
    assert_eq!(
        log["client"], "198.51.100.7",
        "the log names the real client"
    );
}

#[test]
fn request_bodies_over_the_limit_get_413_without_reaching_rails() {
    let s = start_slogate_with(&rails().addr(), "  max_body_size: 1KiB\n", "");
    let a = s.addr();
    let big = vec![b'x'; 2048];
    let r = post(&a, "/echo", "application/octet-stream", &big, &[]).unwrap();
    assert_eq!(r.status, 413);
    let r = post(&a, "/echo", "application/octet-stream", &big[..1000], &[]).unwrap();
    assert_eq!(r.status, 200, "under the limit");
    // A chunked body is counted as it arrives.
    let mut c = TcpStream::connect(&a).unwrap();
    write!(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n").unwrap();
    for _ in 0..4 {
        write!(c, "200\r\n{}\r\n", "y".repeat(512)).unwrap();
    }
    let _ = write!(c, "0\r\n\r\n");
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    let m = s.wait_requests(3.0);
    assert_eq!(
        m.sum("slogate_requests_total", &[("outcome", "client_error")]),
        2.0
    );
    let lines = wait_for("three log lines", Duration::from_secs(5), || {
        let l = s.access_log();
        (l.len() >= 3).then_some(l)
    });
    assert!(
        lines[0].get("upstream").is_none(),
        "the first 413 never reached Rails: {}",
        lines[0]
    );
}

#[test]
fn static_files_are_served_like_nginx() {
    let s = start_slogate(&rails().addr(), &static_config());
    let a = s.addr();
    let robots = std::fs::read_to_string(format!("{}/robots.txt", public())).unwrap();
    let r = get(&a, "/robots.txt").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), robots);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let etag = r.header("etag").unwrap().to_string();
    let modified = r.header("last-modified").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.contains('-'),
        "nginx-style ETag: {etag}"
    );
    assert_eq!(
        get_with(&a, "/robots.txt", &[("If-None-Match", &etag)])
            .unwrap()
            .status,
        304
    );
    assert_eq!(
        get_with(&a, "/robots.txt", &[("If-Modified-Since", &modified)])
            .unwrap()
            .status,
        304
    );
    let r = get_with(&a, "/robots.txt", &[("Range", "bytes=0-9")]).unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, robots.as_bytes()[..10].to_vec());
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-9/{}", robots.len()).as_str())
    );
    assert_eq!(
        get_with(&a, "/robots.txt", &[("Range", "bytes=999999-")])
            .unwrap()
            .status,
        416
    );
    // Fingerprinted assets: cached forever, precompressed siblings by Accept-Encoding.
    let plain = std::fs::read(format!("{}/assets/app-abc123.js", public())).unwrap();
    let r = get_with(&a, "/assets/app-abc123.js", &[("Accept-Encoding", "gzip")]).unwrap();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.text().as_bytes(), plain.as_slice());
    let r = get_with(
        &a,
        "/assets/app-abc123.js",
        &[("Accept-Encoding", "br, gzip")],
    )
    .unwrap();
    assert_eq!(r.header("content-encoding"), Some("br"));
    let mut unbr = Vec::new();
    brotli::Decompressor::new(&r.body[..], 4096)
        .read_to_end(&mut unbr)
        .unwrap();
    assert_eq!(unbr, plain);
    let r = get(&a, "/assets/app-abc123.js").unwrap();
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, plain);
    let r = raw(
        &a,
        format!("HEAD /robots.txt HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    // Not a file: the app answers. Traversal never leaves public/.
    assert_eq!(get(&a, "/api/v1/courses/1").unwrap().status, 200);
    let r = get(&a, "/assets/..%2f..%2fconfig.ru").unwrap();
    assert_ne!(r.status, 200);
    let m = s.wait_requests(11.0);
    assert_eq!(
        m.requests("GET (static)", "http", "success"),
        7.0,
        "{:?}",
        m.request_table()
    );
    assert_eq!(
        m.requests("GET (static)", "http", "client_error"),
        1.0,
        "the 416"
    );
    assert_eq!(m.requests("HEAD (static)", "http", "success"), 1.0);
}

#[test]
fn send_file_is_served_by_slogate_through_x_accel_redirect() {
    let s = start_slogate(&rails().addr(), &static_config());
    let a = s.addr();
    let report = std::fs::read(format!("{}/report.txt", files_dir())).unwrap();
    let r = get(&a, "/download").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, report, "the file, not Rails' empty body");
    assert!(
        r.header("content-disposition")
            .unwrap_or("")
            .starts_with("attachment"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("x-accel-redirect"),
        None,
        "internal headers do not leak"
    );
    let r = get_with(&a, "/download", &[("Range", "bytes=0-6")]).unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, report[..7].to_vec());
    let m = s.wait_requests(2.0);
    assert_eq!(m.requests("GET /download", "http", "success"), 2.0);
}

fn unzstd(b: &[u8]) -> String {
    String::from_utf8(zstd::stream::decode_all(b).expect("a complete zstd stream")).unwrap()
}

#[test]
fn dynamic_responses_are_compressed_by_type_and_size() {
    let s = start_slogate(&rails().addr(), &static_config());
    let a = s.addr();
    // Rack::Deflater only does gzip: asking for zstd gets slogate's compression.
    let r = get_with(&a, "/big?kb=16", &[("Accept-Encoding", "zstd")]).unwrap();
    assert_eq!(
        r.header("content-encoding"),
        Some("zstd"),
        "{:?}",
        r.headers
    );
    assert!(r
        .header("vary")
        .unwrap_or("")
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    assert_eq!(unzstd(&r.body).len(), 16 * 1024);
    // GraphQL answers compressed by slogate are still classified from the app's bytes.
    let body = json!({"query": "query Zip { course(id: \"404\") { id } big(kb: 8) }"}).to_string();
    let r = post(
        &a,
        "/graphql",
        "application/json",
        body.as_bytes(),
        &[("Accept-Encoding", "zstd")],
    )
    .unwrap();
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert!(unzstd(&r.body).contains("NOT_FOUND"));
    // Small answers and event streams are left alone.
    // Like nginx's gzip_min_length, the size is known from Content-Length.
    let r = get_with(&a, "/robots.txt", &[("Accept-Encoding", "zstd")]).unwrap();
    assert_eq!(r.header("content-encoding"), None, "under min_size");
    let r = get_with(&a, "/stream?chunks=2&ms=10", &[("Accept-Encoding", "zstd")]).unwrap();
    assert_eq!(
        r.header("content-encoding"),
        None,
        "never text/event-stream"
    );
    assert!(r.text().contains("data:"));
    assert_eq!(
        s.wait_requests(4.0)
            .requests("Zip", "query", "client_error"),
        1.0
    );
}

#[test]
fn event_streams_are_not_buffered() {
    let s = start_slogate(&rails().addr(), "");
    let mut c = TcpStream::connect(s.addr()).unwrap();
    write!(
        c,
        "GET /stream?chunks=4&ms=400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first_event = None;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if first_event.is_none() && String::from_utf8_lossy(&seen).contains("data:") {
            first_event = Some(t0.elapsed());
        }
    }
    let total = t0.elapsed();
    let first = first_event.expect("an event");
    assert!(
        total >= Duration::from_millis(1200),
        "the stream lasts ~1.6s: {total:?}"
    );
    assert!(
        first < total / 2,
        "the first event arrived before the stream ended ({first:?} of {total:?})"
    );
    let m = s.wait_requests(1.0);
    let fast = m.sum(
        "slogate_request_duration_seconds_bucket",
        &[("operation", "GET /stream"), ("le", "1")],
    );
    assert_eq!(
        fast, 1.0,
        "a stream's latency is time to its head, not its length"
    );
}

#[test]
fn actioncable_websockets_pass_through() {
    let s = start_slogate(&rails().addr(), "");
    let out = Command::new("ruby")
        .arg(root().join("tests/rails-app/script/cable_echo.rb"))
        .arg(format!("ws://{}/cable", s.addr()))
        .output()
        .expect("ruby");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ActionCable echo through slogate failed:\n{text}"
    );
    assert!(text.contains("hello cable"), "{text}");
    let m = s.wait_requests(1.0);
    assert_eq!(
        m.requests("GET /cable", "http", "success"),
        1.0,
        "{:?}",
        m.request_table()
    );
}

#[test]
fn error_pages_and_failover_across_backends() {
    let dead = format!("127.0.0.1:{}", free_port());
    let extra = format!(
        "{}upstream:\n  name: rails\n  backends: [\"{dead}\", \"{}\"]\n  health_check:\n    enabled: false\n",
        static_config(),
        rails().addr()
    );
    let s = start_slogate("unused", &extra);
    for _ in 0..6 {
        let r = get(&s.addr(), "/api/v1/courses/1").unwrap();
        assert_eq!(
            r.status, 200,
            "a refused connection is retried on the next backend"
        );
        let r = post(
            &s.addr(),
            "/echo",
            "application/octet-stream",
            b"not retried twice",
            &[],
        )
        .unwrap();
        assert_eq!(r.status, 200);
    }
    let extra = format!("{}upstream:\n  name: rails\n  backends: [\"{dead}\"]\n  health_check:\n    enabled: false\n", static_config());
    let s = start_slogate("unused", &extra);
    let r = get(&s.addr(), "/api/v1/courses/1").unwrap();
    assert_eq!(r.status, 502);
    let page = std::fs::read_to_string(format!("{}/502.html", public())).unwrap();
    assert_eq!(r.text(), page, "the app's public/502.html");
    assert_eq!(r.header("content-type"), Some("text/html"));
}

/// A backend that fails its health check (500 on /up) but would answer requests.
fn sick_backend() -> (String, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nsick");
        }
    });
    (addr, h)
}

#[test]
fn health_checks_take_failing_backends_out_of_rotation() {
    let (sick, _h) = sick_backend();
    let extra = format!(
        "upstream:\n  name: rails\n  backends: [\"{sick}\", \"{}\"]\n  health_check:\n    path: /up\n    interval: 200ms\n    timeout: 500ms\n    fall: 2\n    rise: 2\n",
        rails().addr()
    );
    let s = start_slogate("unused", &extra);
    wait_for(
        "the sick backend to be taken out",
        Duration::from_secs(10),
        || {
            let m = s.metrics();
            (m.sum("slogate_upstream_backend_up", &[("backend", sick.as_str())]) == 0.0
                && m.sum(
                    "slogate_upstream_backend_up",
                    &[("backend", rails().addr().as_str())],
                ) == 1.0)
                .then_some(())
        },
    );
    for _ in 0..6 {
        assert_eq!(
            get(&s.addr(), "/api/v1/courses/1").unwrap().status,
            200,
            "only the healthy backend is used"
        );
    }
    assert_eq!(
        get(&format!("127.0.0.1:{}", s.admin_port), "/ready")
            .unwrap()
            .status,
        200
    );
    // With every backend failing its check: readiness fails, and requests still go to the
    // backend (nginx tries its servers when all are marked down): the app's own 500.
    let extra = format!("upstream:\n  name: rails\n  backends: [\"{sick}\"]\n  health_check:\n    interval: 200ms\n    fall: 1\n");
    let s = start_slogate("unused", &extra);
    wait_for("readiness to fail", Duration::from_secs(10), || {
        (get(&format!("127.0.0.1:{}", s.admin_port), "/ready")
            .ok()?
            .status
            == 503)
            .then_some(())
    });
    let t = Instant::now();
    assert_eq!(get(&s.addr(), "/api/v1/courses/1").unwrap().status, 500);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn maintenance_by_file_and_by_admin_call() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("maintenance.txt");
    let extra = format!(
        "{}pages:\n  maintenance_file: {}\n",
        static_config(),
        flag.display()
    );
    let s = start_slogate(&rails().addr(), &extra);
    let a = s.addr();
    let admin = format!("127.0.0.1:{}", s.admin_port);
    let page = std::fs::read_to_string(format!("{}/maintenance.html", public())).unwrap();
    assert_eq!(get(&a, "/api/v1/courses/1").unwrap().status, 200);
    std::fs::write(&flag, "").unwrap();
    let r = wait_for("maintenance", Duration::from_secs(3), || {
        get(&a, "/api/v1/courses/1")
            .ok()
            .filter(|r| r.status == 503)
    });
    assert_eq!(r.text(), page);
    assert_eq!(
        get(&a, "/up").unwrap().status,
        200,
        "health checks still reach the app"
    );
    std::fs::remove_file(&flag).unwrap();
    wait_for("maintenance off", Duration::from_secs(3), || {
        get(&a, "/api/v1/courses/1")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert_eq!(
        post(&admin, "/maintenance", "text/plain", b"", &[])
            .unwrap()
            .text(),
        "on\n"
    );
    assert_eq!(
        graphql(&a, &json!({"query": "query During { courses { id } }"})).status,
        503
    );
    assert_eq!(
        raw(
            &admin,
            b"DELETE /maintenance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap()
        .text(),
        "off\n"
    );
    assert_eq!(get(&a, "/api/v1/courses/1").unwrap().status, 200);
    let m = s.wait_requests(4.0);
    assert_eq!(
        m.requests("During", "query", "system_error"),
        1.0,
        "maintenance is unavailability, named by operation"
    );
}

#[test]
fn slow_clients_and_idle_connections_are_cut() {
    let _quiet = quiet();
    let s = start_slogate_with(
        &rails().addr(),
        "  client_body_timeout: 1s\n  client_header_timeout: 1s\n  keepalive_timeout: 3s\n",
        "",
    );
    let answer = |c: &mut TcpStream| {
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    // A body that stalls: 408 after client_body_timeout.
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/octet-stream\r\n\r\n0123456789").unwrap();
    let t = Instant::now();
    let got = answer(&mut c);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the stalled body was cut: {:?}",
        t.elapsed()
    );
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    // A head sent a header line at a time (slowloris): 408 after client_header_timeout,
    // while a normal client on another connection is answered at once.
    let timed = || {
        let n = Instant::now();
        assert_eq!(get(&s.addr(), "/up").unwrap().status, 200);
        n.elapsed()
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let idle = median((0..5).map(|_| timed()).collect());
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    write!(slow, "GET /up HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut beside = Vec::new();
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        let _ = write!(slow, "X-Slow-{i}: 1\r\n");
        beside.push(timed());
    }
    let normal_took = median(beside);
    let got = answer(&mut slow);
    let cut = t.elapsed();
    assert!(
        got.starts_with("HTTP/1.1 408"),
        "slowloris gets 408: {got:?}"
    );
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_secs(5),
        "cut after ~1s: {cut:?}"
    );
    // Within 2x of an idle run (plus 5 ms for a shared machine's scheduling noise).
    assert!(
        normal_took <= idle * 2 + Duration::from_millis(5),
        "a normal request beside it is not delayed: {normal_took:?} (idle: {idle:?})"
    );
    // An idle keep-alive connection is closed silently after the shorter of the head and
    // keep-alive timeouts.
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 512];
    let n = c.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    let t = Instant::now();
    let rest = answer(&mut c);
    let idle = t.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(5),
        "closed after ~1s idle: {idle:?}"
    );
    assert!(
        !rest.contains("HTTP/1.1 408"),
        "an idle connection is closed without an answer: {rest:?}"
    );
}

#[test]
fn unix_socket_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("puma.sock");
    let _rails = start_rails(&format!("unix://{}", sock.display()), Some("2:2"));
    let s = start_slogate(&format!("unix:{}", sock.display()), "");
    let r = graphql(
        &s.addr(),
        &json!({"query": "query OverUnix { courses { id } }"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.wait_requests(1.0)
            .requests("OverUnix", "query", "success"),
        1.0
    );
}

#[test]
fn tls_with_http2_hsts_and_redirect() {
    require_tool("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let tls_port = free_port();
    let server = format!(
        "  tls:\n    listen: [\"127.0.0.1:{tls_port}\"]\n    cert: {cert}\n    key: {key}\n    http2: true\n    redirect_http: true\n    hsts: \"max-age=31536000; includeSubDomains\"\n"
    );
    let s = start_slogate_with(&rails().addr(), &server, "");
    let body = json!({"query": "query OverH2 { courses { id } }"}).to_string();
    let out = Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "-o",
            "-",
            "-D",
            "-",
            "-H",
            "content-type: application/json",
            "--data",
            &body,
        ])
        .arg(format!("https://127.0.0.1:{tls_port}/graphql"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000; includesubdomains"),
        "{text}"
    );
    assert!(text.contains("\"courses\""), "{text}");
    let e = Command::new("curl")
        .args(["-sk", "--http2"])
        .arg(format!("https://127.0.0.1:{tls_port}/echo"))
        .output()
        .unwrap();
    let echoed: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(echoed["headers"]["HTTP_X_FORWARDED_PROTO"], "https");
    assert_eq!(echoed["ssl"], true);
    let r = get(&s.addr(), "/some/path?x=1").unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("https://127.0.0.1:{tls_port}/some/path?x=1").as_str())
    );
    assert_eq!(
        s.wait_requests(2.0).requests("OverH2", "query", "success"),
        1.0
    );
}

#[test]
fn graceful_upgrade_loses_no_request_under_load() {
    let _heavy = heavy();
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let config = s.dir.path().join("slogate.yaml");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (a, stop) = (a.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match get(&a, "/api/v1/courses/1") {
                        Ok(r) if r.status == 200 => ok += 1,
                        Ok(r) => failed.push(format!("status {}", r.status)),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    // The new process takes the listening sockets over; then the old one is told to finish.
    let mut new = Command::new(slogate_bin())
        .args(["run", "-u", "--config"])
        .arg(&config)
        .env("SLOGATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let old_pid = s.pid();
    assert!(Command::new("kill")
        .args(["-QUIT", &old_pid.to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for w in workers {
        let (o, f) = w.join().unwrap();
        ok += o;
        failed.extend(f);
    }
    let new_metrics =
        get(&format!("127.0.0.1:{}", s.admin_port), "/metrics").map(|r| Metrics::parse(&r.text()));
    let _ = new.kill();
    let _ = new.wait();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 50, "the load ran: {ok} requests");
    let served_by_new = new_metrics
        .expect("the new process answers on the admin port")
        .sum("slogate_requests_total", &[]);
    assert!(served_by_new > 0.0, "the new process took over the traffic");
}

#[test]
fn a_connection_puma_closed_while_pooled_does_not_become_a_502() {
    require_tool("puma", "puma ruby-railties ruby-actionpack ruby-graphql");
    // Puma closes idle keepalive connections after persistent_timeout (1 s here); slogate
    // keeps them pooled for 30 s. The next POST must not fail on the dead connection, and
    // must not be sent twice.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("puma.rb");
    std::fs::write(&conf, "persistent_timeout 1\n").unwrap();
    let port = free_port();
    let child = Command::new("puma")
        .args(["-C"])
        .arg(&conf)
        .args([
            "-b",
            &format!("tcp://127.0.0.1:{port}"),
            "-t",
            "2:2",
            "-w",
            "0",
            "--quiet",
        ])
        .arg(root().join("tests/rails-app/config.ru"))
        .env("EXIT_WITH_PARENT", std::process::id().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _puma = Proc {
        child,
        name: "puma".into(),
    };
    let upstream = format!("127.0.0.1:{port}");
    wait_for("puma", Duration::from_secs(60), || {
        get(&upstream, "/up").ok().filter(|r| r.status == 200)
    });
    let extra = format!("upstream:\n  name: rails\n  backends: [\"{upstream}\"]\n  idle_timeout: 30s\n  health_check:\n    enabled: false\n");
    let s = start_slogate("unused", &extra);
    for round in 0..4 {
        let body = format!("round {round}");
        let r = post(
            &s.addr(),
            "/echo",
            "application/octet-stream",
            body.as_bytes(),
            &[],
        )
        .unwrap();
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert_eq!(r.json()["body_length"], body.len());
        std::thread::sleep(Duration::from_millis(1600));
    }
    let m = s.wait_requests(4.0);
    assert_eq!(m.requests("POST /echo", "http", "success"), 4.0);
}

#[test]
fn a_failing_health_check_never_takes_the_only_backend_offline() {
    // An app without the health route (Rails before 7.1) answers 404 to it: that is an app
    // that is up. And a backend whose check fails outright still gets the traffic when it
    // is the only one, as nginx does: only requests that really fail get a 502.
    let extra = format!(
        "upstream:\n  name: rails\n  backends: [\"{}\"]\n  health_check:\n    path: /no-such-route\n    interval: 100ms\n    fall: 1\n",
        rails().addr()
    );
    let s = start_slogate("unused", &extra);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        s.metrics().sum(
            "slogate_upstream_backend_up",
            &[("backend", rails().addr().as_str())]
        ),
        1.0,
        "a 404 from the app means the app is up"
    );
    assert_eq!(get(&s.addr(), "/api/v1/courses/1").unwrap().status, 200);
    let (sick, _h) = sick_backend();
    let extra = format!("upstream:\n  name: rails\n  backends: [\"{sick}\"]\n  health_check:\n    interval: 100ms\n    fall: 1\n");
    let s = start_slogate("unused", &extra);
    wait_for(
        "the sick backend to fail its check",
        Duration::from_secs(10),
        || {
            (s.metrics()
                .sum("slogate_upstream_backend_up", &[("backend", sick.as_str())])
                == 0.0)
                .then_some(())
        },
    );
    let r = get(&s.addr(), "/anything").unwrap();
    assert_eq!(r.status, 500, "the app's own answer, not a 502");
    assert_eq!(r.text(), "sick");
}

/// A client that sends its whole body before reading, as most HTTP libraries do.
fn send_all_then_read(addr: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(20)))?;
    c.write_all(head.as_bytes())?;
    c.write_all(body)?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf)?;
    Ok(buf)
}

#[test]
fn early_answers_reach_a_client_that_sends_its_whole_body_first() {
    let s = start_slogate_with(&rails().addr(), "  max_body_size: 1KiB\n", "");
    let body = vec![b'x'; 4 << 20];
    for _ in 0..3 {
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let got = send_all_then_read(&s.addr(), &head, &body)
            .expect("the client gets an answer, not a reset");
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "{}",
            &text[..text.len().min(200)]
        );
    }
}

#[test]
fn a_slow_client_does_not_hold_a_puma_thread() {
    // One Puma thread: while it writes an answer to a slow reader, nothing else is served.
    let port = free_port();
    let rails = start_rails(&format!("tcp://127.0.0.1:{port}"), Some("1:1"));
    let s = start_slogate(&rails.addr(), "upstream:\n  name: rails\n  backends: [\"UP\"]\n  buffering:\n    memory: 64KiB\n    max_temp_file_size: 64MiB\n".replace("UP", &rails.addr()).as_str());
    let rss_before = rss_bytes(s.pid());
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        slow,
        "GET /big?kb=24576 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n"
    )
    .unwrap();
    // read_exact retries a read a signal interrupted.
    let mut first = [0u8; 12];
    slow.read_exact(&mut first).unwrap();
    let n = first.len();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // The slow client has taken ~1 KB of 24 MB; Puma must be free already.
    let t = Instant::now();
    let r = get(&rails.addr(), "/up").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "Puma answered a direct request in {:?}: its only thread is still writing",
        t.elapsed()
    );
    let grown = rss_bytes(s.pid()).saturating_sub(rss_before);
    assert!(
        grown < 16 << 20,
        "the answer went to a temp file, not memory: +{grown} bytes"
    );
    // The whole answer still arrives, byte for byte.
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let total = rest.len() + n;
    assert!(total > 24 * 1024 * 1024, "got {total} bytes");
    drop(slow);
    let m = s.wait_requests(1.0);
    assert_eq!(
        m.sum("slogate_requests_total", &[("outcome", "success")]),
        1.0
    );
}

#[test]
fn dynamic_answers_are_compressed_with_brotli() {
    let s = start_slogate(&rails().addr(), "compression:\n  algorithms: [br, gzip]\n");
    // Rack::Deflater only does gzip: asking for br gets slogate's compression.
    let r = get_with(&s.addr(), "/big?kb=8", &[("Accept-Encoding", "br")]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("br"));
    let mut out = Vec::new();
    brotli::Decompressor::new(&r.body[..], 4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 8 * 1024);
}

#[test]
fn a_request_id_slogate_makes_reaches_rails_and_the_client() {
    let s = start_slogate(&rails().addr(), "");
    let r = get(&s.addr(), "/echo").unwrap();
    assert_eq!(r.status, 200);
    let sent = r
        .header("x-request-id")
        .expect("the client gets an id")
        .to_string();
    assert_eq!(sent.len(), 32, "{sent}");
    assert_eq!(
        r.json()["headers"]["HTTP_X_REQUEST_ID"].as_str(),
        Some(sent.as_str()),
        "Rails logs the same id the client got"
    );
    // A client's own id is kept.
    let r = get_with(&s.addr(), "/echo", &[("X-Request-Id", "client-1")]).unwrap();
    assert_eq!(r.header("x-request-id"), Some("client-1"));
    assert_eq!(r.json()["headers"]["HTTP_X_REQUEST_ID"], "client-1");
}

#[test]
fn the_connection_limit_queues_new_connections_and_says_so() {
    // At server.max_connections slogate stops accepting (HAProxy's maxconn): a new
    // connection waits in the listen queue, is not reset, and is served once one closes.
    let s = start_slogate_with(&rails().addr(), "  max_connections: 4\n", "");
    let ask = |c: &mut TcpStream| {
        write!(c, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf)?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr()).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            assert!(ask(&mut c).unwrap().starts_with("HTTP/1.1 200"));
            c
        })
        .collect();
    let mut fifth = TcpStream::connect(s.addr()).expect("the kernel takes it into the queue");
    fifth
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let waited = ask(&mut fifth);
    assert!(
        waited.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "the fifth connection waits while four are open: {waited:?}"
    );
    let m = s.metrics();
    assert_eq!(m.sum("slogate_connections_open", &[]), 4.0);
    assert_eq!(m.sum("slogate_connection_limit_reached_total", &[]), 1.0);
    let log = std::fs::read_to_string(s.dir.path().join("stderr.log")).unwrap();
    assert!(
        log.contains("connection limit reached"),
        "a clear log line: {log}"
    );
    // One closes: the waiting connection is accepted and its request answered.
    drop(held.pop());
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = fifth.read(&mut buf).expect("answered once a slot frees");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(held);
    drop(fifth);
    wait_for("connections to close", Duration::from_secs(5), || {
        (s.metrics().sum("slogate_connections_open", &[]) == 0.0).then_some(())
    });
}

#[test]
fn the_admin_listener_can_require_a_network_and_a_token() {
    // Bound beyond loopback, the admin endpoints can be guarded: a network outside
    // admin.allow gets 403, a request without the bearer token 401, and neither learns
    // anything about what is behind.
    let start = |admin_lines: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let (port, admin_port) = (free_port(), free_port());
        let yaml = format!(
            "server:\n  listen: [\"127.0.0.1:{port}\"]\n  threads: 1\n  upgrade_socket: {d}/up.sock\n  pid_file: {d}/pid\nadmin:\n  listen: \"127.0.0.1:{admin_port}\"\n  bearer_token_file: token\n{admin_lines}upstream:\n  backends: [\"{rails}\"]\n",
            d = dir.path().display(),
            rails = rails().addr()
        );
        let config = dir.path().join("slogate.yaml");
        std::fs::write(&config, yaml).unwrap();
        let child = std::process::Command::new(slogate_bin())
            .args(["run", "--config"])
            .arg(&config)
            .env("SLOGATE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let proc_ = Proc {
            child,
            name: "slogate".into(),
        };
        wait_for("slogate to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        (proc_, format!("127.0.0.1:{admin_port}"), dir)
    };
    let (_s, admin, _dir) = start("  allow: [\"127.0.0.0/8\"]\n");
    let with = |token: &str| [("authorization", format!("Bearer {token}"))];
    let ask = |path: &str, token: Option<&str>| {
        let headers = token.map(with);
        let h: Vec<(&str, &str)> = headers
            .iter()
            .flatten()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        wait_for("the admin listener", Duration::from_secs(10), || {
            get_with(&admin, path, &h).ok()
        })
    };
    let ok = ask("/metrics", Some("s3cret"));
    assert_eq!(ok.status, 200);
    assert!(ok.text().contains("slogate_connections_open"));
    for (path, token) in [
        ("/metrics", None),
        ("/metrics", Some("wrong")),
        ("/ready", None),
        ("/maintenance", Some("s3cre")),
    ] {
        let r = ask(path, token);
        assert_eq!(r.status, 401, "{path} with {token:?}");
        assert_eq!(r.text(), "unauthorized\n", "nothing about what is behind");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let (_s2, admin2, _dir2) = start("  allow: [\"10.0.0.0/8\"]\n");
    let r = wait_for("the second admin listener", Duration::from_secs(10), || {
        get_with(&admin2, "/metrics", &[("authorization", "Bearer s3cret")]).ok()
    });
    assert_eq!(r.status, 403, "loopback is outside admin.allow");
    assert_eq!(r.text(), "forbidden\n");
}

#[test]
fn ten_thousand_connections_at_once_leak_nothing() {
    let _quiet = quiet();
    // Raise this process's open-files limit as far as it goes (slogate raises its own).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain struct in, plain struct out.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let want = 10_000usize;
    let n = want.min((lim.rlim_cur as usize).saturating_sub(500));
    assert!(
        n >= 2_000,
        "the hard open-files limit ({}) is too low for this test",
        lim.rlim_max
    );
    if n < want {
        eprintln!(
            "holding {n} connections, not {want}: `ulimit -Hn` is {}",
            lim.rlim_max
        );
    }
    let s = start_slogate(&rails().addr(), "");
    let fds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds(s.pid());
    let held: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(s.addr()).expect("connect"))
        .collect();
    wait_for("every connection accepted", Duration::from_secs(30), || {
        (s.metrics().sum("slogate_connections_open", &[]) >= n as f64).then_some(())
    });
    // Still serving, and quickly, with them all open.
    let t = Instant::now();
    assert_eq!(get(&s.addr(), "/up").unwrap().status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(held);
    wait_for("the connections to close", Duration::from_secs(30), || {
        (s.metrics().sum("slogate_connections_open", &[]) == 0.0).then_some(())
    });
    let after = wait_for(
        "slogate's fds to come back",
        Duration::from_secs(10),
        || {
            let now = fds(s.pid());
            (now <= before + 2).then_some(now)
        },
    );
    assert!(after <= before + 2, "fds {before} -> {after}");
}

#[test]
fn a_slow_reader_of_a_large_answer_costs_a_bounded_temp_file_released_when_it_leaves() {
    // nginx's proxy_max_temp_file_size: past the temp file's bound slogate reads the app only
    // as fast as the client takes the answer; memory stays bounded whatever the client's
    // speed, and a client that gives up leaves nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let s = start_slogate(
        &rails().addr(),
        &format!(
            "upstream:\n  name: rails\n  backends: [\"{}\"]\n  buffering:\n    memory: 64KiB\n    max_temp_file_size: 1MiB\n    temp_path: {}\n",
            rails().addr(),
            dir.path().display()
        ),
    );
    let spooled = |pid: u32| -> Vec<u64> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                target
                    .starts_with(dir.path())
                    .then(|| std::fs::metadata(e.path()).map(|m| m.len()).unwrap_or(0))
            })
            .collect()
    };
    let rss_before = rss_bytes(s.pid());
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow,
        "GET /big?kb=10240 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n"
    )
    .unwrap();
    // About 1 KB/s for three seconds.
    let mut taken = 0;
    for _ in 0..3 {
        let mut kb = [0u8; 1024];
        slow.read_exact(&mut kb).unwrap();
        taken += kb.len();
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(taken >= 3 * 1024);
    let files = wait_for(
        "the answer to spill to a temp file",
        Duration::from_secs(10),
        || {
            let f = spooled(s.pid());
            (!f.is_empty()).then_some(f)
        },
    );
    assert!(
        files.iter().all(|&len| len <= (1 << 20) + (64 << 10)),
        "the temp file stays within max_temp_file_size: {files:?}"
    );
    let grown = rss_bytes(s.pid()).saturating_sub(rss_before);
    assert!(grown < 8 << 20, "memory stays bounded: +{grown} bytes");
    // The client gives up: the temp file, the connections and the app's answer are let go.
    drop(slow);
    wait_for(
        "the temp file to be closed",
        Duration::from_secs(10),
        || spooled(s.pid()).is_empty().then_some(()),
    );
    wait_for(
        "the client connection to be released",
        Duration::from_secs(10),
        || (s.metrics().sum("slogate_connections_open", &[]) == 0.0).then_some(()),
    );
    let m = s.wait_requests(1.0);
    assert_eq!(
        m.sum("slogate_requests_total", &[("outcome", "canceled")]),
        1.0,
        "a client that left is counted as canceled: {:?}",
        m.request_table()
    );
}
