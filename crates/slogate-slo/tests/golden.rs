//! Golden files: a spec in, the rule file and dashboards out, byte for byte.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p slogate-slo --test golden`.

mod support;

use std::path::Path;

use slogate_slo::{generate_dashboard, generate_rules, Spec};
use support::{crate_dir, load, GOLDEN_CASES};

/// Every generated file of a spec: (golden file name, content).
fn outputs(stem: &str, spec: &Spec) -> Vec<(String, String)> {
    let mut files = vec![(
        format!("{stem}.rules.yaml"),
        generate_rules(spec).expect("rules"),
    )];
    for service in spec.services() {
        files.push((
            format!("{stem}.{service}.dashboard.json"),
            generate_dashboard(spec, service).expect("dashboard"),
        ));
    }
    files
}

fn compare(path: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e}; run `UPDATE_GOLDEN=1 cargo test -p slogate-slo --test golden` to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .map_or_else(
            || expected.lines().count().min(actual.lines().count()) + 1,
            |i| i + 1,
        );
    Err(format!(
        "{} differs from the generated output, first at line {line}:\n  golden:    {:?}\n  generated: {:?}\n\
         If the change is intended, run `UPDATE_GOLDEN=1 cargo test -p slogate-slo --test golden` and review the diff.",
        path.display(),
        expected.lines().nth(line - 1).unwrap_or("<end of file>"),
        actual.lines().nth(line - 1).unwrap_or("<end of file>"),
    ))
}

#[test]
fn generated_files_match_golden_files() {
    let golden = crate_dir().join("tests/golden");
    let mut failures = Vec::new();
    for (input, source, stem) in GOLDEN_CASES {
        let spec = load(input, source);
        for (name, content) in outputs(stem, &spec) {
            if let Err(e) = compare(&golden.join(&name), &content) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn output_is_deterministic() {
    for (input, source, stem) in GOLDEN_CASES {
        let first = outputs(stem, &load(input, source));
        let second = outputs(stem, &load(input, source));
        assert_eq!(first, second, "{input} renders differently on a second run");
    }
}

#[test]
fn constants_are_clean_decimals() {
    for (input, source, _) in GOLDEN_CASES {
        let rules = generate_rules(&load(input, source)).expect("rules");
        for line in rules.lines().filter(|l| l.contains("expr: vector(")) {
            let number = line
                .trim()
                .trim_start_matches("expr: vector(")
                .trim_end_matches(')');
            assert!(
                number.len() <= 8 && number.parse::<f64>().is_ok(),
                "{input}: unclean constant in {line:?}"
            );
        }
        assert!(
            !rules.contains("99999"),
            "{input}: float noise in the rules"
        );
        assert!(
            !rules.contains("00000000"),
            "{input}: float noise in the rules"
        );
    }
}
