//! SLO operations end to end, on the real binary: `slogate slo simulate` and `slogate slo
//! rules --tests` on the command line. The Datadog Agent's check is in
//! `needs/datadog/slo_ops.rs`, detection measured in a real Prometheus in
//! `needs/prometheus/slo_ops.rs`.

use crate::support::*;
use std::path::Path;

const SPEC: &str = r#"
service: rails
slos:
  - name: course-page
    description: The course page loads.
    owner: team-learning
    cuj: Learner opens a course
    period: 30d
    operations:
      - graphql: GetCourse
        type: query
    availability:
      target: 99.5
    latency:
      threshold: 1s
      target: 99
"#;

pub(crate) fn write_spec(dir: &Path) -> String {
    let spec = dir.join("slo.yaml");
    std::fs::write(&spec, SPEC).expect("write spec");
    spec.to_str().expect("utf8 path").to_string()
}

#[test]
fn simulate_and_rule_tests_on_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = write_spec(dir.path());
    let table = run_slogate(&[
        "slo",
        "simulate",
        "--spec",
        &spec,
        "--errors",
        "100%",
        "--scrape-interval",
        "15s",
        "--eval-interval",
        "15s",
    ]);
    // 99.5%: 1h × 14.4 × 0.5% = 259.2 s; fires at the next evaluation.
    assert!(
        table.contains("rails/course-page-availability  page tier 1 1h/5m > 14.4x  4m30s"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&run_slogate(&[
        "slo", "simulate", "--spec", &spec, "--slow", "50%", "--json",
    ]))
    .expect("json");
    assert_eq!(json["slos"][0]["slo"], "course-page-latency");
    // 1h × 14.4 × 1% / 50% slow = 1036.8 s.
    assert_eq!(json["slos"][0]["alerts"][0]["ideal_fires_after"], 1036.8);

    let tests = run_slogate(&["slo", "rules", "--tests", "--spec", &spec]);
    assert!(tests.contains("rule_files:\n- slo.rules.yaml"), "{tests}");
}
