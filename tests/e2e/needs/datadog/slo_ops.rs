//! SLO operations end to end: the Datadog Agent's OpenMetrics check (datadog-checks-base, its
//! stub aggregator) reads slogate's real /metrics with the configuration `slogate slo datadog
//! --target agent` generates, and every metric and tag the generated SLO queries use is among
//! what it submits.

use serde_json::json;

use crate::own::slo_ops::write_spec;
use crate::support::*;

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
    let mut args: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    args.push(metrics_url.as_ref());
    let output = run_datadog_validation(&python, &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("SUCCESS"),
        "{text}"
    );
    assert!(
        text.contains("without rename_labels the check refuses `service`"),
        "{text}"
    );
    eprintln!("{text}");
}
