//! Scenarios: YAML files that say how the mock upstream answers each operation and what traffic
//! the load tester sends. Parsed with unknown keys refused, then validated; every mistake names
//! the file, the key and the problem.

mod model;
mod raw;
mod validate;

use std::path::Path;
use std::time::Duration;

use slogate_diagnostics::{Checker, FileError};

pub use model::*;
use raw::RawScenario;
use validate::{check_load, check_timeouts, validate};

/// A scenario that cannot be used: the file, the key and what is wrong (the [`FileError`]
/// every file slogate reads reports). Maps to exit code 2.
pub type ScenarioError = FileError;

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let (file, text) = slogate_diagnostics::read_file(path)?;
        Scenario::parse(&file, &text)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = slogate_diagnostics::parse_yaml(file, text)?;
        validate(file, raw)
    }

    /// Checks the scenario against a proxy whose upstream read timeout is `read_timeout`
    /// (from `--proxy-config`), replacing the one the file assumes.
    pub fn with_read_timeout(mut self, read_timeout: Duration) -> Result<Scenario, ScenarioError> {
        self.proxy_read_timeout = read_timeout;
        let mut c = Checker::default();
        check_load(&mut c, &self.load);
        check_timeouts(&mut c, &self);
        c.finish(&self.file)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use slogate_core::response::ClassificationPolicy;
    use slogate_core::Outcome;

    use super::*;

    fn err(text: &str) -> String {
        Scenario::parse("s.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = err("operations:\n  - name: A\n    answers:\n      - success: { weigth: 2 }\n");
        assert!(
            e.starts_with("s.yaml: operations[0].answers[0].success.weigth: unknown field `weigth`, expected `weight`"),
            "{e}"
        );
        let e = err("operations:\n  - name: A\n    answers:\n      - sucess: {}\n");
        assert!(
            e.starts_with("s.yaml: operations[0].answers[0].sucess: unknown field `sucess`, expected one of `success`"),
            "{e}"
        );
        let e = err("load:\n  rate: 10\n  pace: 3\n");
        assert!(
            e.starts_with("s.yaml: load.pace: unknown field `pace`"),
            "{e}"
        );
        let e = err("operations:\n  - name: A\n    latency: { fixed: soon }\n");
        assert!(e.contains("operations[0].latency.fixed"), "{e}");
        assert!(e.contains("\"soon\" is not a duration"), "{e}");
    }

    #[test]
    fn validation_names_key_and_problem() {
        let e = err(
            "proxy:\n  read_timeout: 1s\nload:\n  timeout: 1500ms\noperations:\n  - name: 2bad\n  - name: A\n    answers:\n      - hang: { duration: 500ms }\n      - status: { status: 200 }\nrest:\n  - path: /x\n    answers:\n      - field_error: {}\n",
        );
        assert!(
            e.contains("s.yaml: operations[0].name: \"2bad\" is not a GraphQL name"),
            "{e}"
        );
        assert!(
            e.contains("operations[1].answers[1].status.status: 200 must be a 4xx or 5xx status"),
            "{e}"
        );
        assert!(
            e.contains("rest[0].answers[0]: field_error only makes sense for a GraphQL operation"),
            "{e}"
        );
        assert!(
            e.contains(
                "operations[1].answers[0].hang.duration: 500ms must exceed proxy.read_timeout (1s)"
            ),
            "{e}"
        );
        let e = err("proxy:\n  read_timeout: 1s\nload:\n  timeout: 1500ms\noperations:\n  - name: A\n    answers:\n      - hang: {}\n");
        assert!(
            e.contains("load.timeout: 1.5s must exceed proxy.read_timeout (1s)"),
            "{e}"
        );
    }

    #[test]
    fn outcomes_follow_the_policy() {
        let p = ClassificationPolicy::default();
        let field = |c: Option<&str>| AnswerKind::FieldError {
            code: c.map(String::from),
        };
        assert_eq!(
            field(Some("NOT_FOUND")).outcome(&p, true),
            Outcome::ClientError
        );
        assert_eq!(
            field(Some("INTERNAL_SERVER_ERROR")).outcome(&p, true),
            Outcome::SystemError
        );
        assert_eq!(field(None).outcome(&p, true), Outcome::SystemError);
        let request = AnswerKind::RequestError { code: None };
        assert_eq!(request.outcome(&p, true), Outcome::ClientError);
        assert_eq!(AnswerKind::NotJson.outcome(&p, true), Outcome::SystemError);
        assert_eq!(AnswerKind::Reset.outcome(&p, false), Outcome::SystemError);
        let status = AnswerKind::Status {
            status: 429,
            body: StatusBody::Json,
        };
        assert_eq!(status.outcome(&p, false), Outcome::ClientError);
    }

    #[test]
    fn routes_and_random_names_match() {
        let s = Scenario::parse(
            "s.yaml",
            "operations:\n  - name: Rnd\n    random_names: 10\nrest:\n  - path: /api/v1/courses/{id}\n",
        )
        .unwrap();
        assert_eq!(s.rest[0].name, "GET /api/v1/courses/:id");
        assert!(s.route("GET", "/api/v1/courses/12").is_some());
        assert!(s.route("GET", "/api/v1/courses").is_none());
        assert!(s.route("POST", "/api/v1/courses/12").is_none());
        assert!(s.operation("Rnd_12").is_some());
        assert!(s.operation("Rnd_").is_none());
        assert!(s.operation("Rnd").is_none());
    }

    #[test]
    fn shipped_scenarios_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proxy-config/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 4);
    }
}
