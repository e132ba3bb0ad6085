//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use slogate_slo::{load_spec, parse_spec, Spec, DEFAULT_BUCKETS};

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

/// Path of `name` on PATH, if any.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The real promtool. Missing promtool is a failure, not a skip: CI must
/// install it (Debian: `apt-get install prometheus`).
pub fn promtool() -> PathBuf {
    which("promtool").unwrap_or_else(|| {
        panic!(
            "promtool not found on PATH. These tests check the generated rules with the real \
             promtool; install it (Debian/Ubuntu: `apt-get install prometheus`, which ships \
             /usr/bin/promtool) and run the tests again."
        )
    })
}

/// The real prometheus server binary (same package as promtool).
pub fn prometheus() -> PathBuf {
    which("prometheus").unwrap_or_else(|| {
        panic!(
            "prometheus not found on PATH. The report test starts a real Prometheus; install it \
             (Debian/Ubuntu: `apt-get install prometheus`) and run the tests again."
        )
    })
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

/// The Python that has the Datadog libraries: `$SLOGATE_PYTHON`, else the
/// virtualenv scripts/setup.sh makes (`target/slo-venv`), else `python3`.
/// `None` (the caller skips, saying why) only when no Python exists at all.
pub fn datadog_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLOGATE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = crate_dir().join("../../target/slo-venv/bin/python");
    if venv.is_file() {
        return Some(venv);
    }
    which("python3")
}

/// Runs tests/datadog/validate.py with `args`; panics with its output on
/// failure or when the libraries are missing.
pub fn run_datadog_validation(python: &Path, args: &[&Path]) -> Output {
    let script = crate_dir().join("tests/datadog/validate.py");
    let output = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if text.contains("ModuleNotFoundError") {
        panic!(
            "{} lacks the Datadog libraries; run scripts/setup.sh (it installs \
             crates/slogate-slo/tests/datadog/requirements.txt into target/slo-venv):\n{text}",
            python.display()
        );
    }
    output
}
