//! `slo report` against a real Prometheus: it scrapes a tiny metrics endpoint
//! served by this test, evaluates the generated rules every second, and the
//! report's numbers are checked against the known traffic.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use slogate_slo::report::{build_report, render_table, Prometheus, Report, ReportError};
use slogate_slo::{generate_rules, parse_spec, DEFAULT_BUCKETS};
use slogate_test_support::{free_port, unix_now, Prometheus as PrometheusServer};
use support::load;

const GRAPHQL: &str =
    r#"service="e2e",kind="graphql",operation="CreateOrder",operation_type="mutation""#;
const HTTP: &str =
    r#"service="e2e",kind="http",operation="GET /api/v1/courses/:id",operation_type="http""#;
const JOB: &str = r#"service="e2e",queue="mailers",job_class="SendReceiptJob""#;

/// The exposition text after `t` seconds. Every counter grows in proportion
/// to `t`, so every window sees the same ratios:
/// - checkout: 96 success, 3 client_error, 1 system_error, 5 canceled per
///   second: availability error ratio 1/100; 90% of success and client_error
///   requests are under 300ms: latency error ratio 0.1;
/// - browse: only successes;
/// - receipts: 49 successful jobs and 1 failed per second: 0.02.
fn exposition(t: f64) -> String {
    let mut out = String::from("# TYPE slogate_requests_total counter\n");
    for (outcome, per_second) in [
        ("success", 96.0),
        ("client_error", 3.0),
        ("system_error", 1.0),
        ("canceled", 5.0),
    ] {
        out += &format!(
            "slogate_requests_total{{{GRAPHQL},outcome=\"{outcome}\"}} {}\n",
            per_second * t
        );
    }
    out += &format!(
        "slogate_requests_total{{{HTTP},outcome=\"success\"}} {}\n",
        50.0 * t
    );
    out += "# TYPE slogate_request_duration_seconds histogram\n";
    for (outcome, per_second) in [("success", 96.0), ("client_error", 3.0)] {
        let labels = format!("{GRAPHQL},outcome=\"{outcome}\"");
        let count = per_second * t;
        out += &format!(
            "slogate_request_duration_seconds_bucket{{{labels},le=\"0.3\"}} {}\n",
            0.9 * count
        );
        out +=
            &format!("slogate_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n");
        out += &format!(
            "slogate_request_duration_seconds_sum{{{labels}}} {}\n",
            0.2 * count
        );
        out += &format!("slogate_request_duration_seconds_count{{{labels}}} {count}\n");
    }
    out += "# TYPE slogate_jobs_total counter\n";
    out += &format!(
        "slogate_jobs_total{{{JOB},outcome=\"success\"}} {}\n",
        49.0 * t
    );
    out += &format!(
        "slogate_jobs_total{{{JOB},outcome=\"system_error\"}} {}\n",
        1.0 * t
    );
    out
}

/// Serves `exposition` on an ephemeral port from a background thread.
fn serve_metrics() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind metrics listener");
    let port = listener.local_addr().expect("local addr").port();
    let start = Instant::now();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, start.elapsed().as_secs_f64());
        }
    });
    port
}

fn answer(mut stream: TcpStream, t: f64) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let body = exposition(t);
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A real Prometheus scraping the endpoint on `metrics_port` every second and evaluating
/// `dir/rules.yaml` every second.
fn start_prometheus(dir: &Path, metrics_port: u16) -> PrometheusServer {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [rules.yaml]\n\
         scrape_configs:\n  - job_name: slogate\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
    );
    PrometheusServer::start(dir, &config, &dir.join("data"))
}

/// Polls `check` every 500ms until it returns `Some`, up to `limit`.
fn wait<T>(
    server: &mut PrometheusServer,
    what: &str,
    limit: Duration,
    check: impl FnMut() -> Option<T>,
) -> T {
    server.wait_for(what, limit, Duration::from_millis(500), check)
}

fn close(actual: Option<f64>, expected: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what}: no data"));
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: got {actual}, expected {expected}"
    );
}

/// Every SLO has its period SLI and all window burn rates, and the recorded
/// rules have been evaluated.
fn complete(report: &Report) -> bool {
    report
        .slos
        .iter()
        .all(|s| s.sli.is_some() && s.burn_rates.iter().all(|b| b.burn_rate.is_some()))
}

#[test]
fn unreachable_prometheus_is_a_clear_error() {
    let spec = load("tests/fixtures/e2e-slo.yaml", "tests/fixtures/e2e-slo.yaml");
    // A port nobody listens on.
    let url = format!("http://127.0.0.1:{}", free_port());
    let client = Prometheus::new(&url, Duration::from_secs(2)).expect("client");
    let err = build_report(&spec, &client, unix_now()).expect_err("nothing listens");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach Prometheus at {url}: ")),
        "{err}"
    );
    let err = Prometheus::new("localhost:9090", Duration::from_secs(1)).expect_err("no scheme");
    assert!(err.to_string().contains("must start with http://"), "{err}");
}

/// Needs Prometheus or promtool, which this workspace does not build: `make unit` leaves out every
/// test under a `needs` module.
mod needs {
    mod prometheus {
        use super::super::*;

        #[test]
        fn report_reads_a_real_prometheus() {
            let started = Instant::now();
            let dir = tempfile::tempdir().expect("temp dir");
            let spec = load("tests/fixtures/e2e-slo.yaml", "tests/fixtures/e2e-slo.yaml");
            std::fs::write(
                dir.path().join("rules.yaml"),
                generate_rules(&spec).expect("rules"),
            )
            .expect("write rules");
            let metrics_port = serve_metrics();
            let mut server = start_prometheus(dir.path(), metrics_port);
            let client = Prometheus::new(&server.url, Duration::from_secs(5)).expect("client");

            let report = wait(
                &mut server,
                "every SLI to have data",
                Duration::from_secs(40),
                || {
                    build_report(&spec, &client, unix_now())
                        .ok()
                        .filter(complete)
                },
            );
            let by_name = |name: &str| {
                report
                    .slos
                    .iter()
                    .find(|s| s.slo == name)
                    .unwrap_or_else(|| panic!("{name} missing from the report"))
            };

            let availability = by_name("checkout-availability");
            assert_eq!(availability.objective, 0.95);
            close(availability.sli, 0.99, "checkout availability SLI");
            close(
                availability.budget_remaining,
                0.8,
                "checkout availability budget",
            );
            for burn in &availability.burn_rates {
                close(
                    burn.burn_rate,
                    0.2,
                    &format!("checkout availability burn {}", burn.window),
                );
            }
            // With a 1h period the thresholds are 0.02, 0.0083, 0.0042 and 0.0014:
            // a 0.2 burn trips all four.
            assert!(
                availability.alerts.iter().all(|a| a.firing),
                "{:?}",
                availability.alerts
            );

            let latency = by_name("checkout-latency");
            close(latency.sli, 0.9, "checkout latency SLI");
            close(latency.budget_remaining, 0.5, "checkout latency budget");
            close(
                latency.burn_rates[0].burn_rate,
                0.5,
                "checkout latency burn 5m",
            );

            let browse = by_name("browse-availability");
            close(
                browse.sli,
                1.0,
                "browse SLI (no system_error series at all)",
            );
            close(browse.budget_remaining, 1.0, "browse budget");
            assert!(
                browse.alerts.iter().all(|a| !a.firing),
                "{:?}",
                browse.alerts
            );

            let receipts = by_name("receipts-availability");
            assert!(
                receipts.period_window.starts_with("month to date"),
                "{}",
                receipts.period_window
            );
            close(receipts.sli, 0.98, "receipts SLI (jobs, month to date)");
            close(
                receipts.budget_remaining,
                -1.0,
                "receipts budget (overspent)",
            );

            // The recording rules and alerts, evaluated by Prometheus itself, agree.
            let recorded = |query: &str| client.query_value(query, unix_now()).expect("query");
            let remaining = wait(
                &mut server,
                "recorded budget",
                Duration::from_secs(15),
                || {
                    recorded(
                        r#"slo:period_error_budget_remaining:ratio{sloth_id="e2e-checkout-availability"}"#,
                    )
                },
            );
            assert!(
                (remaining - 0.8).abs() < 1e-6,
                "recorded budget remaining {remaining}"
            );
            // Rule groups are evaluated independently: wait for this one too.
            let recorded_burn = wait(
                &mut server,
                "recorded burn rate",
                Duration::from_secs(15),
                || recorded(r#"slo:current_burn_rate:ratio{sloth_id="e2e-checkout-latency"}"#),
            );
            close(Some(recorded_burn), 0.5, "recorded latency burn rate");
            let firing = wait(
                &mut server,
                "burn-rate alerts",
                Duration::from_secs(15),
                || {
                    recorded(r#"count(ALERTS{alertname="SLOErrorBudgetBurn",alertstate="firing",sloth_id="e2e-checkout-availability"})"#)
                    .filter(|n| *n == 4.0)
                },
            );
            assert_eq!(firing, 4.0);
            assert_eq!(
                recorded(
                    r#"ALERTS{alertname="SLOErrorBudgetBurn",sloth_id="e2e-browse-availability"}"#
                ),
                None
            );

            // Both renderings.
            let table = render_table(&report);
            eprintln!("{table}");
            assert!(
                table.lines().next().is_some_and(|h| h.starts_with("SLO ")),
                "{table}"
            );
            assert!(table.contains("e2e/checkout-availability"), "{table}");
            assert!(table.contains("99.000%"), "{table}");
            assert!(table.contains("page (tier 1, 1h/5m > 0.02x)"), "{table}");
            let json: serde_json::Value = serde_json::to_value(&report).expect("json");
            assert_eq!(json["slos"].as_array().map(Vec::len), Some(4));

            // No data for a service Prometheus has never seen is an error, not a
            // table of blanks.
            let unknown = parse_spec(
                "other.yaml",
                &std::fs::read_to_string(support::crate_dir().join("tests/fixtures/e2e-slo.yaml"))
                    .expect("read")
                    .replace("service: e2e", "service: nowhere"),
                &DEFAULT_BUCKETS,
            )
            .expect("spec");
            let err = build_report(&unknown, &client, unix_now()).expect_err("no data");
            assert!(matches!(err, ReportError::NoData { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("has no data for any SLO in other.yaml"),
                "{err}"
            );

            // A PromQL error is reported with the query.
            let err = client
                .query_value("sum(", unix_now())
                .expect_err("bad query");
            assert!(
                err.to_string()
                    .starts_with(&format!("Prometheus at {} refused the query", server.url)),
                "{err}"
            );

            eprintln!("report test took {:?}", started.elapsed());
        }
    }
}
