//! The validated SLO model every generator works from.
//!
//! A spec file may declare an availability and a latency objective on one
//! SLO; the model holds them as two [`Slo`]s (`<name>-availability`,
//! `<name>-latency`), each with its own `sloth_id`, exactly as the generated
//! rules do.

use std::collections::BTreeMap;
use std::fmt;

use crate::decimal::Decimal;
use crate::duration::PromDuration;

/// A validated spec: what `load_spec` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The spec file as the user named it (printed in generated headers).
    pub source: String,
    /// One entry per objective, in file order.
    pub slos: Vec<Slo>,
}

impl Spec {
    /// The services the spec covers, sorted and deduplicated.
    pub fn services(&self) -> Vec<&str> {
        let mut services: Vec<&str> = self.slos.iter().map(|s| s.service.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        services
    }
}

/// Which spec format an SLO came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecFormat {
    /// slogate's own `slos:` file.
    Slogate,
    /// An OpenSLO v1 `SLO` document.
    OpenSlo,
}

impl SpecFormat {
    /// The `sloth_spec` label value.
    pub fn label(self) -> &'static str {
        match self {
            SpecFormat::Slogate => "slogate/v1",
            SpecFormat::OpenSlo => "openslo/v1",
        }
    }
}

/// One objective of one SLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slo {
    /// The SLO name in the output (`sloth_slo`), e.g. `checkout-availability`.
    pub name: String,
    /// The name written in the spec, e.g. `checkout`.
    pub spec_name: String,
    /// Where it was declared, e.g. `slos[2]`.
    pub position: String,
    /// The `service` label of the slogate metrics (`sloth_service`).
    pub service: String,
    /// What the SLO promises, in words.
    pub description: String,
    /// The team that owns it.
    pub owner: Option<String>,
    /// The critical user journey it protects.
    pub cuj: Option<String>,
    /// Runbook link for the alerts.
    pub runbook: Option<String>,
    /// The compliance period.
    pub period: Period,
    /// Target percentage, e.g. `99.9`.
    pub target: Decimal,
    /// How good and bad events are counted.
    pub indicator: Indicator,
    /// Extra labels put on every generated series and alert.
    pub labels: BTreeMap<String, String>,
    /// How long the SLO's metrics may be missing before an alert.
    pub absent_for: PromDuration,
    /// The format the SLO was read from.
    pub format: SpecFormat,
}

impl Slo {
    /// The `sloth_id`: `<service>-<name>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.service, self.name)
    }

    /// The objective as a ratio, e.g. `0.999`.
    pub fn objective(&self) -> Decimal {
        self.target.percent_to_ratio()
    }

    /// The error budget as a ratio, e.g. `0.001`.
    pub fn error_budget(&self) -> Decimal {
        Decimal::ONE
            .checked_sub(self.objective())
            .unwrap_or(Decimal::ZERO)
    }

    /// `availability`, `latency` or `ratio` (OpenSLO raw queries).
    pub fn category(&self) -> &'static str {
        match self.indicator {
            Indicator::Availability(_) => "availability",
            Indicator::Latency { .. } => "latency",
            Indicator::Ratio { .. } => "ratio",
        }
    }

    /// The operations the SLO covers (empty for raw OpenSLO queries).
    pub fn operations(&self) -> &[Operation] {
        match &self.indicator {
            Indicator::Availability(selection) | Indicator::Latency { selection, .. } => {
                &selection.operations
            }
            Indicator::Ratio { .. } => &[],
        }
    }
}

/// The compliance period of an SLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// A rolling window: `28d`, `30d`, or a short custom window for tests.
    Rolling(PromDuration),
    /// The calendar month (UTC). Rules and alerts use a rolling 30d window;
    /// `report` and the dashboard also show month-to-date.
    CalendarMonth,
}

impl Period {
    /// The window used by recording rules and burn-rate maths.
    pub fn window(self) -> PromDuration {
        match self {
            Period::Rolling(window) => window,
            Period::CalendarMonth => PromDuration::from_secs(30 * 86_400),
        }
    }

    /// Whether this is a custom period (anything but 28d, 30d, calendar
    /// month), meant for tests.
    pub fn is_custom(self) -> bool {
        match self {
            Period::Rolling(window) => !matches!(window.as_secs(), 2_419_200 | 2_592_000),
            Period::CalendarMonth => false,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Rolling(window) => f.write_str(&window.human()),
            Period::CalendarMonth => f.write_str("calendar month"),
        }
    }
}

/// How an SLO counts good and bad events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indicator {
    /// bad = `system_error`; total = every outcome but `canceled`.
    Availability(Selection),
    /// good = faster than `threshold` among `success` and `client_error`.
    Latency {
        /// The operations.
        selection: Selection,
        /// Threshold in seconds; always a histogram bucket boundary.
        threshold: Decimal,
    },
    /// Raw PromQL from an OpenSLO ratio indicator; `{{.window}}` stands for
    /// the range.
    Ratio {
        /// The good or the bad events query.
        events: RatioEvents,
        /// The total events query.
        total: String,
    },
}

/// The numerator of an OpenSLO ratio indicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RatioEvents {
    /// Query counting good events.
    Good(String),
    /// Query counting bad events.
    Bad(String),
}

/// Which slogate metrics and operations an SLO covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Requests or background jobs.
    pub source: Source,
    /// The operations, in spec order.
    pub operations: Vec<Operation>,
}

/// The metric family an SLO reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `slogate_requests_total` / `slogate_request_duration_seconds`.
    Requests,
    /// `slogate_jobs_total` and a job histogram.
    Jobs(JobHistogram),
}

/// Which job histogram a job latency objective reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobHistogram {
    /// `slogate_job_duration_seconds`: enqueue to completion (what users
    /// wait for).
    Duration,
    /// `slogate_job_execution_seconds`: execution only.
    Execution,
}

impl Source {
    /// The counter with an `outcome` label.
    pub fn counter(self) -> &'static str {
        match self {
            Source::Requests => "slogate_requests_total",
            Source::Jobs(_) => "slogate_jobs_total",
        }
    }

    /// The latency histogram's base name.
    pub fn histogram(self) -> &'static str {
        match self {
            Source::Requests => "slogate_request_duration_seconds",
            Source::Jobs(JobHistogram::Duration) => "slogate_job_duration_seconds",
            Source::Jobs(JobHistogram::Execution) => "slogate_job_execution_seconds",
        }
    }
}

/// One operation an SLO covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// A GraphQL operation by name, optionally restricted to one type.
    GraphQl {
        /// Operation name (or a sentinel such as `(anonymous)`).
        name: String,
        /// `query`, `mutation` or `subscription`.
        operation_type: Option<String>,
    },
    /// An HTTP route template, `METHOD /path/:param`.
    Http {
        /// E.g. `GET /api/v1/courses/:id`.
        route: String,
    },
    /// A background job class, optionally on one queue.
    Job {
        /// E.g. `ChargeCardJob`.
        class: String,
        /// E.g. `critical`.
        queue: Option<String>,
    },
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::GraphQl {
                name,
                operation_type: Some(t),
            } => write!(f, "{t} {name}"),
            Operation::GraphQl { name, .. } => write!(f, "graphql {name}"),
            Operation::Http { route } => f.write_str(route),
            Operation::Job {
                class,
                queue: Some(q),
            } => write!(f, "job {class} (queue {q})"),
            Operation::Job { class, .. } => write!(f, "job {class}"),
        }
    }
}
