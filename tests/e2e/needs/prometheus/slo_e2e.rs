//! SLOs end to end: a real Prometheus scrapes slogate in front of the Rails fixture and
//! evaluates the rules `slogate slo rules` generated; the recorded ratios and
//! `slogate slo report` must match the traffic the test sent.

use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};

const SPEC: &str = r#"
service: rails
slos:
  - name: course-page
    description: The course page loads.
    owner: team-learning
    cuj: Learner opens a course
    period: 1h
    operations:
      - graphql: GetCourse
        type: query
    availability:
      target: 90
    latency:
      threshold: 1s
      target: 80
"#;

/// Prometheus scraping `scrape` with `rules`, and its temporary directory.
fn start_prometheus(scrape: &str, rules: &std::path::Path) -> (Prometheus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\nscrape_configs:\n  - job_name: slogate\n    static_configs:\n      - targets: [\"{scrape}\"]\n",
        rules.display()
    );
    let mut prom = Prometheus::start(dir.path(), &config, &dir.path().join("data"));
    prom.wait_ready(Duration::from_secs(30));
    (prom, dir)
}

fn send(addr: &str, query: &str, n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (addr, body) = (addr.to_string(), json!({"query": query}));
            std::thread::spawn(move || assert_eq!(graphql(&addr, &body).status, 200))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn generated_rules_and_report_match_the_traffic() {
    let _quiet = quiet();
    require_tool("prometheus", "prometheus");
    let s = start_slogate(&rails().addr(), "");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let rules = dir.path().join("rules.yml");
    run_slogate(&[
        "slo",
        "rules",
        "--spec",
        spec.to_str().unwrap(),
        "--output",
        rules.to_str().unwrap(),
    ]);
    let (prom, _prom_dir) = start_prometheus(&format!("127.0.0.1:{}", s.admin_port), &rules);

    let ok = "query GetCourse { course(id: \"1\") { id } }";
    let client = "query GetCourse { course(id: \"404\") { id } }";
    let system = "query GetCourse { course(id: \"1\") { id } internalError }";
    // Slow enough to be over the threshold on a loaded machine, fast ones far under it.
    let slow = "query GetCourse { course(id: \"1\") { id } slow(ms: 1500) }";
    // Every series exists (and is scraped) before the counted traffic, so increase() over the
    // period sees only what follows. The warm-up is the counted traffic once over, so that
    // every series' first sample equals its increase: Prometheus clamps a counter's
    // extrapolation towards the window's start at the point where it would reach zero
    // (sampled interval x first value / increase), and with first value = increase for every
    // series that point is the same fraction of the sampled interval for all of them, however
    // many scrapes there were: every series is extrapolated alike and every ratio is exact.
    // (With warm-ups of 10, 2, 2 and 1 the fractions differed, and with few scrapes since
    // the traffic some series were clamped and others not: 0.205 and 0.210 for 0.2.)
    let traffic = [(ok, 30), (client, 5), (system, 10), (slow, 5)];
    for (q, n) in traffic {
        send(&s.addr(), q, n);
    }
    wait_for(
        "the series to be scraped twice",
        Duration::from_secs(20),
        || {
            let n = prom.query("count_over_time(slogate_requests_total{operation=\"GetCourse\",outcome=\"system_error\"}[1m])")?;
            (n >= 2.0).then_some(())
        },
    );
    for (q, n) in traffic {
        send(&s.addr(), q, n);
    }
    s.wait_requests(100.0);

    // Availability: bad = system errors among everything but canceled.
    let availability_bad = 10.0 / 50.0;
    // Latency: slow among success and client errors.
    let latency_bad = 5.0 / 40.0;
    let sli = |slo: &str, window: &str| {
        prom.query(&format!(
            "slo:sli_error:ratio_rate{window}{{sloth_slo=\"{slo}\"}}"
        ))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // The 5m ratio is waited for with the others: each recording rule is evaluated on its
    // own schedule, so one read right after the 1h ratios converged could catch the 5m rule
    // before its evaluation saw the last scrape (0.212 for 0.2, once).
    let (a, l, five, budget) = loop {
        let (a, l, five) = (
            sli("course-page-availability", "1h"),
            sli("course-page-latency", "1h"),
            sli("course-page-availability", "5m"),
        );
        // The period's budget is Sloth's average of the 5m ratio over the evaluations so
        // far: the evaluations during the traffic (ratios on their way to 0.2) weigh in
        // until enough evaluations at the final ratio have followed.
        let budget = prom.query(
            "slo:period_error_budget_remaining:ratio{sloth_slo=\"course-page-availability\"}",
        );
        if let (Some(a), Some(l), Some(five), Some(b)) = (a, l, five, budget) {
            if (a - availability_bad).abs() < 0.005
                && (l - latency_bad).abs() < 0.005
                && (five - availability_bad).abs() < 0.005
                && (b - (1.0 - availability_bad / 0.1)).abs() < 0.05
            {
                break (a, l, five, b);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recorded ratios: availability {a:?}, 5m {five:?} (want {availability_bad}), latency {l:?} (want {latency_bad})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("recorded period error ratios: availability {a:.4}, latency {l:.4}");
    // The converged values are the ones asserted (a second read could race the rules'
    // evaluations again).
    assert!((five - availability_bad).abs() < 0.005, "5m: {five}");
    assert!(
        (budget - (1.0 - availability_bad / 0.1)).abs() < 0.05,
        "budget remaining {budget}"
    );

    let prometheus = prom.url.clone();
    let slo_report = |extra: &[&str]| {
        let mut args = vec![
            "slo",
            "report",
            "--spec",
            spec.to_str().unwrap(),
            "--prometheus",
            &prometheus,
        ];
        args.extend_from_slice(extra);
        run_slogate(&args)
    };
    let report: Value = serde_json::from_str(&slo_report(&["--json"])).unwrap();
    let slo = |name: &str| {
        report["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slo"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    let avail = slo("course-page-availability");
    assert!(
        (avail["sli"].as_f64().unwrap() - (1.0 - availability_bad)).abs() < 0.005,
        "{avail}"
    );
    assert!(
        (avail["budget_remaining"].as_f64().unwrap() - (1.0 - availability_bad / 0.1)).abs() < 0.05,
        "{avail}"
    );
    let lat = slo("course-page-latency");
    assert!(
        (lat["sli"].as_f64().unwrap() - (1.0 - latency_bad)).abs() < 0.005,
        "{lat}"
    );
    let table = slo_report(&[]);
    let row = |slo: &str| {
        table
            .lines()
            .find(|l| l.contains(slo))
            .unwrap_or_else(|| panic!("{slo} in {table}"))
            .to_string()
    };
    let avail_row = row("rails/course-page-availability");
    assert!(
        avail_row.contains("80.000%")
            && avail_row.contains("-100.0%")
            && avail_row.contains("2.00"),
        "{avail_row}"
    );
    assert!(
        row("rails/course-page-latency").contains("87.500%"),
        "{table}"
    );
}
