//! SLO operations end to end, detection measured: `slogate loadtest` through slogate to the
//! mock upstream, a real Prometheus (1s scrapes and evaluations) with the generated rules; the
//! mock dies at a known time and the page must fire within simulate's prediction plus one
//! scrape and one evaluation.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// 90% over 150 hours: the page's threshold is 0.02 × 150 × 10% = 30% errors,
/// so after 30 s of healthy traffic a total outage pages in about 13 s.
const DETECTION_SPEC: &str = r#"
service: rails
slos:
  - name: course-page
    description: The course page loads.
    owner: team-learning
    cuj: Learner opens a course
    period: 150h
    operations:
      - graphql: GetCourse
        type: query
    availability:
      target: 90
"#;

const HEALTHY: &str = r#"
description: GetCourse, always fine.
seed: 1
load:
  mode: open
  rate: 50
  duration: 100s
  timeout: 2s
proxy:
  read_timeout: 5s
default_latency: { fixed: 5ms }
operations:
  - name: GetCourse
    weight: 1
    document: "query GetCourse($id: ID!) { course(id: $id) { id title } }"
    variables: { id: "1" }
    answers:
      - success: { weight: 100 }
"#;

fn spawn(name: &str, args: &[&str], log: &Path) -> Proc {
    Proc::spawn(
        name,
        Command::new(slogate_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).expect("log"))),
    )
}

fn start_prometheus(dir: &Path, target: &str, rules: &Path) -> Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: ['{}']\n\
         scrape_configs:\n  - job_name: slogate\n    static_configs:\n      - targets: ['{target}']\n",
        rules.display()
    );
    let mut p = Prometheus::start(dir, &config, &dir.join("data"));
    p.wait_ready(Duration::from_secs(30));
    p
}

/// The timestamp of the first raw sample of `selector` (any of its series) since `from`.
/// Raw samples, not a `query_range` grid: a step of 1 s would put each time up to a second
/// late.
fn first_time(prom: &Prometheus, selector: &str, from: f64) -> Option<f64> {
    let range = (unix_now() - from).ceil().max(1.0) as u64;
    let q = url_encode(&format!("{selector}[{range}s]"));
    let v = prom.api(&format!("/api/v1/query?query={q}"));
    v["data"]["result"]
        .as_array()?
        .iter()
        .filter_map(|series| series["values"][0][0].as_f64())
        .reduce(f64::min)
}

/// First timestamp at which Prometheus holds a sample of GetCourse's successes.
fn first_sample(prom: &Prometheus, from: f64) -> Option<f64> {
    first_time(
        prom,
        r#"slogate_requests_total{operation="GetCourse"}"#,
        from,
    )
}

/// First timestamp at which the page (tier 1) fired, if it has.
fn first_page(prom: &Prometheus, from: f64) -> Option<f64> {
    first_time(
        prom,
        r#"ALERTS{alertname="SLOErrorBudgetBurn",alertstate="firing",tier="1"}"#,
        from,
    )
}

#[test]
fn the_page_fires_when_simulate_says() {
    let _quiet = quiet();
    require_tool("prometheus", "prometheus");
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("slo.yaml");
    std::fs::write(&spec, DETECTION_SPEC).expect("spec");
    let spec = spec.to_str().expect("utf8").to_string();
    let scenario = dir.path().join("healthy.yaml");
    std::fs::write(&scenario, HEALTHY).expect("scenario");
    let scenario = scenario.to_str().expect("utf8").to_string();
    let rules = dir.path().join("rules.yaml");
    run_slogate(&[
        "slo",
        "rules",
        "--spec",
        &spec,
        "--output",
        rules.to_str().expect("utf8"),
    ]);

    // slogate starts before the app is up, and one GetCourse fails: its system_error series
    // exists, and is scraped, before the fault, as an operation's error series does in
    // production. A series first seen at the fault loses the errors before its first scrape
    // to increase(), and the page came a second late (up to 15.05 s for simulate's 13 s).
    // One error among the ~1,450 requests of the history moves the page by ~0.03 s.
    let mock_addr = format!("127.0.0.1:{}", free_port());
    let s = start_slogate(&mock_addr, "");
    let body = serde_json::json!({"query": "query GetCourse($id: ID!) { course(id: $id) { id title } }", "variables": {"id": "1"}});
    assert_eq!(
        graphql(&s.addr(), &body).status,
        502,
        "the app is not up yet"
    );
    let mut mock = spawn(
        "mock-upstream",
        &[
            "mock-upstream",
            "--scenario",
            &scenario,
            "--listen",
            &mock_addr,
        ],
        &dir.path().join("mock.log"),
    );
    wait_for("the mock upstream", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&mock_addr).ok()
    });
    let prom = start_prometheus(dir.path(), &format!("127.0.0.1:{}", s.admin_port), &rules);

    // Prometheus throttles target discovery (about 5 s before its first
    // scrape); load starts once it scrapes slogate, so the healthy history
    // it sees is the one simulate is told about.
    wait_for(
        "prometheus to scrape slogate",
        Duration::from_secs(30),
        || (prom.query(r#"up{job="slogate"}"#)? == 1.0).then_some(()),
    );
    let target = format!("http://{}", s.addr());
    let load_started = unix_now();
    let _load = spawn(
        "loadtest",
        &[
            "loadtest",
            "--scenario",
            &scenario,
            "--target",
            &target,
            "--quiet",
        ],
        &dir.path().join("loadtest.log"),
    );
    std::thread::sleep(Duration::from_secs(30));
    // The fault: the upstream dies; every request becomes a system_error.
    let _ = mock.child.kill();
    let _ = mock.child.wait();
    let fault = unix_now();
    // The healthy history is what Prometheus saw, not how long ago the
    // loadtest was spawned: on a loaded machine the first request (and so
    // the first sample of the series) can come seconds later, and a shorter
    // history pages sooner (after 25 s instead of 30 s: about 2 s sooner).
    let history = fault - first_sample(&prom, load_started - 5.0).unwrap_or(load_started);

    let deadline = Instant::now() + Duration::from_secs(60);
    let fired = loop {
        if let Some(t) = first_page(&prom, fault - 5.0) {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the page did not fire within 60s of the fault"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let measured = fired - fault;

    let sim: serde_json::Value = serde_json::from_str(&run_slogate(&[
        "slo",
        "simulate",
        "--spec",
        &spec,
        "--errors",
        "100%",
        "--scrape-interval",
        "1s",
        "--eval-interval",
        "1s",
        "--history",
        &format!("{}s", history.round() as u64),
        "--json",
    ]))
    .expect("simulate JSON");
    let predicted = sim["slos"][0]["alerts"][0]["fires_after"]
        .as_f64()
        .expect("simulate predicts the page");
    eprintln!(
        "page: predicted {predicted}s after the fault (ideal {}s), measured {measured:.1}s \
         (history {history:.1}s)",
        sim["slos"][0]["alerts"][0]["ideal_fires_after"]
    );
    // One scrape and one evaluation of slack (1s each), as the phases of
    // the scrape and evaluation loops against the fault are unknown.
    assert!(
        measured <= predicted + 2.0,
        "the page fired {measured:.1}s after the fault; simulate predicted {predicted}s"
    );
    assert!(
        measured >= predicted - 2.0,
        "the page fired {measured:.1}s after the fault, earlier than simulate's {predicted}s allows"
    );
    drop(prom);
}
