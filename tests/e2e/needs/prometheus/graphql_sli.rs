//! slogate's exposition, with the real Rails fixture behind it, as promtool reads it.

use std::io::{Read, Write};

use serde_json::json;

use crate::support::*;

#[test]
fn exposition_passes_promtool_check_metrics() {
    require_tool("promtool", "prometheus");
    let s = start_slogate(&rails().addr(), "");
    let a = s.addr();
    graphql(&a, &json!({"query": "query P { courses { id } }"}));
    graphql(
        &a,
        &json!({"query": "query Q { course(id: \"404\") { id } }"}),
    );
    get(&a, "/api/v1/courses/1").unwrap();
    s.wait_requests(3.0);
    let text = s.metrics_text();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    child_stderr(&out, &mut report);
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{report}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool found problems:\n{report}"
    );
}

fn child_stderr(out: &std::process::Output, report: &mut String) {
    let mut err = String::new();
    (&out.stderr[..]).read_to_string(&mut err).ok();
    report.push_str(&err);
}
