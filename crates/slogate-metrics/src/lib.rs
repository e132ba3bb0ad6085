//! slogate's metrics: the families of the metrics contract, typed labels, and the guard that
//! keeps client input from growing the number of series without bound.
//!
//! Metrics are built against a [`Registry`]: production passes the process-wide one (which
//! pingora's Prometheus service gathers), tests a fresh one and assert on its exposition.
//!
//! ```
//! use slogate_metrics::{Registry, SliMetrics, RequestLabels, DEFAULT_BUCKETS};
//! use slogate_core::{Kind, OperationType, Outcome};
//!
//! let registry = Registry::new();
//! let metrics = SliMetrics::register(&registry, DEFAULT_BUCKETS).unwrap();
//! metrics.observe_request(
//!     &RequestLabels {
//!         service: "rails",
//!         kind: Kind::Graphql,
//!         operation: "GetCourse",
//!         operation_type: OperationType::Query,
//!         outcome: Outcome::Success,
//!     },
//!     0.042,
//! );
//! let text = slogate_metrics::encode(&registry);
//! assert!(text.contains(r#"slogate_requests_total{kind="graphql",operation="GetCourse",operation_type="query",outcome="success",service="rails"} 1"#));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod guard;

pub use guard::{Admitted, CardinalityGuard, GuardSet};
pub use pingora_prometheus::prometheus;
pub use prometheus::Registry;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, TextEncoder,
};
use slogate_core::{Kind, OperationType, Outcome};

/// The default latency buckets (seconds). SLO latency thresholds must be one of the buckets.
pub const DEFAULT_BUCKETS: &[f64] = &slogate_core::DEFAULT_BUCKETS;

/// Labels of one observation of `slogate_requests_total` and its histogram.
#[derive(Clone, Copy, Debug)]
pub struct RequestLabels<'a> {
    /// The upstream's configured name.
    pub service: &'a str,
    /// `graphql` or `http`.
    pub kind: Kind,
    /// The operation, already through the [`CardinalityGuard`].
    pub operation: &'a str,
    /// The operation's type.
    pub operation_type: OperationType,
    /// The outcome.
    pub outcome: Outcome,
}

impl<'a> RequestLabels<'a> {
    /// The request metrics' label values, in their order, with `outcome` for the outcome.
    fn values(&self, outcome: Outcome) -> [&'a str; 5] {
        [
            self.service,
            self.kind.as_str(),
            self.operation,
            self.operation_type.as_str(),
            outcome.as_str(),
        ]
    }
}

pub use slogate_core::exchange::InspectionLimit;

/// The SLI families (the metrics contract) and slogate's own health counters.
#[derive(Clone)]
pub struct SliMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    graphql_errors: IntCounterVec,
    limits: IntCounterVec,
    overflow: IntCounterVec,
    dropped_elements: IntCounterVec,
    access_log_dropped: IntCounter,
    upstream_up: IntGaugeVec,
    upstream_open: IntGaugeVec,
    buckets: Vec<f64>,
}

const REQUEST_LABELS: &[&str] = &["service", "kind", "operation", "operation_type", "outcome"];

impl SliMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry, buckets: &[f64]) -> prometheus::Result<SliMetrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "slogate_requests_total",
                "Requests (one per GraphQL operation; a batch of 3 counts 3) by outcome.",
            ),
            REQUEST_LABELS,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "slogate_request_duration_seconds",
                "Time from the request head received to the last response byte sent.",
            )
            .buckets(buckets.to_vec()),
            REQUEST_LABELS,
        )?;
        let graphql_errors = IntCounterVec::new(
            Opts::new(
                "slogate_graphql_errors_total",
                "GraphQL error entries by extensions.code ((none) when absent).",
            ),
            &["service", "operation", "code"],
        )?;
        let limits = IntCounterVec::new(
            Opts::new(
                "slogate_inspection_limited_total",
                "Requests that slogate could not read in full because of a configured bound.",
            ),
            &["service", "limit"],
        )?;
        let overflow = IntCounterVec::new(
            Opts::new(
                "slogate_label_overflow_total",
                "Observations whose label value was replaced by (other) by the cardinality guard.",
            ),
            &["service", "label"],
        )?;
        let dropped_elements = IntCounterVec::new(
            Opts::new(
                "slogate_batch_elements_dropped_total",
                "Batch response elements past the classification bound, not classified (the \
                 operations they answer are counted with the fallback outcome).",
            ),
            &["service"],
        )?;
        let access_log_dropped = IntCounter::new(
            "slogate_access_log_dropped_total",
            "Access log lines dropped because the writer could not keep up.",
        )?;
        let upstream_up = IntGaugeVec::new(
            Opts::new(
                "slogate_upstream_backend_up",
                "1 if the backend passes its health check, 0 if not.",
            ),
            &["service", "backend"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(graphql_errors.clone()))?;
        registry.register(Box::new(limits.clone()))?;
        registry.register(Box::new(overflow.clone()))?;
        registry.register(Box::new(dropped_elements.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        let upstream_open = IntGaugeVec::new(
            Opts::new(
                "slogate_upstream_connections_open",
                "Connections open to the backend: in use, idle in the pool, or upgraded (WebSocket) until closed.",
            ),
            &["service", "backend"],
        )?;
        registry.register(Box::new(upstream_up.clone()))?;
        registry.register(Box::new(upstream_open.clone()))?;
        Ok(SliMetrics {
            requests,
            duration,
            graphql_errors,
            limits,
            overflow,
            dropped_elements,
            access_log_dropped,
            upstream_up,
            upstream_open,
            buckets: buckets.to_vec(),
        })
    }

    /// The histogram's bucket boundaries.
    pub fn buckets(&self) -> &[f64] {
        &self.buckets
    }

    /// Counts one operation and records its duration.
    pub fn observe_request(&self, labels: &RequestLabels<'_>, seconds: f64) {
        self.request_handles(labels).observe(seconds);
    }

    /// The counter and histogram of one label set, resolved once: observing through them
    /// hashes no label (see [`OperationHandles`]).
    pub fn request_handles(&self, labels: &RequestLabels<'_>) -> RequestHandles {
        let values = labels.values(labels.outcome);
        RequestHandles {
            requests: self.requests.with_label_values(&values),
            duration: self.duration.with_label_values(&values),
        }
    }

    /// Creates the request counter of `labels`' operation and type for every outcome, at 0
    /// where new. A counter series that first appears with its first error loses that error
    /// to `increase()` and `rate()` (Prometheus has no earlier sample to count from), so the
    /// first incident of an operation that never failed would page a scrape late, and
    /// alerts over short windows could miss it; Prometheus' advice is to create the series
    /// a metric will have before they are needed. Called once per label set.
    fn create_outcome_series(&self, labels: &RequestLabels<'_>) {
        for outcome in Outcome::ALL {
            self.requests.with_label_values(&labels.values(outcome));
        }
    }

    /// Counts `n` GraphQL error entries with `code` (already through a guard).
    pub fn observe_graphql_errors(&self, service: &str, operation: &str, code: &str, n: u64) {
        self.graphql_errors
            .with_label_values(&[service, operation, code])
            .inc_by(n);
    }

    /// Counts a request that hit an inspection bound.
    pub fn observe_limit(&self, service: &str, limit: InspectionLimit) {
        self.limits
            .with_label_values(&[service, limit.as_str()])
            .inc();
    }

    /// Counts a label value replaced by `(other)`.
    pub fn observe_overflow(&self, service: &str, label: &str) {
        self.overflow.with_label_values(&[service, label]).inc();
    }

    /// Counts the batch response elements an exchange could not classify
    /// (`Account::dropped_elements`); nothing when there are none.
    pub fn observe_dropped_elements(&self, service: &str, count: u64) {
        if count > 0 {
            self.dropped_elements
                .with_label_values(&[service])
                .inc_by(count);
        }
    }

    /// Counts a dropped access log line.
    pub fn access_log_dropped(&self) {
        self.access_log_dropped.inc();
    }

    /// The gauge of connections open to a backend (series created at 0).
    pub fn upstream_connections(&self, service: &str, backend: &str) -> prometheus::IntGauge {
        self.upstream_open.with_label_values(&[service, backend])
    }

    /// Sets a backend's health.
    pub fn set_backend_up(&self, service: &str, backend: &str, up: bool) {
        self.upstream_up
            .with_label_values(&[service, backend])
            .set(i64::from(up));
    }
}

/// The series of one label set of `slogate_requests_total` and its histogram.
#[derive(Clone, Debug)]
pub struct RequestHandles {
    requests: IntCounter,
    duration: prometheus::Histogram,
}

impl RequestHandles {
    /// Counts one operation and records its duration.
    pub fn observe(&self, seconds: f64) {
        self.requests.inc();
        self.duration.observe(seconds);
    }
}

/// Every outcome and type of one operation label: its series, resolved on first use.
#[derive(Debug, Default)]
pub struct OperationHandles {
    slots: [[std::sync::OnceLock<RequestHandles>; Outcome::ALL.len()]; OPERATION_TYPES],
}

const OPERATION_TYPES: usize = 5;

impl OperationHandles {
    /// The series for `labels` (whose operation is this one's), resolved once.
    pub fn get(&self, metrics: &SliMetrics, labels: &RequestLabels<'_>) -> &RequestHandles {
        let t = match labels.operation_type {
            OperationType::Query => 0,
            OperationType::Mutation => 1,
            OperationType::Subscription => 2,
            OperationType::Unknown => 3,
            OperationType::Http => 4,
        };
        let o = match labels.outcome {
            Outcome::Success => 0,
            Outcome::ClientError => 1,
            Outcome::SystemError => 2,
            Outcome::Canceled => 3,
        };
        self.slots[t][o].get_or_init(|| {
            metrics.create_outcome_series(labels);
            metrics.request_handles(labels)
        })
    }
}

/// The Prometheus text exposition of everything in `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = Vec::new();
    let families = registry.gather();
    // The text encoder only fails on I/O errors, which a Vec cannot produce.
    let _ = TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_batch_elements_are_counted() {
        let registry = Registry::new();
        let metrics = SliMetrics::register(&registry, DEFAULT_BUCKETS).unwrap();
        metrics.observe_dropped_elements("rails", 0);
        assert!(!encode(&registry).contains("slogate_batch_elements_dropped_total{"));
        metrics.observe_dropped_elements("rails", 3);
        metrics.observe_dropped_elements("rails", 2);
        let text = encode(&registry);
        assert!(
            text.contains(r#"slogate_batch_elements_dropped_total{service="rails"} 5"#),
            "{text}"
        );
    }

    #[test]
    fn an_operations_first_request_creates_its_counter_for_every_outcome() {
        let registry = Registry::new();
        let metrics = SliMetrics::register(&registry, DEFAULT_BUCKETS).unwrap();
        let handles = OperationHandles::default();
        let labels = RequestLabels {
            service: "rails",
            kind: Kind::Graphql,
            operation: "GetCourse",
            operation_type: OperationType::Query,
            outcome: Outcome::Success,
        };
        handles.get(&metrics, &labels).observe(0.01);
        let text = encode(&registry);
        let series = |outcome: &str| {
            format!(
                "slogate_requests_total{{kind=\"graphql\",operation=\"GetCourse\",operation_type=\"query\",outcome=\"{outcome}\",service=\"rails\"}}"
            )
        };
        assert!(
            text.contains(&format!("{} 1\n", series("success"))),
            "{text}"
        );
        for outcome in ["client_error", "system_error", "canceled"] {
            assert!(text.contains(&format!("{} 0\n", series(outcome))), "{text}");
        }
        // Only the counter: the latency histogram has series for outcomes seen.
        assert!(
            !text.contains(r#"outcome="system_error",service="rails",le="#),
            "{text}"
        );
        assert_eq!(
            text.matches("slogate_request_duration_seconds_count{")
                .count(),
            1,
            "{text}"
        );
    }
}
