//! slogate's engine in-process ([`slogate_proxy::InProcess`]) in front of the harness's
//! in-process mock upstream: no subprocess, no Puma, no external program. Each test has its
//! own proxy (registry, access log, port) and upstream, stopped when dropped, also when the
//! test fails.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

/// Operations the mock answers, each always the same way.
const SCENARIO: &str = "
default_latency: { fixed: 1ms }
proxy: { read_timeout: 5s }
operations:
  - name: GetCourse
    latency: { fixed: 1ms }
  - name: AddCourse
    type: mutation
    latency: { fixed: 1ms }
  - name: Broken
    latency: { fixed: 1ms }
    answers:
      - field_error: { code: INTERNAL_SERVER_ERROR }
  - name: BadInput
    latency: { fixed: 1ms }
    answers:
      - field_error: { code: BAD_USER_INPUT }
  - name: Crash
    latency: { fixed: 1ms }
    answers:
      - reset: {}
  - name: CrashOrder
    type: mutation
    latency: { fixed: 20ms }
    answers:
      - reset: {}
  - name: SlowReport
    latency: { fixed: 120ms }
";

const GET_COURSE: &str = "query GetCourse($id: ID!) { course(id: $id) { id title } }";

#[test]
fn query_and_mutation_are_counted_under_their_name_and_type_as_success() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let r = rig.proxy.graphql(&query(GET_COURSE));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["data"].is_object(), "{}", r.text());
    let r = rig.proxy.graphql(&query(
        "mutation AddCourse { addCourse(title: \"x\") { id } }",
    ));
    assert_eq!(r.status, 200, "{}", r.text());

    rig.proxy
        .wait_requests("GetCourse", "query", "success", 1.0);
    rig.proxy
        .wait_requests("AddCourse", "mutation", "success", 1.0);
    let m = rig.proxy.metrics();
    assert_eq!(
        m.sum(
            "slogate_requests_total",
            &[
                ("service", "app"),
                ("kind", "graphql"),
                ("operation", "GetCourse")
            ]
        ),
        1.0,
        "{:#?}",
        m.request_table()
    );
    assert_eq!(
        m.request_table().len(),
        2,
        "nothing else counted: {:#?}",
        m.request_table()
    );
    // The upstream saw the same two operations, once each.
    assert_eq!(rig.stats().requests, 2, "{:#?}", rig.stats());
}

#[test]
fn error_codes_in_a_200_classify_as_system_or_client_error() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let r = rig.proxy.graphql(&query("query Broken { broken { id } }"));
    assert_eq!(r.status, 200, "the app answered 200: {}", r.text());
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "INTERNAL_SERVER_ERROR"
    );
    let r = rig.proxy.graphql(&query("query BadInput { bad { id } }"));
    assert_eq!(r.status, 200, "{}", r.text());

    rig.proxy
        .wait_requests("Broken", "query", "system_error", 1.0);
    rig.proxy
        .wait_requests("BadInput", "query", "client_error", 1.0);
    let m = rig.proxy.metrics();
    assert_eq!(m.requests("Broken", "query", "success"), 0.0);
    assert_eq!(m.requests("BadInput", "query", "success"), 0.0);
    for (op, code) in [
        ("Broken", "INTERNAL_SERVER_ERROR"),
        ("BadInput", "BAD_USER_INPUT"),
    ] {
        assert_eq!(
            m.sum(
                "slogate_graphql_errors_total",
                &[("operation", op), ("code", code)]
            ),
            1.0,
            "{op}: {code}"
        );
    }
}

#[test]
fn a_batch_counts_each_element() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let batch = serde_json::json!([
        { "query": GET_COURSE, "variables": { "id": "1" } },
        { "query": "query BadInput { bad { id } }" },
        { "query": GET_COURSE, "variables": { "id": "2" } },
        { "query": "query Broken { broken { id } }" },
    ])
    .to_string();
    let r = rig.proxy.graphql(&batch);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().map(Vec::len), Some(4), "{}", r.text());

    rig.proxy
        .wait_requests("GetCourse", "query", "success", 2.0);
    rig.proxy
        .wait_requests("BadInput", "query", "client_error", 1.0);
    rig.proxy
        .wait_requests("Broken", "query", "system_error", 1.0);
    let total: f64 = rig
        .proxy
        .metrics()
        .request_table()
        .iter()
        .map(|r| r.3)
        .sum();
    assert_eq!(total, 4.0, "one count per element");
    assert_eq!(rig.stats().requests, 1, "one HTTP request upstream");
}

#[test]
fn the_duration_histogram_sees_the_upstream_latency() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let r = rig
        .proxy
        .graphql(&query("query SlowReport { report { id } }"));
    assert_eq!(r.status, 200, "{}", r.text());
    rig.proxy
        .wait_requests("SlowReport", "query", "success", 1.0);
    let m = rig.proxy.metrics();
    let labels = [("operation", "SlowReport"), ("outcome", "success")];
    let h = "slogate_request_duration_seconds";
    assert_eq!(m.sum(&format!("{h}_count"), &labels), 1.0);
    let took = m.sum(&format!("{h}_sum"), &labels);
    assert!(
        (0.12..5.0).contains(&took),
        "the mock's 120 ms are in it: {took}"
    );
    let bucket = |le: &str| {
        let mut l = labels.to_vec();
        l.push(("le", le));
        m.sum(&format!("{h}_bucket"), &l)
    };
    assert_eq!(bucket("0.1"), 0.0, "not under 100 ms");
    assert_eq!(bucket("2.5"), 1.0, "well under 2.5 s");
    assert_eq!(bucket("+Inf"), 1.0);
}

#[test]
fn the_upstream_receives_the_request_body_byte_for_byte() {
    let capture = Capture::start();
    let proxy = Proxy::start(capture.addr(), &Settings::default());
    // Odd spacing, escapes, non-ASCII text, key order a re-serialiser would change, and
    // ~300 KB of padding so the body streams past what slogate reads at once.
    let mut body = String::from(
        "{ \"variables\" :{\"title\":\"caf\u{e9} \\\"quoted\\\" \\u00e9\\n\",\"z\":1,\"a\":2},\n\t\"query\":\"query GetCourse($id: ID!) { course(id: $id) { id title } }\",\"pad\":\"",
    );
    body.push_str(&"0123456789abcdef".repeat(300 * 1024 / 16));
    body.push_str("\"   }\r\n");
    let r = proxy.graphql(&body);
    assert_eq!(r.status, 200, "{}", r.text());

    let got = capture.received();
    assert_eq!(got.len(), 1, "one request upstream");
    assert_eq!(got[0].body.len(), body.len(), "the body's length");
    assert!(got[0].body == body.as_bytes(), "the body's bytes differ");
    assert_eq!(
        got[0].header("content-length"),
        Some(body.len().to_string().as_str()),
        "{}",
        got[0].head
    );
    assert!(
        got[0].head.starts_with("POST /graphql HTTP/1.1\r\n"),
        "{}",
        got[0].head
    );
    // And slogate named it from those bytes as they passed.
    proxy.wait_requests("GetCourse", "query", "success", 1.0);
}

#[test]
fn the_access_log_line_has_the_operation_status_and_outcome() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let r = rig.proxy.graphql_with(
        &query("query BadInput { bad { id } }"),
        &[("User-Agent", "inprocess-test/1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r
        .header("x-request-id")
        .expect("slogate answers with the request id")
        .to_string();

    let line = rig.proxy.log_line(&id);
    assert_eq!(line["method"], "POST", "{line}");
    assert_eq!(line["path"], "/graphql", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["kind"], "graphql", "{line}");
    assert_eq!(line["service"], "app", "{line}");
    assert_eq!(line["outcome"], "client_error", "{line}");
    assert_eq!(line["client"], "127.0.0.1", "{line}");
    assert_eq!(line["user_agent"], "inprocess-test/1", "{line}");
    assert_eq!(line["upstream"], rig.mock.addr().to_string(), "{line}");
    let op = &line["operations"][0];
    assert_eq!(op["name"], "BadInput", "{line}");
    assert_eq!(op["type"], "query", "{line}");
    assert_eq!(op["outcome"], "client_error", "{line}");
    assert_eq!(
        op["error_codes"],
        serde_json::json!([["BAD_USER_INPUT", 1]]),
        "{line}"
    );
    assert_eq!(line["operations"].as_array().map(Vec::len), Some(1));
}

#[test]
fn upstream_down_answers_502_with_a_page_and_counts_system_error() {
    let proxy = Proxy::start(closed_port(), &Settings::default());
    let r = proxy.graphql(&query(GET_COURSE));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.body.is_empty(), "the 502 has a body");
    assert_eq!(r.header("content-type"), Some("text/html"));
    proxy.wait_requests("GetCourse", "query", "system_error", 1.0);
    let id = r.header("x-request-id").expect("request id").to_string();
    let line = proxy.log_line(&id);
    assert_eq!(line["status"], 502, "{line}");
    assert_eq!(line["outcome"], "system_error", "{line}");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("connect failed")),
        "{line}"
    );
}

#[test]
fn an_upstream_reset_answers_502_and_counts_system_error() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let r = rig.proxy.graphql(&query("query Crash { crash { id } }"));
    assert_eq!(r.status, 502, "{}", r.text());
    rig.proxy
        .wait_requests("Crash", "query", "system_error", 1.0);
}

#[test]
fn a_mutation_cut_by_a_reset_on_a_reused_connection_reaches_the_app_once() {
    // The app reads the mutation, acts, then resets the (pooled, reused) connection: sent
    // again on a new connection, it would run twice. nginx does not resend a POST once sent;
    // neither does slogate, unless the request only holds queries.
    let rig = Rig::start(SCENARIO, &Settings::default());
    assert_eq!(rig.proxy.graphql(&query(GET_COURSE)).status, 200);
    let r = rig
        .proxy
        .graphql(&query("mutation CrashOrder { crash { id } }"));
    assert_eq!(r.status, 502, "{}", r.text());
    rig.proxy
        .wait_requests("CrashOrder", "mutation", "system_error", 1.0);
    let stats = rig.stats();
    assert_eq!(
        stats.duplicates, 0,
        "the mutation reached the app twice: {stats:#?}"
    );
    assert_eq!(stats.requests, 2, "{stats:#?}");

    // A query cut the same way is sent again (it repeats no write): the app sees it twice.
    assert_eq!(rig.proxy.graphql(&query(GET_COURSE)).status, 200);
    let r = rig.proxy.graphql(&query("query Crash { crash { id } }"));
    assert_eq!(r.status, 502, "{}", r.text());
    let stats = rig.stats();
    assert_eq!(stats.duplicates, 1, "the query was sent again: {stats:#?}");
    rig.proxy
        .wait_requests("Crash", "query", "system_error", 1.0);
}

#[test]
fn upstream_connections_open_counts_pooled_connections_until_they_close() {
    let settings = Settings {
        idle_timeout: "400ms",
        ..Settings::default()
    };
    let rig = Rig::start(SCENARIO, &settings);
    let open = |rig: &Rig| {
        rig.proxy
            .metrics()
            .sum("slogate_upstream_connections_open", &[("service", "app")])
    };
    assert_eq!(open(&rig), 0.0, "none before the first request");
    for _ in 0..3 {
        assert_eq!(rig.proxy.graphql(&query(GET_COURSE)).status, 200);
    }
    assert_eq!(open(&rig), 1.0, "one connection, pooled and reused");
    assert_eq!(rig.stats().connections, 1, "{:#?}", rig.stats());
    // The idle sweep closes it after upstream.idle_timeout.
    wait_for(
        "the pooled connection to close",
        Duration::from_secs(5),
        || (open(&rig) == 0.0).then_some(()),
    );
    // A reset connection leaves the count too.
    let r = rig.proxy.graphql(&query("query Crash { crash { id } }"));
    assert_eq!(r.status, 502);
    wait_for(
        "the reset connection to leave",
        Duration::from_secs(5),
        || (open(&rig) == 0.0).then_some(()),
    );
}

#[test]
fn an_answer_slower_than_the_read_timeout_is_504() {
    let scenario = "
proxy: { read_timeout: 300ms }
load: { timeout: 2s }
operations:
  - name: Stuck
    latency: { fixed: 1ms }
    answers:
      - hang: { duration: 2s }
";
    let settings = Settings {
        read_timeout: "300ms",
        ..Settings::default()
    };
    let rig = Rig::start(scenario, &settings);
    let started = Instant::now();
    let r = rig.proxy.graphql(&query("query Stuck { stuck { id } }"));
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(!r.body.is_empty(), "the 504 has a body");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "answered after the read timeout, not the upstream's 2 s: {took:?}"
    );
    rig.proxy
        .wait_requests("Stuck", "query", "system_error", 1.0);
}

#[test]
fn forwarding_headers_and_the_request_id_reach_the_upstream() {
    let capture = Capture::start();
    let proxy = Proxy::start(capture.addr(), &Settings::default());
    // An untrusted client's X-Forwarded-For is replaced; with no X-Request-Id one is made.
    let r = proxy.graphql_with(
        &query(GET_COURSE),
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Real-IP", "203.0.113.9"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.header("x-request-id").expect("a request id").to_string();
    assert!(id.len() >= 16, "a generated id: {id:?}");
    // A client's own request id is passed on as it is.
    let r2 = proxy.graphql_with(&query(GET_COURSE), &[("X-Request-Id", "client-id-42")]);
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(r2.header("x-request-id"), Some("client-id-42"));

    let got = capture.received();
    assert_eq!(got.len(), 2);
    let (first, second) = (&got[0], &got[1]);
    assert_eq!(
        first.header("x-request-id"),
        Some(id.as_str()),
        "{}",
        first.head
    );
    assert_eq!(first.header_count("x-request-id"), 1, "{}", first.head);
    assert_eq!(
        first.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "{}",
        first.head
    );
    assert_eq!(first.header_count("x-forwarded-for"), 1, "{}", first.head);
    assert_eq!(
        first.header("x-real-ip"),
        Some("127.0.0.1"),
        "{}",
        first.head
    );
    assert_eq!(
        first.header("x-forwarded-proto"),
        Some("http"),
        "{}",
        first.head
    );
    assert_eq!(
        first.header("host"),
        Some(proxy.addr().as_str()),
        "Host as the client sent it: {}",
        first.head
    );
    assert_eq!(
        second.header("x-request-id"),
        Some("client-id-42"),
        "{}",
        second.head
    );
    assert_eq!(second.header_count("x-request-id"), 1, "{}", second.head);
}

#[test]
fn a_trusted_proxy_chain_is_extended() {
    let capture = Capture::start();
    let settings = Settings {
        trusted_proxies: "['127.0.0.1/32']",
        ..Settings::default()
    };
    let proxy = Proxy::start(capture.addr(), &settings);
    let r = proxy.graphql_with(&query(GET_COURSE), &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = capture.received();
    assert_eq!(
        got[0].header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1"),
        "{}",
        got[0].head
    );
    assert_eq!(
        got[0].header("x-real-ip"),
        Some("203.0.113.9"),
        "{}",
        got[0].head
    );
    let id = r.header("x-request-id").expect("request id").to_string();
    assert_eq!(proxy.log_line(&id)["client"], "203.0.113.9");
}

#[test]
fn a_body_over_max_body_size_is_413_and_never_reaches_the_upstream() {
    let settings = Settings {
        max_body_size: "1KiB",
        ..Settings::default()
    };
    let rig = Rig::start(SCENARIO, &settings);
    let mut big = query(GET_COURSE);
    big.insert_str(1, &format!("\"pad\":\"{}\",", "x".repeat(2048)));
    let r = rig.proxy.graphql(&big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(!r.body.is_empty(), "the 413 has a body");
    // Under the limit it goes through.
    let r = rig.proxy.graphql(&query(GET_COURSE));
    assert_eq!(r.status, 200, "{}", r.text());
    rig.proxy
        .wait_requests("GetCourse", "query", "success", 1.0);
    assert_eq!(
        rig.stats().requests,
        1,
        "only the small one reached the upstream"
    );
    let id = r.header("x-request-id").expect("request id").to_string();
    rig.proxy.log_line(&id);
    let lines = rig.proxy.log_lines();
    assert!(
        lines.iter().any(|l| l["status"] == 413),
        "the 413 is logged: {lines:#?}"
    );
}

#[test]
fn dropping_the_handle_ends_a_request_in_flight_after_the_grace() {
    let scenario = "
proxy: { read_timeout: 5s }
load: { timeout: 20s }
operations:
  - name: Stuck
    latency: { fixed: 1ms }
    answers:
      - hang: { duration: 10s }
";
    let rig = Rig::start(scenario, &Settings::default());
    let addr = rig.proxy.addr();
    let body = query("query Stuck { stuck { id } }");
    let client = std::thread::spawn(move || {
        post(&addr, "/graphql", "application/json", body.as_bytes(), &[])
    });
    wait_for("the request to reach the upstream", SETTLE, || {
        (rig.stats().requests == 1).then_some(())
    });
    let Rig { proxy, mock } = rig;
    let started = Instant::now();
    drop(proxy);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "the in-flight request had its 1 s grace, then was ended: {took:?}"
    );
    let answer = client.join().expect("client thread");
    assert!(
        answer.is_err(),
        "the connection closed without an answer: {answer:?}"
    );
    drop(mock);
}

#[test]
fn dropping_the_handle_stops_serving() {
    let rig = Rig::start(SCENARIO, &Settings::default());
    let addr = rig.proxy.addr();
    assert_eq!(rig.proxy.graphql(&query(GET_COURSE)).status, 200);
    // A keep-alive connection left open by a client.
    let idle = TcpStream::connect(&addr).expect("connect");
    let Rig { proxy, mock } = rig;
    let started = Instant::now();
    drop(proxy);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "stopped promptly: {:?}",
        started.elapsed()
    );
    let refused = TcpStream::connect(&addr);
    assert!(refused.is_err(), "still accepting after drop: {refused:?}");
    drop(idle);
    drop(mock);
}

#[test]
fn the_request_target_reaches_the_upstream_as_the_client_sent_it() {
    use std::io::{Read, Write};
    let capture = Capture::start();
    let proxy = Proxy::start(capture.addr(), &Settings::default());
    // (request target sent, request line expected upstream, Host expected upstream)
    let cases = [
        (
            "/api/v1/courses?id=1&q=caf%C3%A9&x=a+b&empty=&flag",
            "GET /api/v1/courses?id=1&q=caf%C3%A9&x=a+b&empty=&flag HTTP/1.1",
            "client.test",
        ),
        (
            "/a;b/c%2Fd?[1]=%7B%7D",
            "GET /a;b/c%2Fd?[1]=%7B%7D HTTP/1.1",
            "client.test",
        ),
        ("/", "GET / HTTP/1.1", "client.test"),
        // Absolute form: the origin form goes upstream, the target's host replaces Host.
        (
            "http://other.test/abs?q=1",
            "GET /abs?q=1 HTTP/1.1",
            "other.test",
        ),
        ("http://other.test", "GET / HTTP/1.1", "other.test"),
    ];
    for (target, _, _) in &cases {
        let mut c = TcpStream::connect(proxy.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            c,
            "GET {target} HTTP/1.1\r\nHost: client.test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{target}: {answer}");
    }
    let got = capture.received();
    assert_eq!(got.len(), cases.len());
    for ((target, line, host), r) in cases.iter().zip(&got) {
        assert_eq!(r.head.lines().next(), Some(*line), "sent {target}");
        assert_eq!(r.header("host"), Some(*host), "sent {target}: {}", r.head);
    }
}

#[test]
fn an_upgraded_connection_stays_counted_open_upstream_while_it_lasts() {
    use std::io::{Read, Write};
    // An app that switches protocols on any request, then echoes what it reads.
    let app = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let app_addr = app.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut c, _) = app.accept().expect("accept");
        read_head(&mut c);
        c.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 || c.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let proxy = Proxy::start(app_addr, &Settings::default());
    let open = || {
        proxy
            .metrics()
            .sum("slogate_upstream_connections_open", &[("service", "app")])
    };
    let mut c = TcpStream::connect(proxy.addr()).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        b"GET /cable HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).expect("the echo");
    assert_eq!(&got, b"ping");
    // Upgraded, the socket has left hyper's connection driver: still counted open.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(open(), 1.0, "the upgraded connection to the app");
    drop(c);
    wait_for(
        "the upgraded connection to leave the count",
        Duration::from_secs(5),
        || (open() == 0.0).then_some(()),
    );
    echo.join().unwrap();
}
