//! Helpers shared by the integration tests; what every test crate shares is in
//! crates/slogate-test-support.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use slogate_slo::{load_spec, parse_spec, Spec, DEFAULT_BUCKETS};
use slogate_test_support::tool_path;

/// The crate directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The spec inputs with golden outputs: (path from the crate, name shown in
/// generated headers, golden file stem).
pub const GOLDEN_CASES: [(&str, &str, &str); 3] = [
    (
        "../../proxy-config/slo.yaml",
        "proxy-config/slo.yaml",
        "example",
    ),
    (
        "../../proxy-config/openslo-example.yaml",
        "proxy-config/openslo-example.yaml",
        "openslo",
    ),
    (
        "tests/fixtures/promtool-slo.yaml",
        "tests/fixtures/promtool-slo.yaml",
        "promtool",
    ),
];

/// Loads a spec from a path relative to the crate, naming it `source`.
pub fn load(relative: &str, source: &str) -> Spec {
    let path = crate_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_spec(source, &text, &DEFAULT_BUCKETS).unwrap_or_else(|e| panic!("{e}"))
}

/// Loads a spec by path (messages name the path as given).
pub fn load_path(path: &Path) -> Spec {
    load_spec(path, &DEFAULT_BUCKETS).unwrap_or_else(|e| panic!("{e}"))
}

/// The real promtool. Missing promtool is a failure, not a skip: the tests check the generated
/// rules with it.
pub fn promtool() -> PathBuf {
    tool_path("promtool", "prometheus")
}

/// Runs promtool with `args` in `dir`; panics with its output on failure.
pub fn run_promtool(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    if !output.status.success() {
        panic!(
            "promtool {} failed in {}:\n{}\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}
