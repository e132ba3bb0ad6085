//! From a log line to observations: parse, classify, bound the labels, count.

use std::sync::Arc;

use slogate_metrics::prometheus::IntCounter;
use slogate_metrics::CardinalityGuard;

use crate::classify::OutcomeRules;
use crate::event::{parse_line, JobEvent, JobMessage, LogLine};
use crate::follow::{LogSink, Rotation};
use crate::metrics::{JobLabels, JobMetrics, LineKind};

/// The `queue` label of jobs logged without slogate's middleware.
pub const UNKNOWN_QUEUE: &str = "(unknown)";

/// Turns Sidekiq log lines into job metrics. Shared by every follower.
#[derive(Debug)]
pub struct JobRecorder {
    service: Arc<str>,
    metrics: JobMetrics,
    rules: OutcomeRules,
    classes: CardinalityGuard,
    queues: Arc<CardinalityGuard>,
    lines: LineCounters,
}

#[derive(Debug)]
struct LineCounters {
    start: IntCounter,
    done: IntCounter,
    fail: IntCounter,
    unrelated: IntCounter,
    invalid_job: IntCounter,
    malformed: IntCounter,
    too_long: IntCounter,
}

impl LineCounters {
    fn new(metrics: &JobMetrics, service: &str) -> LineCounters {
        let c = |kind| metrics.log_lines(service, kind);
        LineCounters {
            start: c(LineKind::Start),
            done: c(LineKind::Done),
            fail: c(LineKind::Fail),
            unrelated: c(LineKind::Unrelated),
            invalid_job: c(LineKind::InvalidJob),
            malformed: c(LineKind::Malformed),
            too_long: c(LineKind::TooLong),
        }
    }

    fn get(&self, kind: LineKind) -> &IntCounter {
        match kind {
            LineKind::Start => &self.start,
            LineKind::Done => &self.done,
            LineKind::Fail => &self.fail,
            LineKind::Unrelated => &self.unrelated,
            LineKind::InvalidJob => &self.invalid_job,
            LineKind::Malformed => &self.malformed,
            LineKind::TooLong => &self.too_long,
        }
    }
}

impl JobRecorder {
    /// A recorder for `service`. `classes` bounds `job_class`; `queues`
    /// bounds `queue` and is shared with the Redis poller.
    pub fn new(
        service: &str,
        metrics: JobMetrics,
        rules: OutcomeRules,
        classes: CardinalityGuard,
        queues: Arc<CardinalityGuard>,
    ) -> JobRecorder {
        let lines = LineCounters::new(&metrics, service);
        JobRecorder {
            service: Arc::from(service),
            metrics,
            rules,
            classes,
            queues,
            lines,
        }
    }

    /// Records one line; returns what it was.
    pub fn record_line(&self, line: &[u8]) -> LineKind {
        let kind = match parse_line(line) {
            LogLine::Job(event) => {
                self.record_job(&event);
                match event.message {
                    JobMessage::Start => LineKind::Start,
                    JobMessage::Done => LineKind::Done,
                    JobMessage::Fail => LineKind::Fail,
                }
            }
            LogLine::Unrelated => LineKind::Unrelated,
            LogLine::InvalidJob => LineKind::InvalidJob,
            LogLine::Malformed => LineKind::Malformed,
        };
        self.lines.get(kind).inc();
        kind
    }

    fn record_job(&self, event: &JobEvent<'_>) {
        let Some(outcome) = self.rules.outcome(event) else {
            return;
        };
        let (class, class_replaced) = self.classes.admit_str(&event.class);
        if class_replaced {
            self.metrics.observe_overflow(&self.service, "job_class");
        }
        let (queue, queue_replaced) = self
            .queues
            .admit_str(event.queue.as_deref().unwrap_or(UNKNOWN_QUEUE));
        if queue_replaced {
            self.metrics.observe_overflow(&self.service, "queue");
        }
        let labels = JobLabels {
            service: &self.service,
            queue: &queue,
            job_class: &class,
            outcome,
        };
        self.metrics
            .observe_job(&labels, event.elapsed, event.enqueue_to_completion());
    }
}

impl LogSink for JobRecorder {
    fn line(&self, line: &[u8]) {
        self.record_line(line);
    }

    fn too_long(&self) {
        self.lines.get(LineKind::TooLong).inc();
    }

    fn rotated(&self, rotation: Rotation) {
        self.metrics
            .observe_rotation(&self.service, rotation.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DEFAULT_JOB_BUCKETS;
    use slogate_metrics::Registry;

    fn recorder(registry: &Registry, max_classes: usize) -> JobRecorder {
        let metrics = JobMetrics::register(registry, DEFAULT_JOB_BUCKETS).unwrap();
        JobRecorder::new(
            "rails",
            metrics,
            OutcomeRules::new(vec![], vec!["ActiveRecord::RecordNotFound".into()], vec![]),
            CardinalityGuard::new(max_classes, None),
            Arc::new(CardinalityGuard::new(10, None)),
        )
    }

    #[test]
    fn counts_jobs_with_both_histograms() {
        let registry = Registry::new();
        let r = recorder(&registry, 100);
        let line = br#"{"ts":"2026-11-30T10:53:38.000Z","msg":"done","ctx":{"class":"HardJob","queue":"default","enqueued_at":1796036015.0,"elapsed":0.2}}"#;
        assert_eq!(r.record_line(line), LineKind::Done);
        let text = slogate_metrics::encode(&registry);
        let labels = r#"job_class="HardJob",outcome="success",queue="default",service="rails""#;
        assert!(
            text.contains(&format!("slogate_jobs_total{{{labels}}} 1")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "slogate_job_execution_seconds_sum{{{labels}}} 0.2"
        )));
        assert!(text.contains(&format!("slogate_job_duration_seconds_sum{{{labels}}} 3")));
        assert!(text.contains(&format!(
            "slogate_job_duration_seconds_bucket{{{labels},le=\"2.5\"}} 0"
        )));
        assert!(text.contains(&format!(
            "slogate_job_duration_seconds_bucket{{{labels},le=\"5\"}} 1"
        )));
    }

    #[test]
    fn counts_every_kind_of_line() {
        let registry = Registry::new();
        let r = recorder(&registry, 100);
        let lines: [&[u8]; 6] = [
            br#"{"msg":"start","ctx":{"class":"A"}}"#,
            br#"{"msg":"fail","ctx":{"class":"A","error_class":"ActiveRecord::RecordNotFound"}}"#,
            br#"{"msg":"Booting Sidekiq"}"#,
            br#"{"msg":"done"}"#,
            b"plain text",
            b"",
        ];
        for line in lines {
            r.record_line(line);
        }
        r.too_long();
        let text = slogate_metrics::encode(&registry);
        for (kind, n) in [
            ("start", 1),
            ("fail", 1),
            ("unrelated", 1),
            ("invalid_job", 1),
            ("malformed", 2),
            ("too_long", 1),
            ("done", 0),
        ] {
            let want =
                format!(r#"slogate_jobs_log_lines_total{{kind="{kind}",service="rails"}} {n}"#);
            assert!(text.contains(&want), "{want}\n{text}");
        }
        assert!(text.contains(
            r#"slogate_jobs_total{job_class="A",outcome="client_error",queue="(unknown)",service="rails"} 1"#
        ));
    }

    #[test]
    fn job_classes_past_the_cap_become_other() {
        let registry = Registry::new();
        let r = recorder(&registry, 2);
        for class in ["A", "B", "C", "D"] {
            let line = format!(r#"{{"msg":"done","ctx":{{"class":"{class}","queue":"q"}}}}"#);
            r.record_line(line.as_bytes());
        }
        let text = slogate_metrics::encode(&registry);
        assert!(text.contains(
            r#"slogate_jobs_total{job_class="(other)",outcome="success",queue="q",service="rails"} 2"#
        ));
        assert!(text
            .contains(r#"slogate_jobs_label_overflow_total{label="job_class",service="rails"} 2"#));
    }
}
