//! The clap surface the `slogate` binary mounts: `slogate slo ...`.

mod support;

use clap::Parser;
use slogate_slo::{run, SloArgs, SpecError};

/// Stands in for the `slogate` binary: `slogate slo <command>`.
#[derive(Parser)]
struct Slogate {
    #[command(subcommand)]
    command: Top,
}

#[derive(clap::Subcommand)]
enum Top {
    Slo(SloArgs),
}

fn run_args(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["slogate", "slo"];
    argv.extend_from_slice(args);
    let Top::Slo(slo) = Slogate::try_parse_from(argv)?.command;
    run(&slo)
}

fn example() -> String {
    support::crate_dir()
        .join("../../proxy-config/slo.yaml")
        .display()
        .to_string()
}

#[test]
fn spec_errors_can_be_told_apart_for_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("slo.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(example())
            .expect("read")
            .replace("threshold: 300ms", "threshold: 350ms"),
    )
    .expect("write");
    let err = run_args(&["check", "--spec", bad.to_str().expect("utf8")]).expect_err("invalid");
    let spec_error = err
        .downcast_ref::<SpecError>()
        .expect("a SpecError inside anyhow");
    assert_eq!(spec_error.issues.len(), 1);
    assert!(
        err.to_string().contains(
            r#"slos[0] "checkout": latency.threshold: 0.35s is not a histogram bucket boundary"#
        ),
        "{err}"
    );
    // With the proxy's buckets passed in, the same spec is valid.
    run_args(&[
        "check",
        "--spec",
        bad.to_str().expect("utf8"),
        "--buckets",
        "0.1,0.25,0.35,1,10",
    ])
    .expect("0.35 is a bucket now");

    let missing = run_args(&["rules", "--spec", "no/such/slo.yaml"]).expect_err("missing");
    assert!(missing.downcast_ref::<SpecError>().is_some());

    // Other failures are not SpecErrors.
    let unknown_service = run_args(&["dashboard", "--spec", &example(), "--service", "nope"])
        .expect_err("no such service");
    assert!(unknown_service.downcast_ref::<SpecError>().is_none());
    assert!(
        unknown_service
            .to_string()
            .contains("no SLO for service \"nope\""),
        "{unknown_service}"
    );
}

#[test]
fn check_notes_test_periods() {
    let spec = support::load("tests/fixtures/e2e-slo.yaml", "tests/fixtures/e2e-slo.yaml");
    let summary = slogate_slo::check_summary(&spec);
    assert!(
        summary.starts_with(
            "tests/fixtures/e2e-slo.yaml: OK: 4 SLO objective(s) for service(s) e2e\n"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("slos[0] \"checkout\": period 1h is a custom period, meant for tests"),
        "{summary}"
    );
}

/// Needs Prometheus or promtool, which this workspace does not build: `make unit` leaves out every
/// test under a `needs` module.
mod needs {
    mod prometheus {
        use super::super::*;

        #[test]
        fn check_rules_and_dashboard_write_files() {
            let dir = tempfile::tempdir().expect("temp dir");
            let spec = example();
            run_args(&["check", "--spec", &spec]).expect("check");

            let rules = dir.path().join("slo.rules.yaml");
            run_args(&[
                "rules",
                "--spec",
                &spec,
                "--output",
                rules.to_str().expect("utf8"),
            ])
            .expect("rules");
            let text = std::fs::read_to_string(&rules).expect("rules written");
            assert!(text.contains("record: slo:sli_error:ratio_rate5m"));
            support::run_promtool(dir.path(), &["check", "rules", "slo.rules.yaml"]);

            let dashboard = dir.path().join("dashboard.json");
            run_args(&[
                "dashboard",
                "--spec",
                &spec,
                "-o",
                dashboard.to_str().expect("utf8"),
            ])
            .expect("dashboard");
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&dashboard).expect("written"))
                    .expect("json");
            assert_eq!(json["uid"], "slogate-slo-rails");
        }
    }
}
