//! The pure part, continued: a job event's [`Outcome`].

use std::collections::HashSet;

use slogate_core::Outcome;

use crate::event::{JobEvent, JobMessage};

/// The error class Sidekiq raises inside a job it interrupts at shutdown; the
/// job goes back to its queue, so the attempt is `canceled`, not an error.
pub const SIDEKIQ_SHUTDOWN: &str = "Sidekiq::Shutdown";

/// Turns `done`/`fail` into an [`Outcome`].
///
/// - `done` → `success`;
/// - `fail` whose error class is in the canceled list → `canceled`
///   (default: [`SIDEKIQ_SHUTDOWN`]);
/// - `fail` of a job class, or with an error class, listed as client errors
///   → `client_error`;
/// - any other `fail` → `system_error`.
///
/// Classes are compared exactly (`ActiveRecord::RecordNotFound`, not a
/// parent class: the log carries the class name only).
#[derive(Clone, Debug, Default)]
pub struct OutcomeRules {
    client_error_job_classes: HashSet<String>,
    client_error_error_classes: HashSet<String>,
    canceled_error_classes: HashSet<String>,
}

impl OutcomeRules {
    /// Rules from the configured lists.
    pub fn new(
        client_error_job_classes: impl IntoIterator<Item = String>,
        client_error_error_classes: impl IntoIterator<Item = String>,
        canceled_error_classes: impl IntoIterator<Item = String>,
    ) -> OutcomeRules {
        OutcomeRules {
            client_error_job_classes: client_error_job_classes.into_iter().collect(),
            client_error_error_classes: client_error_error_classes.into_iter().collect(),
            canceled_error_classes: canceled_error_classes.into_iter().collect(),
        }
    }

    /// The outcome of a finished attempt; `None` for `start`.
    pub fn outcome(&self, event: &JobEvent<'_>) -> Option<Outcome> {
        match event.message {
            JobMessage::Start => None,
            JobMessage::Done => Some(Outcome::Success),
            JobMessage::Fail => Some(self.failure(event)),
        }
    }

    fn failure(&self, event: &JobEvent<'_>) -> Outcome {
        let error_class = event.error_class.as_deref();
        if error_class.is_some_and(|c| self.canceled_error_classes.contains(c)) {
            return Outcome::Canceled;
        }
        let listed_class = self.client_error_job_classes.contains(event.class.as_ref());
        let listed_error = error_class.is_some_and(|c| self.client_error_error_classes.contains(c));
        if listed_class || listed_error {
            Outcome::ClientError
        } else {
            Outcome::SystemError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse_line, LogLine};

    fn rules() -> OutcomeRules {
        OutcomeRules::new(
            ["LegacyCleanupJob".to_string()],
            ["ActiveRecord::RecordNotFound".to_string()],
            [SIDEKIQ_SHUTDOWN.to_string()],
        )
    }

    fn outcome_of(rules: &OutcomeRules, line: &str) -> Option<Outcome> {
        match parse_line(line.as_bytes()) {
            LogLine::Job(event) => rules.outcome(&event),
            other => panic!("{other:?}"),
        }
    }

    fn line(msg: &str, class: &str, error_class: Option<&str>) -> String {
        let error = error_class
            .map(|e| format!(r#","error_class":"{e}""#))
            .unwrap_or_default();
        format!(r#"{{"msg":"{msg}","ctx":{{"class":"{class}","elapsed":0.1{error}}}}}"#)
    }

    #[test]
    fn start_has_no_outcome() {
        assert_eq!(outcome_of(&rules(), &line("start", "HardJob", None)), None);
    }

    #[test]
    fn done_is_success_even_for_listed_classes() {
        let r = rules();
        assert_eq!(
            outcome_of(&r, &line("done", "HardJob", None)),
            Some(Outcome::Success)
        );
        assert_eq!(
            outcome_of(&r, &line("done", "LegacyCleanupJob", None)),
            Some(Outcome::Success)
        );
    }

    #[test]
    fn fail_is_a_system_error_by_default() {
        let r = rules();
        assert_eq!(
            outcome_of(&r, &line("fail", "BoomJob", Some("RuntimeError"))),
            Some(Outcome::SystemError)
        );
        assert_eq!(
            outcome_of(&r, &line("fail", "BoomJob", None)),
            Some(Outcome::SystemError)
        );
        assert_eq!(
            outcome_of(
                &OutcomeRules::default(),
                &line("fail", "LegacyCleanupJob", None)
            ),
            Some(Outcome::SystemError)
        );
    }

    #[test]
    fn listed_job_classes_fail_as_client_errors() {
        assert_eq!(
            outcome_of(
                &rules(),
                &line("fail", "LegacyCleanupJob", Some("ArgumentError"))
            ),
            Some(Outcome::ClientError)
        );
        assert_eq!(
            outcome_of(&rules(), &line("fail", "LegacyCleanupJob", None)),
            Some(Outcome::ClientError)
        );
    }

    #[test]
    fn listed_error_classes_are_client_errors_for_any_job() {
        assert_eq!(
            outcome_of(
                &rules(),
                &line(
                    "fail",
                    "MissingRecordJob",
                    Some("ActiveRecord::RecordNotFound")
                )
            ),
            Some(Outcome::ClientError)
        );
    }

    #[test]
    fn classes_match_exactly() {
        let r = rules();
        for (class, error) in [
            ("legacycleanupjob", "RuntimeError"),
            ("LegacyCleanupJob2", "RuntimeError"),
            ("A", "RecordNotFound"),
            ("A", "ActiveRecord::RecordNotFoundError"),
            ("A", "activerecord::recordnotfound"),
        ] {
            assert_eq!(
                outcome_of(&r, &line("fail", class, Some(error))),
                Some(Outcome::SystemError),
                "{class} {error}"
            );
        }
    }

    #[test]
    fn shutdown_interruptions_are_canceled_even_for_listed_classes() {
        let r = rules();
        assert_eq!(
            outcome_of(&r, &line("fail", "HardJob", Some(SIDEKIQ_SHUTDOWN))),
            Some(Outcome::Canceled)
        );
        assert_eq!(
            outcome_of(
                &r,
                &line("fail", "LegacyCleanupJob", Some(SIDEKIQ_SHUTDOWN))
            ),
            Some(Outcome::Canceled)
        );
        let no_cancel = OutcomeRules::new([], [], []);
        assert_eq!(
            outcome_of(&no_cancel, &line("fail", "HardJob", Some(SIDEKIQ_SHUTDOWN))),
            Some(Outcome::SystemError)
        );
    }
}
