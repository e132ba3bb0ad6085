//! The job metric families, registered into a given [`Registry`].

use slogate_core::Outcome;
use slogate_metrics::prometheus::{
    self, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts,
};
use slogate_metrics::Registry;

/// The default job latency buckets (seconds): the HTTP defaults
/// ([`slogate_metrics::DEFAULT_BUCKETS`]) then longer ones for jobs, up to an
/// hour. A job SLO's latency threshold must be one of them.
pub const DEFAULT_JOB_BUCKETS: &[f64] = &slogate_core::DEFAULT_JOB_BUCKETS;

/// What one log line was, for `slogate_jobs_log_lines_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A job's `start`.
    Start,
    /// A job's `done`.
    Done,
    /// A job's `fail`.
    Fail,
    /// A JSON object that is not a job line.
    Unrelated,
    /// `start`/`done`/`fail` without a job class.
    InvalidJob,
    /// Not a JSON object.
    Malformed,
    /// Longer than the line bound; skipped unread.
    TooLong,
}

impl LineKind {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            LineKind::Start => "start",
            LineKind::Done => "done",
            LineKind::Fail => "fail",
            LineKind::Unrelated => "unrelated",
            LineKind::InvalidJob => "invalid_job",
            LineKind::Malformed => "malformed",
            LineKind::TooLong => "too_long",
        }
    }
}

/// Labels of one finished attempt.
#[derive(Clone, Copy, Debug)]
pub struct JobLabels<'a> {
    /// The configured service name.
    pub service: &'a str,
    /// The queue, through its guard, or `(unknown)` without the middleware.
    pub queue: &'a str,
    /// The job class, through its guard.
    pub job_class: &'a str,
    /// The attempt's outcome.
    pub outcome: Outcome,
}

/// The job SLI families and the mode's own health metrics.
#[derive(Clone, Debug)]
pub struct JobMetrics {
    jobs: IntCounterVec,
    duration: HistogramVec,
    execution: HistogramVec,
    queue_size: IntGaugeVec,
    queue_latency: GaugeVec,
    log_lines: IntCounterVec,
    rotations: IntCounterVec,
    overflow: IntCounterVec,
    redis_up: IntGaugeVec,
    redis_errors: IntCounterVec,
    buckets: Vec<f64>,
}

const JOB_LABELS: &[&str] = &["service", "queue", "job_class", "outcome"];
const QUEUE_LABELS: &[&str] = &["service", "queue"];

impl JobMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry, buckets: &[f64]) -> prometheus::Result<JobMetrics> {
        let metrics = JobMetrics {
            jobs: IntCounterVec::new(
                Opts::new(
                    "slogate_jobs_total",
                    "Finished job attempts (one per Sidekiq done/fail log line) by outcome.",
                ),
                JOB_LABELS,
            )?,
            duration: histogram(
                "slogate_job_duration_seconds",
                "Time from the job's enqueue (enqueued_at) to its completion; only for jobs logged with slogate's Sidekiq middleware.",
                buckets,
            )?,
            execution: histogram(
                "slogate_job_execution_seconds",
                "Time the job ran (Sidekiq's elapsed), without the time it waited in its queue.",
                buckets,
            )?,
            queue_size: IntGaugeVec::new(
                Opts::new("slogate_job_queue_size", "Jobs waiting in the queue (LLEN queue:<name>)."),
                QUEUE_LABELS,
            )?,
            queue_latency: GaugeVec::new(
                Opts::new(
                    "slogate_job_queue_latency_seconds",
                    "Age of the oldest job waiting in the queue (0 when empty), as Sidekiq's Queue#latency.",
                ),
                QUEUE_LABELS,
            )?,
            log_lines: IntCounterVec::new(
                Opts::new(
                    "slogate_jobs_log_lines_total",
                    "Sidekiq log lines read, by kind (start, done, fail, unrelated, invalid_job, malformed, too_long).",
                ),
                &["service", "kind"],
            )?,
            rotations: IntCounterVec::new(
                Opts::new("slogate_jobs_log_rotations_total", "Log file rotations seen, by kind (rename, truncate)."),
                &["service", "kind"],
            )?,
            overflow: IntCounterVec::new(
                Opts::new(
                    "slogate_jobs_label_overflow_total",
                    "Job observations whose label value was replaced by (other) by the cardinality guard.",
                ),
                &["service", "label"],
            )?,
            redis_up: IntGaugeVec::new(
                Opts::new("slogate_jobs_redis_up", "1 if the last poll of Sidekiq's Redis succeeded, 0 if not."),
                &["service"],
            )?,
            redis_errors: IntCounterVec::new(
                Opts::new("slogate_jobs_redis_errors_total", "Failed polls of Sidekiq's Redis."),
                &["service"],
            )?,
            buckets: buckets.to_vec(),
        };
        metrics.register_all(registry)?;
        Ok(metrics)
    }

    fn register_all(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.jobs.clone()))?;
        registry.register(Box::new(self.duration.clone()))?;
        registry.register(Box::new(self.execution.clone()))?;
        registry.register(Box::new(self.queue_size.clone()))?;
        registry.register(Box::new(self.queue_latency.clone()))?;
        registry.register(Box::new(self.log_lines.clone()))?;
        registry.register(Box::new(self.rotations.clone()))?;
        registry.register(Box::new(self.overflow.clone()))?;
        registry.register(Box::new(self.redis_up.clone()))?;
        registry.register(Box::new(self.redis_errors.clone()))?;
        Ok(())
    }

    /// The histograms' bucket boundaries.
    pub fn buckets(&self) -> &[f64] {
        &self.buckets
    }

    /// Counts one finished attempt with its execution time and, when known,
    /// its enqueue-to-completion time.
    pub fn observe_job(
        &self,
        labels: &JobLabels<'_>,
        execution: Option<f64>,
        duration: Option<f64>,
    ) {
        let values = [
            labels.service,
            labels.queue,
            labels.job_class,
            labels.outcome.as_str(),
        ];
        self.jobs.with_label_values(&values).inc();
        if let Some(seconds) = execution {
            self.execution.with_label_values(&values).observe(seconds);
        }
        if let Some(seconds) = duration {
            self.duration.with_label_values(&values).observe(seconds);
        }
    }

    /// A counter of log lines of `kind`, to keep instead of looking it up per line.
    pub fn log_lines(&self, service: &str, kind: LineKind) -> IntCounter {
        self.log_lines.with_label_values(&[service, kind.as_str()])
    }

    /// Counts a rotation of a followed file.
    pub fn observe_rotation(&self, service: &str, kind: &str) {
        self.rotations.with_label_values(&[service, kind]).inc();
    }

    /// Counts a label value replaced by `(other)`.
    pub fn observe_overflow(&self, service: &str, label: &str) {
        self.overflow.with_label_values(&[service, label]).inc();
    }

    /// The queue gauges of one queue.
    pub fn queue_gauges(&self, service: &str, queue: &str) -> (IntGauge, Gauge) {
        (
            self.queue_size.with_label_values(&[service, queue]),
            self.queue_latency.with_label_values(&[service, queue]),
        )
    }

    /// Drops a queue's gauges (the queue is gone, or Redis cannot be read).
    pub fn remove_queue(&self, service: &str, queue: &str) {
        let _ = self.queue_size.remove_label_values(&[service, queue]);
        let _ = self.queue_latency.remove_label_values(&[service, queue]);
    }

    /// Records whether a Redis poll succeeded.
    pub fn observe_redis_poll(&self, service: &str, ok: bool) {
        self.redis_up
            .with_label_values(&[service])
            .set(i64::from(ok));
        if !ok {
            self.redis_errors.with_label_values(&[service]).inc();
        }
    }
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        JOB_LABELS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buckets_extend_the_http_defaults() {
        let http = slogate_metrics::DEFAULT_BUCKETS;
        assert_eq!(&DEFAULT_JOB_BUCKETS[..http.len()], http);
        assert!(DEFAULT_JOB_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(DEFAULT_JOB_BUCKETS.last(), Some(&3600.0));
    }

    #[test]
    fn registers_with_http_families_in_one_registry() {
        let registry = Registry::new();
        slogate_metrics::SliMetrics::register(&registry, slogate_metrics::DEFAULT_BUCKETS).unwrap();
        let jobs = JobMetrics::register(&registry, DEFAULT_JOB_BUCKETS).unwrap();
        jobs.observe_job(
            &JobLabels {
                service: "rails",
                queue: "default",
                job_class: "HardJob",
                outcome: Outcome::Success,
            },
            Some(0.2),
            None,
        );
        let text = slogate_metrics::encode(&registry);
        assert!(text.contains(
            r#"slogate_jobs_total{job_class="HardJob",outcome="success",queue="default",service="rails"} 1"#
        ));
        assert!(text.contains(
            r#"slogate_job_execution_seconds_bucket{job_class="HardJob",outcome="success",queue="default",service="rails",le="0.2"} 1"#
        ));
        assert!(!text.contains("slogate_job_duration_seconds_bucket{"));
    }
}
