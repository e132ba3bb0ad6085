//! SLO operations end to end, on the real binary:
//! - the Datadog Agent's OpenMetrics check (datadog-checks-base, its stub
//!   aggregator) reads slogate's real /metrics with the configuration
//!   `slogate slo datadog --target agent` generates, and every metric and tag
//!   the generated SLO queries use is among what it submits;
//! - `slogate slo simulate` and `slogate slo rules --tests` on the command line.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support::*;

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

fn run_slogate(args: &[&str]) -> String {
    let out = Command::new(slogate_bin())
        .args(args)
        .output()
        .expect("run slogate");
    assert!(
        out.status.success(),
        "slogate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `$SLOGATE_PYTHON`, the virtualenv scripts/setup.sh makes, or python3.
fn datadog_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLOGATE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = root().join("target/slo-venv/bin/python");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("python3"))
            .find(|p| p.is_file())
    })
}

fn write_spec(dir: &Path) -> String {
    let spec = dir.join("slo.yaml");
    std::fs::write(&spec, SPEC).expect("write spec");
    spec.to_str().expect("utf8 path").to_string()
}

#[test]
fn datadog_agent_check_reads_slogate_metrics() {
    let Some(python) = datadog_python() else {
        eprintln!(
            "SKIPPED: no python3 on PATH; the Datadog check test needs it (scripts/setup.sh)"
        );
        return;
    };
    let s = start_slogate(&rails().addr(), "");
    let ok = json!({"query": "query GetCourse { course(id: \"1\") { id } }"});
    let client = json!({"query": "query GetCourse { course(id: \"404\") { id } }"});
    let system = json!({"query": "query GetCourse { course(id: \"1\") { id } internalError }"});
    for body in [&ok, &ok, &client, &system] {
        assert_eq!(graphql(&s.addr(), body).status, 200);
    }
    s.wait_requests(4.0);

    let dir = tempfile::tempdir().expect("temp dir");
    let spec = write_spec(dir.path());
    let metrics_url = format!("http://127.0.0.1:{}/metrics", s.admin_port);
    let mut files = Vec::new();
    for (target, name) in [
        ("api", "api.json"),
        ("terraform", "slo.tf.json"),
        ("agent", "agent.yaml"),
    ] {
        let path = dir.path().join(name);
        run_slogate(&[
            "slo",
            "datadog",
            "--spec",
            &spec,
            "--target",
            target,
            "--metrics-url",
            &metrics_url,
            "--output",
            path.to_str().expect("utf8"),
        ]);
        files.push(path);
    }
    let output = Command::new(&python)
        .arg(root().join("crates/slogate-slo/tests/datadog/validate.py"))
        .args(&files)
        .arg(&metrics_url)
        .output()
        .expect("run validate.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "{} lacks the Datadog libraries; run scripts/setup.sh:\n{text}",
        python.display()
    );
    assert!(
        output.status.success() && text.contains("SUCCESS"),
        "{text}"
    );
    assert!(
        text.contains("without rename_labels the check refuses `service`"),
        "{text}"
    );
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
