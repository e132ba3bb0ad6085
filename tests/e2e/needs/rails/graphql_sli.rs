//! slogate in front of the real Rails + graphql-ruby fixture on Puma: every request shape ends
//! up in the scraped counters with the right operation, type and outcome.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::own::graphql_sli::{row, table};
use crate::support::*;
use serde_json::json;

#[test]
fn named_anonymous_and_multi_operation_documents() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let r = graphql(
        &a,
        &json!({"query": "query GetCourse($id: ID!) { course(id: $id) { id title } }", "variables": {"id": "1"}}),
    );
    assert_eq!(r.json()["data"]["course"]["id"], "1");
    graphql(&a, &json!({"query": "{ courses { id } }"}));
    graphql(
        &a,
        &json!({"query": "query A { courses { id } } mutation B { createCourse(title: \"x\") { id } }", "operationName": "B"}),
    );
    graphql(
        &a,
        &json!({"query": "query Named { courses { id } }", "operationName": "Named"}),
    );
    assert_eq!(
        table(&s, 4.0),
        vec![
            row("(anonymous)", "query", "success", 1.0),
            row("B", "mutation", "success", 1.0),
            row("GetCourse", "query", "success", 1.0),
            row("Named", "query", "success", 1.0),
        ]
    );
}

#[test]
fn batch_get_graphql_body_and_multipart() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let r = graphql(
        &a,
        &json!([
            {"query": "query One { courses { id } }"},
            {"query": "query Two { course(id: \"404\") { id } }"},
            {"query": "{ nope }"}
        ]),
    );
    assert_eq!(r.json().as_array().map(Vec::len), Some(3));
    let r = get(
        &a,
        "/graphql?query=query%20Search%20%7B%20courses%20%7B%20id%20%7D%20%7D",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let r = post(
        &a,
        "/graphql",
        "application/graphql",
        b"query Doc { courses { id } }",
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"mutation Upload($file: Upload!) { uploadSize(file: $file) }\",\"variables\":{\"file\":null}}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\":[\"variables.file\"]}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello world\r\n--XyZ--\r\n";
    let r = post(
        &a,
        "/graphql",
        "multipart/form-data; boundary=XyZ",
        body,
        &[],
    )
    .unwrap();
    assert_eq!(r.json()["data"]["uploadSize"], 11, "{}", r.text());
    assert_eq!(
        table(&s, 6.0),
        vec![
            row("(anonymous)", "query", "client_error", 1.0),
            row("Doc", "query", "success", 1.0),
            row("One", "query", "success", 1.0),
            row("Search", "query", "success", 1.0),
            row("Two", "query", "client_error", 1.0),
            row("Upload", "mutation", "success", 1.0),
        ]
    );
}

#[test]
fn persisted_queries_are_named_after_registration() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let doc = "query Persisted { courses { id } }";
    let hash = slogate_sha256(doc);
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    // Unknown to both slogate and Rails: PERSISTED_QUERY_NOT_FOUND, a client error.
    let r = graphql(&a, &json!({"extensions": ext}));
    assert_eq!(
        r.json()["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    graphql(&a, &json!({"query": doc, "extensions": ext}));
    let r = graphql(&a, &json!({"extensions": ext}));
    assert_eq!(r.json()["data"]["courses"][0]["id"], "1");
    assert_eq!(
        table(&s, 3.0),
        vec![
            row("(invalid)", "unknown", "client_error", 1.0),
            row("Persisted", "query", "success", 2.0),
        ]
    );
}

fn slogate_sha256(text: &str) -> String {
    // The fixture verifies hashes with Ruby's Digest::SHA256; compute the same here.
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().map(|mut i| i.write_all(text.as_bytes()));
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[test]
fn field_errors_by_code_even_under_http_200() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    for (name, field) in [
        ("NotFound", "course(id: \"404\") { id }"),
        ("Internal", "internalError"),
        ("NonNull", "nonNullViolation"),
        ("Custom", "customCode(code: \"TEAPOT\")"),
        ("Unauth", "me { id }"),
        ("Multi", "multipleErrors"),
    ] {
        let r = graphql(&a, &json!({"query": format!("query {name} {{ {field} }}")}));
        assert_eq!(r.status, 200, "{name}: graphql-ruby answers 200");
    }
    assert_eq!(
        table(&s, 6.0),
        vec![
            row("Custom", "query", "system_error", 1.0),
            row("Internal", "query", "system_error", 1.0),
            row("Multi", "query", "client_error", 1.0),
            row("NonNull", "query", "system_error", 1.0),
            row("NotFound", "query", "client_error", 1.0),
            row("Unauth", "query", "client_error", 1.0),
        ]
    );
    let m = s.metrics();
    let errors = |op: &str, code: &str| {
        m.sum(
            "slogate_graphql_errors_total",
            &[("operation", op), ("code", code)],
        )
    };
    assert_eq!(errors("NotFound", "NOT_FOUND"), 1.0);
    assert_eq!(errors("Internal", "INTERNAL_SERVER_ERROR"), 1.0);
    assert_eq!(errors("NonNull", "(none)"), 1.0);
    assert_eq!(errors("Custom", "TEAPOT"), 1.0);
    assert_eq!(errors("Multi", "BAD_USER_INPUT"), 1.0);
    assert_eq!(errors("Multi", "NOT_FOUND"), 1.0);
}

#[test]
fn validation_parse_and_variable_errors_are_client_errors() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    graphql(&a, &json!({"query": "query Bad { nope }"}));
    graphql(&a, &json!({"query": "query Broken { courses { id }"}));
    graphql(
        &a,
        &json!({"query": "query Vars($v: Int!) { badInput(value: $v) }", "variables": {"v": "abc"}}),
    );
    graphql(
        &a,
        &json!({"query": "query Neg($v: Int!) { badInput(value: $v) }", "variables": {"v": -1}}),
    );
    assert_eq!(
        table(&s, 4.0),
        vec![
            row("(invalid)", "unknown", "client_error", 1.0),
            row("Bad", "query", "client_error", 1.0),
            row("Neg", "query", "client_error", 1.0),
            row("Vars", "query", "client_error", 1.0),
        ]
    );
    assert_eq!(
        s.metrics().sum(
            "slogate_graphql_errors_total",
            &[("code", "undefinedField")]
        ),
        1.0
    );
}

#[test]
fn rails_500_and_gzip_and_large_responses() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let r = graphql(&a, &json!({"query": "query Crash { crash }"}));
    assert_eq!(r.status, 500);
    let body =
        json!({"query": "query Zipped { course(id: \"404\") { id } big(kb: 64) }"}).to_string();
    let r = post(
        &a,
        "/graphql",
        "application/json",
        body.as_bytes(),
        &[("Accept-Encoding", "gzip")],
    )
    .unwrap();
    assert_eq!(
        r.header("content-encoding"),
        Some("gzip"),
        "Rack::Deflater compressed it"
    );
    assert_eq!(r.json()["errors"][0]["extensions"]["code"], "NOT_FOUND");
    // 8 MB of JSON, streamed through without buffering; the verdict needs the very end.
    let r = graphql(
        &a,
        &json!({"query": "query Huge { big(kb: 8192) internalError }"}),
    );
    assert!(r.body.len() > 8 << 20);
    assert_eq!(
        table(&s, 3.0),
        vec![
            row("Crash", "query", "system_error", 1.0),
            row("Huge", "query", "system_error", 1.0),
            row("Zipped", "query", "client_error", 1.0),
        ]
    );
}

#[test]
fn upstream_timeout_is_a_system_error_with_504() {
    let s = start_slogate(
        &rails().addr(),
        "upstream:\n  name: rails\n  backends: [\"BACKEND\"]\n  read_timeout: 500ms\n"
            .replace("BACKEND", &rails().addr())
            .as_str(),
    );
    let r = graphql(
        &s.addr(),
        &json!({"query": "query Slow { slow(ms: 2000) }"}),
    );
    assert_eq!(r.status, 504);
    assert_eq!(
        table(&s, 1.0),
        vec![row("Slow", "query", "system_error", 1.0)]
    );
    let m = s.metrics();
    let le = |b: &str| {
        m.sum(
            "slogate_request_duration_seconds_bucket",
            &[("operation", "Slow"), ("le", b)],
        )
    };
    assert_eq!(le("0.3"), 0.0);
    assert_eq!(
        le("1"),
        1.0,
        "the timeout after 500ms is what the user waited"
    );
}

#[test]
fn client_abort_is_canceled() {
    let s = start_slogate(&rails().addr(), "");
    let body = json!({"query": "query Abandoned { slow(ms: 1500) }"}).to_string();
    let mut c = TcpStream::connect(s.addr()).unwrap();
    write!(
        c,
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    assert_eq!(
        table(&s, 1.0),
        vec![row("Abandoned", "query", "canceled", 1.0)]
    );
}

#[test]
fn http_routes_are_templated_and_health_checks_excluded() {
    let s = start_slogate(
        &rails().addr(),
        "http:\n  routes: [\"/api/v1/users/:user_id/courses/:id\"]\n  exclude: [\"/up\"]\n",
    );
    let a = s.addr();
    for path in [
        "/api/v1/courses/1",
        "/api/v1/courses/2",
        "/api/v1/courses/404",
        "/api/v1/users/5/courses/1",
        "/up",
        "/up",
        "/status/429",
        "/status/503",
    ] {
        get(&a, path).unwrap();
    }
    assert_eq!(
        table(&s, 6.0),
        vec![
            row("GET /api/v1/courses/:id", "http", "client_error", 1.0),
            row("GET /api/v1/courses/:id", "http", "success", 2.0),
            row(
                "GET /api/v1/users/:user_id/courses/:id",
                "http",
                "success",
                1.0
            ),
            row("GET /status/:id", "http", "client_error", 1.0),
            row("GET /status/:id", "http", "system_error", 1.0),
        ]
    );
}

#[test]
fn status_overrides_and_the_error_code_header() {
    let extra = "classification:\n  status_overrides: {429: system_error}\n  error_code_header: X-GraphQL-Error-Code\n  unknown_code: client_error\n";
    let s = start_slogate(&rails().addr(), extra);
    let a = s.addr();
    get(&a, "/status/429").unwrap();
    graphql(
        &a,
        &json!({"query": "query Teapot { customCode(code: \"TEAPOT\") }"}),
    );
    graphql(&a, &json!({"query": "query NonNull { nonNullViolation }"}));
    assert_eq!(
        table(&s, 3.0),
        vec![
            row("GET /status/:id", "http", "system_error", 1.0),
            row("NonNull", "query", "client_error", 1.0),
            row("Teapot", "query", "client_error", 1.0),
        ]
    );
}

#[test]
fn the_request_body_reaches_rails_unchanged_whatever_slogate_could_read() {
    let s = start_slogate(
        &rails().addr(),
        "graphql:\n  paths: [\"/graphql\", \"/echo\"]\n  max_inspect_bytes: 4KiB\n",
    );
    let a = s.addr();
    let bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        (0..=255u8).cycle().take(300_000).collect(),
        format!(
            "{{\"query\":\"query Echo {{ a }}\",\"variables\":{{\"blob\":\"{}\"}}}}",
            "x".repeat(100_000)
        )
        .into_bytes(),
        b"[{\"query\":\"{ a }\"},".repeat(3000),
    ];
    for body in &bodies {
        let r = post(&a, "/echo", "application/json", body, &[]).unwrap();
        let echoed = r.json();
        assert_eq!(
            echoed["body_length"],
            body.len(),
            "length of {} bytes",
            body.len()
        );
        assert_eq!(echoed["body_sha256"], slogate_sha256_bytes(body));
    }
    let m = s.wait_requests(4.0);
    assert_eq!(m.requests("(invalid)", "unknown", "success"), 3.0);
    assert_eq!(m.requests("Echo", "query", "success"), 1.0);
    assert!(
        m.sum(
            "slogate_inspection_limited_total",
            &[("limit", "request_body")]
        ) >= 3.0
    );
}

fn slogate_sha256_bytes(b: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("body");
    std::fs::write(&p, b).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[test]
fn access_log_has_one_json_line_per_request() {
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    let r = post(&a, "/graphql", "application/json", br#"[{"query":"query L1 { courses { id } }"},{"query":"query L2 { course(id: \"404\") { id } }"}]"#, &[("X-Request-Id", "req-abc-123")]).unwrap();
    assert_eq!(r.header("x-request-id"), Some("req-abc-123"));
    get(&a, "/api/v1/courses/3?token=secret").unwrap();
    s.wait_requests(3.0);
    let lines = wait_for("two access log lines", Duration::from_secs(5), || {
        let l = s.access_log();
        (l.len() >= 2).then_some(l)
    });
    let gql = &lines[0];
    assert_eq!(gql["request_id"], "req-abc-123");
    assert_eq!(gql["kind"], "graphql");
    assert_eq!(gql["status"], 200);
    assert_eq!(gql["outcome"], "client_error");
    assert_eq!(gql["operations"][0]["name"], "L1");
    assert_eq!(gql["operations"][1]["outcome"], "client_error");
    assert_eq!(gql["operations"][1]["error_codes"][0][0], "NOT_FOUND");
    assert!(gql["duration"].as_f64().unwrap() > 0.0);
    assert!(gql["upstream_duration"].as_f64().unwrap() > 0.0);
    let rest = &lines[1];
    assert_eq!(
        rest["path"], "/api/v1/courses/3",
        "query strings are not logged by default"
    );
    assert_eq!(rest["operations"][0]["name"], "GET /api/v1/courses/:id");
    assert_eq!(
        rest["request_id"].as_str().map(str::len),
        Some(32),
        "generated when absent"
    );
}

#[test]
fn random_operation_names_are_bounded_by_the_guard() {
    let s = start_slogate(&rails().addr(), "metrics:\n  max_operations: 5\n");
    let a = s.addr();
    for i in 0..20 {
        graphql(
            &a,
            &json!({"query": format!("query Random{i} {{ courses {{ id }} }}")}),
        );
    }
    let m = s.wait_requests(20.0);
    let distinct: std::collections::BTreeSet<String> = m
        .samples
        .iter()
        .filter(|x| x.name == "slogate_requests_total")
        .map(|x| x.labels["operation"].clone())
        .collect();
    assert_eq!(distinct.len(), 6, "5 names and (other): {distinct:?}");
    assert_eq!(m.requests("(other)", "query", "success"), 15.0);
    assert_eq!(
        m.sum("slogate_label_overflow_total", &[("label", "operation")]),
        15.0
    );
}

#[test]
fn a_100_mb_response_is_classified_in_constant_memory() {
    let _heavy = heavy();
    let s = start_slogate(&rails().addr(), "");
    // Warm up: pools, caches and the first allocations.
    graphql(&s.addr(), &json!({"query": "query Warm { big(kb: 1024) }"}));
    let pid = s.pid();
    let baseline = rss_bytes(pid);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_bytes(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    // 100 MB of JSON; the system error is only known from the last bytes.
    let body = json!({"query": "query Hundred { big(kb: 102400) internalError }"}).to_string();
    let mut c = TcpStream::connect(s.addr()).unwrap();
    write!(c, "POST /graphql HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert!(total > 100 << 20, "{total} bytes received");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "100 MB response: slogate RSS {} MiB -> peak {} MiB (growth {:.1} MiB)",
        baseline >> 20,
        peak >> 20,
        growth as f64 / 1048576.0
    );
    assert!(growth < 16 << 20, "RSS grew by {growth} bytes");
    let m = s.wait_requests(2.0);
    assert_eq!(m.requests("Hundred", "query", "system_error"), 1.0);
}
