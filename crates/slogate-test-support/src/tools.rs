//! External programs: a test that needs one checks for it first, so that without it the
//! failure says what is missing and how to get it, not a timeout or an assertion later on.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Path of `tool` on PATH, if any.
pub fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    })
}

/// The Ruby libraries the Rails fixture (tests/rails-app) loads, with their Debian packages.
const RAILS_FIXTURE_LIBS: &[(&str, &str)] = &[
    ("rails", "ruby-railties"),
    ("action_controller", "ruby-actionpack"),
    ("action_cable", "ruby-actioncable"),
    ("graphql", "ruby-graphql"),
];

/// The Ruby libraries a Ruby program needs to do its job in these tests: Puma only ever runs
/// the Rails fixture, Sidekiq the fixture in tests/sidekiq-app. Without them the program
/// starts and dies, and the test would wait for it in vain.
fn ruby_libs_for(tool: &str) -> &'static [(&'static str, &'static str)] {
    match tool {
        "puma" => RAILS_FIXTURE_LIBS,
        "sidekiq" => &[("sidekiq", "ruby-sidekiq")],
        _ => &[],
    }
}

fn missing(what: &str, package: &str) -> String {
    format!(
        "this test needs {what} (Debian: {package}), which is not installed: run `make test`, \
         which installs it (scripts/setup.sh does; or `apt-get install -y {package}`). \
         `make unit` runs the tests that need no external program."
    )
}

/// Fails the test, naming the Debian `package` and `make test`, unless `tool` is on PATH
/// (and, for Puma and Sidekiq, the Ruby libraries the fixtures load are installed).
pub fn require_tool(tool: &str, package: &str) {
    tool_path(tool, package);
}

/// [`require_tool`], returning the tool's path.
pub fn tool_path(tool: &str, package: &str) -> PathBuf {
    let path =
        on_path(tool).unwrap_or_else(|| panic!("{}", missing(&format!("`{tool}`"), package)));
    for (lib, lib_package) in ruby_libs_for(tool) {
        require_ruby_lib(lib, lib_package);
    }
    path
}

/// Fails the test, naming the Debian `package`, unless Ruby can `require` `lib`.
pub fn require_ruby_lib(lib: &str, package: &str) {
    static FOUND: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    if found
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(lib)
    {
        return;
    }
    let ruby = tool_path("ruby", "ruby");
    let out = Command::new(ruby)
        .args(["-e", &format!("require '{lib}'")])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ruby: {e}"));
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        panic!(
            "{}\n(ruby -e \"require '{lib}'\": {})",
            missing(&format!("the Ruby library `{lib}`"), package),
            err.lines().next().unwrap_or_default()
        );
    }
    found
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(lib.to_string());
}

/// The Python that has the Datadog libraries: `$SLOGATE_PYTHON`, else the virtualenv
/// scripts/setup.sh makes (`target/slo-venv`), else `python3`. `None` (the caller skips,
/// saying why) only when no Python exists at all.
pub fn datadog_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLOGATE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = workspace_root().join("target/slo-venv/bin/python");
    if venv.is_file() {
        return Some(venv);
    }
    on_path("python3")
}

/// Runs crates/slogate-slo/tests/datadog/validate.py with `args`; fails the test with its
/// output when the Datadog libraries are missing.
pub fn run_datadog_validation<A: AsRef<OsStr>>(python: &Path, args: &[A]) -> Output {
    let script = workspace_root().join("crates/slogate-slo/tests/datadog/validate.py");
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
    assert!(
        !text.contains("ModuleNotFoundError"),
        "{} lacks the Datadog libraries; run scripts/setup.sh (it installs \
         crates/slogate-slo/tests/datadog/requirements.txt into target/slo-venv):\n{text}",
        python.display()
    );
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_its_package_and_make_test() {
        let err = std::panic::catch_unwind(|| require_tool("slogate-no-such-tool", "no-such-deb"))
            .expect_err("not on PATH");
        let text = err.downcast_ref::<String>().expect("a message");
        assert!(
            text.contains("needs `slogate-no-such-tool` (Debian: no-such-deb)")
                && text.contains("`make test`"),
            "{text}"
        );
    }
}
