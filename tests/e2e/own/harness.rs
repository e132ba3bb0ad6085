//! The truth harness end to end: the mock upstream (in-process), the real slogate binary in
//! front of it, and the load tester comparing what the client saw, what slogate counted and
//! what the mock answered. Counts must agree exactly; latency quantiles within one bucket.
//!
//! Rates are low and runs are bounded by request counts, not time, so the assertions are
//! about exact counts and survive a noisy two-core machine.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use slogate_harness::report::render;
use slogate_harness::scenario::LoadMode;
use slogate_harness::{run_load_blocking, LoadOptions, MockServer, ProxyRules, Report, Scenario};

/// RSS slogate (debug build, `threads: 2`) must stay under while the hostile scenario runs.
/// Measured: about 20 MiB after start-up and 29 MiB after the 300 requests of this test
/// (random names, 0.9 MiB documents, 413s, deep nesting, cut bodies, hangs). The bound leaves
/// room for allocator slack and other features, and catches unbounded label or buffer growth.
const HOSTILE_RSS_BOUND: u64 = 96 * 1024 * 1024;

pub(crate) fn scenario(file: &str) -> Scenario {
    let path = root().join("proxy-config/scenarios").join(file);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The scenario as a short, open-loop run of `requests` requests at `rate` per second.
pub(crate) fn short(mut s: Scenario, rate: f64, requests: u64) -> Scenario {
    s.load.mode = LoadMode::Open;
    s.load.rate = rate;
    s.load.requests = Some(requests);
    s.load.duration = None;
    s
}

fn mock_for(s: &Scenario) -> MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the mock");
    MockServer::spawn(listener, Arc::new(s.clone()), ProxyRules::defaults()).expect("mock")
}

/// slogate in front of `upstream` with the read timeout the scenario assumes.
pub(crate) fn slogate_for(upstream: &str, s: &Scenario, extra_yaml: &str) -> Slogate {
    let yaml = format!(
        "upstream:\n  name: rails\n  backends: [\"{upstream}\"]\n  read_timeout: {}ms\n{extra_yaml}",
        s.proxy_read_timeout.as_millis()
    );
    start_slogate(upstream, &yaml)
}

pub(crate) fn options(proxy: &Slogate, mock: Option<&MockServer>) -> LoadOptions {
    LoadOptions {
        metrics: Some(format!("http://127.0.0.1:{}/metrics", proxy.admin_port)),
        mock_stats: mock.map(MockServer::stats_url),
        ..LoadOptions::new(format!("http://{}", proxy.addr()))
    }
}

/// Every label: slogate's counts equal the mock's ground truth and the client's view.
fn assert_exact(report: &Report) {
    let table = render(report);
    assert!(report.agree, "the views differ:\n{table}");
    for op in &report.operations {
        // Requests slogate answers itself (413 over server.max_body_size) never reach the mock.
        let mut truth = op.mock.expect("the mock's view");
        truth.merge(&op.answered_by_proxy);
        assert_eq!(
            op.proxy,
            Some(truth),
            "{} {}:\n{table}",
            op.kind,
            op.operation
        );
        assert_eq!(op.proxy, Some(op.client), "{}:\n{table}", op.operation);
        assert!(
            op.latency_checks.iter().all(|c| c.buckets_apart.abs() <= 1),
            "{table}"
        );
    }
    assert_eq!(report.client_timeouts, 0, "{table}");
}

fn row<'r>(report: &'r Report, operation: &str) -> &'r slogate_harness::report::OperationReport {
    report
        .operations
        .iter()
        .find(|o| o.operation == operation)
        .unwrap_or_else(|| panic!("no row {operation}:\n{}", render(report)))
}

/// Runs a shipped scenario through slogate in front of the mock; returns the report.
fn three_views(file: &str, rate: f64, requests: u64) -> Report {
    let _heavy = heavy();
    let s = short(scenario(file), rate, requests);
    let mock = mock_for(&s);
    let proxy = slogate_for(&mock.addr().to_string(), &s, "");
    let report = run_load_blocking(&s, &options(&proxy, Some(&mock))).expect("load");
    assert_exact(&report);
    report
}

#[test]
fn steady_mix_three_views_agree_exactly() {
    let report = three_views("steady.yaml", 40.0, 200);
    // Batches count each element; a refused persisted query costs a second request.
    assert!(report.client_total().total() >= 200, "{}", render(&report));
    for op in [
        "GetCourse",
        "ListCourses",
        "CurrentUser",
        "GET /api/v1/courses/:id",
    ] {
        assert!(row(&report, op).requests > 0, "{}", render(&report));
    }
    // The persisted query was refused once (PERSISTED_QUERY_NOT_FOUND), then registered.
    assert!(row(&report, "CurrentUser").client.client_error >= 1);
}

#[test]
fn incident_three_views_agree_and_show_the_incident() {
    let report = three_views("incident.yaml", 40.0, 240);
    let orders = row(&report, "CreateOrder");
    assert!(orders.client.system_error > 0, "{}", render(&report));
    let courses = row(&report, "GetCourse");
    assert_eq!(courses.client.system_error, 0, "{}", render(&report));
}

#[test]
fn latency_regression_three_views_agree_within_a_bucket() {
    let report = three_views("latency-regression.yaml", 30.0, 150);
    let slow = row(&report, "SearchLessons");
    assert!(slow.service_ms.p50 > 200.0, "{}", render(&report));
    let fast = row(&report, "GetCourse");
    assert!(fast.service_ms.p50 < 150.0, "{}", render(&report));
}

#[test]
fn hostile_traffic_is_absorbed_and_counted_exactly() {
    let _heavy = heavy();
    let s = short(scenario("hostile.yaml"), 30.0, 300);
    let mock = mock_for(&s);
    let proxy = slogate_for(
        &mock.addr().to_string(),
        &s,
        "metrics:\n  max_operations: 20\n",
    );
    let rss_before = rss_bytes(proxy.pid());
    let report = run_load_blocking(&s, &options(&proxy, Some(&mock))).expect("load");
    let rss_after = rss_bytes(proxy.pid());
    assert_exact(&report);
    let table = render(&report);
    // slogate is still up and answering.
    assert_eq!(
        get(&format!("127.0.0.1:{}", proxy.admin_port), "/health")
            .expect("health")
            .status,
        200
    );
    // (other) absorbed the random names; (invalid) the unreadable bodies.
    assert!(row(&report, "(other)").requests > 0, "{table}");
    assert!(row(&report, "(invalid)").requests > 0, "{table}");
    let names: Vec<&str> = report
        .operations
        .iter()
        .filter(|o| o.kind == "graphql" && !o.operation.starts_with('('))
        .map(|o| o.operation.as_str())
        .collect();
    assert!(names.len() <= 20, "{} names: {names:?}", names.len());
    let overflow = proxy
        .metrics()
        .sum("slogate_label_overflow_total", &[("label", "operation")]);
    assert!(overflow > 0.0);
    eprintln!(
        "hostile: slogate RSS {:.1} MiB before, {:.1} MiB after {} requests",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        report.http_requests
    );
    assert!(
        rss_after > 0 && rss_after < HOSTILE_RSS_BOUND,
        "RSS {rss_after}"
    );
}

fn run_slogate(args: &[&str], timeout: Duration) -> (i32, String, String) {
    let mut child = Command::new(slogate_bin())
        .args(args)
        .env("SLOGATE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn slogate");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("slogate {args:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_non_interactively_and_prints_the_sli_table() {
    let _heavy = heavy();
    let (code, stdout, stderr) =
        run_slogate(&["demo", "--duration", "5s"], Duration::from_secs(90));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    for want in [
        "availability",
        "CreateOrder",
        "GetCourse",
        "/metrics",
        "agree exactly",
    ] {
        assert!(stdout.contains(want), "{want:?} missing:\n{stdout}");
    }
}

#[test]
fn loadtest_cli_exit_codes() {
    let file = root().join("proxy-config/scenarios/steady.yaml");
    let file = file.to_str().expect("utf-8 path");
    // The mock as its own process (`slogate mock-upstream`), slogate in front of it.
    let port = free_port();
    let mut mock = Proc::spawn(
        "mock-upstream",
        Command::new(slogate_bin())
            .args([
                "mock-upstream",
                "--scenario",
                file,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null()),
    );
    wait_for("the mock upstream", Duration::from_secs(20), || {
        get(&format!("127.0.0.1:{port}"), "/__mock/stats")
            .ok()
            .filter(|r| r.status == 200)
    });
    let s = scenario("steady.yaml");
    let proxy = slogate_for(&format!("127.0.0.1:{port}"), &s, "");
    let target = format!("http://{}", proxy.addr());
    let metrics = format!("http://127.0.0.1:{}/metrics", proxy.admin_port);
    let stats = format!("http://127.0.0.1:{port}/__mock/stats");
    let args = |stats: &str| {
        vec![
            "loadtest".to_string(),
            "--scenario".into(),
            file.into(),
            "--target".into(),
            target.clone(),
            "--metrics".into(),
            metrics.clone(),
            "--mock-stats".into(),
            stats.to_string(),
            "--rate".into(),
            "20".into(),
            "--requests".into(),
            "30".into(),
            "--json".into(),
        ]
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run_slogate(&refs, Duration::from_secs(60))
    };
    let (code, stdout, stderr) = run(args(&stats));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(json["agree"], true);
    assert!(json["operations"].as_array().is_some_and(|o| !o.is_empty()));

    // Against the ground truth of a mock that saw none of it: a disagreement, exit 1.
    let other = mock_for(&s);
    let (code, stdout, stderr) = run(args(&other.stats_url()));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("disagree"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(json["agree"], false);

    // A broken scenario: exit 2, naming the file, the key and the problem.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "operations:\n  - name: A\n    answers:\n      - status: { status: 200 }\n",
    )
    .expect("write");
    let bad = bad.to_str().expect("utf-8 path");
    let (code, _, stderr) = run(vec![
        "loadtest".into(),
        "--scenario".into(),
        bad.into(),
        "--target".into(),
        target.clone(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "bad.yaml: operations[0].answers[0].status.status: 200 must be a 4xx or 5xx status"
        ),
        "{stderr}"
    );
    let _ = mock.child.kill();
}

#[test]
fn mock_answers_are_classified_as_its_ground_truth_says() {
    // Every answer kind straight from the mock (no proxy): the client's classification of what
    // it received equals the outcome the mock counted.
    let text = "proxy: { read_timeout: 1s }\nload: { rate: 50, requests: 120, timeout: 5s }\noperations:\n  - name: Everything\n    gzip: when_accepted\n    answers:\n      - success: {}\n      - field_error: { code: NOT_FOUND }\n      - field_error: { code: INTERNAL_SERVER_ERROR }\n      - field_error: {}\n      - request_error: { code: UNAUTHENTICATED }\n      - status: { status: 500 }\n      - status: { status: 429, body: json }\n      - not_json: {}\n      - slow_body: { chunks: 3, interval: 10ms }\n      - reset: {}\n      - truncated: {}\nrest:\n  - path: /things/{id}\n    answers:\n      - success: {}\n      - status: { status: 404 }\n      - reset: {}\n";
    let s = Scenario::parse("inline.yaml", text).expect("scenario");
    let mock = mock_for(&s);
    let options = LoadOptions {
        mock_stats: Some(mock.stats_url()),
        ..LoadOptions::new(format!("http://{}", mock.addr()))
    };
    let report = run_load_blocking(&s, &options).expect("load");
    let table = render(&report);
    assert!(report.agree, "{table}");
    let everything = row(&report, "Everything");
    assert_eq!(everything.mock, Some(everything.client), "{table}");
    assert!(
        everything.client.system_error > 0 && everything.client.client_error > 0,
        "{table}"
    );
    assert!(
        report
            .operations
            .iter()
            .any(|o| o.operation == "GET /things/:id"),
        "{table}"
    );
}
