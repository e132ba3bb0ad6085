//! `slo datadog` output checked with Datadog's own Python client
//! (`datadog-api-client` model classes) by tests/datadog/validate.py.
//! The Agent check half (against slogate's real /metrics) runs in the root
//! package's tests/slo_ops.rs.

mod support;

use std::path::Path;

use slogate_slo::datadog::{agent_config, api_json, terraform_json, AgentEndpoints};
use slogate_test_support::{datadog_python, run_datadog_validation};
use support::{load, GOLDEN_CASES};

fn write_outputs(dir: &Path, stem: &str, input: &str, source: &str) -> [std::path::PathBuf; 3] {
    let spec = load(input, source);
    let api = dir.join(format!("{stem}.api.json"));
    let tf = dir.join(format!("{stem}.tf.json"));
    let agent = dir.join(format!("{stem}.agent.yaml"));
    std::fs::write(&api, api_json(&spec).to_string()).expect("write");
    std::fs::write(&tf, terraform_json(&spec).to_string()).expect("write");
    let endpoints = AgentEndpoints {
        proxy: "http://127.0.0.1:9090/metrics".into(),
        jobs: None,
    };
    std::fs::write(&agent, agent_config(&spec, &endpoints)).expect("write");
    [api, tf, agent]
}

/// Datadog's metric names and tag spelling: burn thresholds and windows as in
/// the Prometheus alerts; the 3d/6h ticket left out with a reason.
#[test]
fn queries_use_the_agent_metric_names() {
    let (input, source, _) = GOLDEN_CASES[2];
    let doc = api_json(&load(input, source));
    let slos = doc["service_level_objectives"].as_array().expect("slos");
    let latency = &slos[1]["body"]["query"];
    assert_eq!(
        latency["numerator"],
        "sum:slogate.request_duration_seconds.bucket{slogate_service:shop,kind:graphql,operation:createorder,operation_type:mutation,!outcome:canceled,!outcome:system_error,upper_bound:0.3}.as_count()"
    );
    let queries: Vec<&str> = doc["monitors"]
        .as_array()
        .expect("monitors")
        .iter()
        .filter_map(|m| m["body"]["query"].as_str())
        .take(3)
        .collect();
    assert_eq!(
        queries,
        [
            r#"burn_rate("%SLO_ID%").over("30d").long_window("1h").short_window("5m") > 14.4"#,
            r#"burn_rate("%SLO_ID%").over("30d").long_window("6h").short_window("30m") > 6"#,
            r#"burn_rate("%SLO_ID%").over("30d").long_window("24h").short_window("2h") > 3"#,
        ]
    );
    assert!(doc["notes"][0]
        .as_str()
        .expect("note")
        .contains("tier 4 (3d/6h > 1x) left out"));
}

/// Needs Python with the Datadog packages, which this workspace does not build: `make unit` leaves
/// out every test under a `needs` module.
mod needs {
    mod datadog {
        use super::super::*;

        #[test]
        fn every_generated_object_builds_with_datadog_api_client() {
            let Some(python) = datadog_python() else {
                eprintln!(
                    "SKIPPED: no python3 on PATH; the Datadog validation needs it (scripts/setup.sh)"
                );
                return;
            };
            let dir = tempfile::tempdir().expect("temp dir");
            for (input, source, stem) in GOLDEN_CASES {
                if stem == "openslo" {
                    // Raw PromQL SLIs: nothing to translate (checked below).
                    continue;
                }
                let [api, tf, agent] = write_outputs(dir.path(), stem, input, source);
                let output = run_datadog_validation(&python, &[&api, &tf, &agent]);
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success() && stdout.contains("SUCCESS"),
                    "{input}:\n{stdout}"
                );
            }
            let (input, source, _) = GOLDEN_CASES[1];
            let doc = api_json(&load(input, source));
            assert!(
                doc["notes"].to_string().contains("raw OpenSLO PromQL"),
                "{doc}"
            );
        }

        /// The validation is not vacuous: an unknown enum value, an unknown key and
        /// a missing required field each fail it.
        #[test]
        fn the_validation_catches_what_the_client_lets_through() {
            let Some(python) = datadog_python() else {
                eprintln!(
                    "SKIPPED: no python3 on PATH; the Datadog validation needs it (scripts/setup.sh)"
                );
                return;
            };
            let dir = tempfile::tempdir().expect("temp dir");
            let (input, source, stem) = GOLDEN_CASES[2];
            let [api, tf, agent] = write_outputs(dir.path(), stem, input, source);
            let good: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&api).expect("read")).expect("json");
            type Mutation = fn(&mut serde_json::Value);
            let mutations: [(&str, Mutation, &str); 4] = [
                (
                    "unknown timeframe",
                    |v| {
                        v["service_level_objectives"][0]["body"]["thresholds"][0]["timeframe"] =
                            "28d".into()
                    },
                    "_unparsed",
                ),
                (
                    "unknown monitor type",
                    |v| v["monitors"][0]["body"]["type"] = "slo alerts".into(),
                    "_unparsed",
                ),
                (
                    "unknown key",
                    |v| v["service_level_objectives"][0]["body"]["query"]["numerater"] = "x".into(),
                    "key 'numerater' is not a field of ServiceLevelObjectiveQuery",
                ),
                (
                    "missing name",
                    |v| {
                        if let Some(body) = v["service_level_objectives"][0]["body"].as_object_mut()
                        {
                            body.remove("name");
                        }
                    },
                    "missing 1 required positional argument: 'name'",
                ),
            ];
            for (what, mutate, expected) in mutations {
                let mut bad = good.clone();
                mutate(&mut bad);
                let path = dir.path().join("bad.json");
                std::fs::write(&path, bad.to_string()).expect("write");
                let output = run_datadog_validation(&python, &[&path, &tf, &agent]);
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(!output.status.success(), "{what}: accepted\n{stdout}");
                assert!(stdout.contains(expected), "{what}: {stdout}");
            }
        }
    }
}
