//! The generated rules against the real promtool: `promtool check rules` on
//! every generated file, and `promtool test rules` unit tests (in
//! tests/promtool/) with synthetic slogate series.
//!
//! promtool is required: without it these tests fail and say how to install
//! it.

mod support;

use std::path::Path;

use slogate_slo::rule_tests::generate_rule_tests;
use slogate_slo::{generate_dashboard, generate_rules};
use support::{crate_dir, load, run_promtool, GOLDEN_CASES};

/// Needs Prometheus or promtool, which this workspace does not build: `make unit` leaves out every
/// test under a `needs` module.
mod needs {
    mod prometheus {
        use super::super::*;

        #[test]
        fn promtool_accepts_every_generated_rule_file() {
            let dir = tempfile::tempdir().expect("temp dir");
            for (input, source, stem) in GOLDEN_CASES {
                let file = format!("{stem}.rules.yaml");
                let rules = generate_rules(&load(input, source)).expect("rules");
                std::fs::write(dir.path().join(&file), rules).expect("write rules");
                let output = run_promtool(dir.path(), &["check", "rules", &file]);
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(stdout.contains("SUCCESS"), "{input}: {stdout}");
            }
        }

        /// Every dashboard query parses as PromQL (Grafana's `$__…` variables
        /// replaced by durations).
        #[test]
        fn dashboard_queries_are_valid_promql() {
            let dir = tempfile::tempdir().expect("temp dir");
            for (input, source, stem) in GOLDEN_CASES {
                let spec = load(input, source);
                for service in spec.services() {
                    let json: serde_json::Value = serde_json::from_str(
                        &generate_dashboard(&spec, service).expect("dashboard"),
                    )
                    .expect("dashboard JSON");
                    let mut exprs = Vec::new();
                    collect_exprs(&json, &mut exprs);
                    assert!(!exprs.is_empty(), "{input}: no queries in the dashboard");
                    let rules: Vec<serde_json::Value> = exprs
                        .iter()
                        .enumerate()
                        .map(|(i, e)| {
                            let expr = e
                                .replace("$__rate_interval", "5m")
                                .replace("$__range", "1d");
                            serde_json::json!({"record": format!("dashboard:query{i}:check"), "expr": expr})
                        })
                        .collect();
                    let file = format!("{stem}.{service}.dashboard-queries.yaml");
                    let doc = serde_json::json!({"groups": [{"name": "dashboard-queries", "rules": rules}]});
                    // JSON is valid YAML.
                    std::fs::write(dir.path().join(&file), doc.to_string()).expect("write");
                    run_promtool(dir.path(), &["check", "rules", &file]);
                }
            }
        }

        fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, v) in map {
                        match (key.as_str(), v) {
                            ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                            _ => collect_exprs(v, out),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
                _ => {}
            }
        }

        /// Writes the fixture's rules as rules.yaml next to a copy of `test_file`
        /// and runs `promtool test rules` on it.
        fn promtool_unit_test(test_file: &str) {
            let dir = tempfile::tempdir().expect("temp dir");
            let spec = load(
                "tests/fixtures/promtool-slo.yaml",
                "tests/fixtures/promtool-slo.yaml",
            );
            std::fs::write(
                dir.path().join("rules.yaml"),
                generate_rules(&spec).expect("rules"),
            )
            .expect("write rules");
            let source = crate_dir().join("tests/promtool").join(test_file);
            std::fs::copy(&source, dir.path().join(test_file)).expect("copy test file");
            let output = run_promtool(dir.path(), &["test", "rules", test_file]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.contains("SUCCESS"),
                "{}: {stdout}",
                Path::new(test_file).display()
            );
        }

        /// Healthy traffic fires nothing; a 20x burn pages within 45 minutes and no
        /// sooner than 30; a slow 2x burn opens the 3d/6h ticket, not a page, and
        /// exhausts the budget.
        #[test]
        fn promtool_burn_rate_alerts() {
            promtool_unit_test("burn.test.yaml");
        }

        /// An outage pages within 2 minutes; missing metrics alert after 10 minutes.
        #[test]
        fn promtool_outage_and_absent_alerts() {
            promtool_unit_test("fast.test.yaml");
        }

        /// Latency just under the threshold is good, just over is bad; client
        /// errors count, system errors don't; the period SLI is traffic-weighted;
        /// quiet hours and missing error series are NaN-safe.
        #[test]
        fn promtool_sli_counting() {
            promtool_unit_test("sli.test.yaml");
        }

        /// `slo rules --tests`: the suite generated from `slo simulate`'s
        /// predictions passes `promtool test rules` against the generated rules, for
        /// the promtool fixture (availability and latency). The OpenSLO example's
        /// raw PromQL SLIs get no synthetic series and say so. (The full example spec
        /// passes too but takes minutes; see docs/slo-operations.md.)
        #[test]
        fn promtool_passes_the_generated_rule_tests() {
            let dir = tempfile::tempdir().expect("temp dir");
            for (input, source, stem) in GOLDEN_CASES.iter().filter(|(_, _, s)| *s == "promtool") {
                let spec = load(input, source);
                let rules = format!("{stem}.rules.yaml");
                let tests = format!("{stem}.test.yaml");
                std::fs::write(
                    dir.path().join(&rules),
                    generate_rules(&spec).expect("rules"),
                )
                .expect("write rules");
                let suite = generate_rule_tests(&spec, &rules).expect("tests");
                assert!(
                    suite.contains("alert_rule_test"),
                    "{input}: no tests generated"
                );
                std::fs::write(dir.path().join(&tests), suite).expect("write tests");
                let output = run_promtool(dir.path(), &["test", "rules", &tests]);
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(stdout.contains("SUCCESS"), "{input}: {stdout}");
            }
            let (input, source, _) = GOLDEN_CASES[1];
            let suite = generate_rule_tests(&load(input, source), "r.yaml").expect("tests");
            assert!(
                suite.contains("raw OpenSLO queries; no synthetic series"),
                "{suite}"
            );
        }

        /// The suite is not vacuous: moving one predicted firing time a minute
        /// earlier makes promtool fail.
        #[test]
        fn promtool_rejects_a_suite_off_by_one_evaluation() {
            let dir = tempfile::tempdir().expect("temp dir");
            let spec = load(
                "tests/fixtures/promtool-slo.yaml",
                "tests/fixtures/promtool-slo.yaml",
            );
            std::fs::write(
                dir.path().join("r.yaml"),
                generate_rules(&spec).expect("rules"),
            )
            .expect("write rules");
            let suite = generate_rule_tests(&spec, "r.yaml").expect("tests");
            // The first test: tier 1 fires at 1h30m, not at 1h29m. Expect its
            // firing set a minute early.
            assert!(suite.contains("  - eval_time: 1h30m\n"), "{suite}");
            let broken = suite.replacen("  - eval_time: 1h30m\n", "  - eval_time: 1h29m\n", 1);
            std::fs::write(dir.path().join("t.yaml"), broken).expect("write");
            let output = std::process::Command::new(support::promtool())
                .args(["test", "rules", "t.yaml"])
                .current_dir(dir.path())
                .output()
                .expect("run promtool");
            assert!(
                !output.status.success(),
                "promtool accepted a wrong firing time"
            );
        }
    }
}
