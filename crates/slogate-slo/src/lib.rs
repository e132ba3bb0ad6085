//! Service level objectives for slogate.
//!
//! Teams describe their critical user journeys (CUJs) once, in
//! `proxy-config/slo.yaml` (or as OpenSLO v1 documents), and this crate turns
//! them into:
//!
//! - a Prometheus rule file: Sloth-compatible recording rules
//!   (`slo:sli_error:ratio_rate5m` … `slo:period_error_budget_remaining:ratio`
//!   with `sloth_id`, `sloth_service`, `sloth_slo`, `sloth_window` labels, so
//!   Sloth's Grafana dashboards work unchanged), multi-window multi-burn-rate
//!   alerts (SRE Workbook), an absent-metrics alert and a budget-exhausted
//!   alert ([`generate_rules`]);
//! - a Grafana dashboard per service ([`generate_dashboard`]);
//! - a report on the live state, from Prometheus's HTTP API
//!   ([`report::build_report`]), and on the alert episodes of its history
//!   ([`history::build_history`]);
//! - predictions of when each alert fires for an incident
//!   ([`simulate::simulate`]) and a `promtool test rules` suite built from
//!   them ([`rule_tests::generate_rule_tests`]);
//! - the same SLOs for Datadog: the Agent's OpenMetrics check, metric SLOs and
//!   burn-rate monitors ([`datadog`]).
//!
//! SLIs are read from the metrics the proxy exports:
//! `slogate_requests_total` and `slogate_request_duration_seconds` for GraphQL
//! operations and HTTP routes, `slogate_jobs_total` and
//! `slogate_job_duration_seconds` / `slogate_job_execution_seconds` for
//! background jobs. Availability: bad = `system_error`, total = every outcome
//! but `canceled`. Latency: good = faster than the threshold (a histogram
//! bucket boundary) among `success` and `client_error`.
//!
//! ```
//! use slogate_slo::{generate_rules, parse_spec, DEFAULT_BUCKETS};
//!
//! let spec = parse_spec(
//!     "proxy-config/slo.yaml",
//!     r#"
//! service: rails
//! slos:
//!   - name: checkout
//!     description: Learners can pay for a course.
//!     owner: team-payments
//!     cuj: Learner buys a course
//!     period: 30d
//!     operations:
//!       - graphql: CreateOrder
//!         type: mutation
//!       - http: POST /api/v1/payments
//!     availability:
//!       target: 99.9
//!     latency:
//!       threshold: 300ms
//!       target: 99
//! "#,
//!     &DEFAULT_BUCKETS,
//! )?;
//! assert_eq!(spec.slos.len(), 2); // checkout-availability, checkout-latency
//!
//! let rules = generate_rules(&spec)?;
//! assert!(rules.contains("record: slo:sli_error:ratio_rate5m"));
//! assert!(rules.contains("vector(0.001)")); // 1 - 99.9%, exactly
//!
//! // Mistakes name the file, the SLO and the field.
//! let err = parse_spec(
//!     "proxy-config/slo.yaml",
//!     "slos:\n  - name: checkout\n    latency: {threshold: 350ms, target: 99}\n",
//!     &DEFAULT_BUCKETS,
//! )
//! .unwrap_err();
//! assert!(err.to_string().contains(
//!     r#"proxy-config/slo.yaml: slos[0] "checkout": latency.threshold: 0.35s is not a histogram bucket boundary"#
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `slogate` binary mounts [`SloArgs`] as `slogate slo` and calls
//! [`run`]; a [`SpecError`] inside the returned error means the spec is
//! wrong (exit code 2).
//!
//! Burn-rate alerts carry `severity` (`page`/`ticket`) and `tier` (1 = fastest
//! … 4 = slowest) labels, so Alertmanager can silence the slower alert while a
//! faster one fires:
//!
//! ```yaml
//! inhibit_rules:
//!   - source_matchers: [alertname="SLOErrorBudgetBurn", tier="1"]
//!     target_matchers: [alertname="SLOErrorBudgetBurn", tier=~"2|3|4"]
//!     equal: [sloth_id]
//!   - source_matchers: [alertname="SLOErrorBudgetBurn", tier="2"]
//!     target_matchers: [alertname="SLOErrorBudgetBurn", tier=~"3|4"]
//!     equal: [sloth_id]
//!   - source_matchers: [alertname="SLOErrorBudgetBurn", tier="3"]
//!     target_matchers: [alertname="SLOErrorBudgetBurn", tier="4"]
//!     equal: [sloth_id]
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod dashboard;
pub mod datadog;
pub mod decimal;
pub mod duration;
pub mod error;
pub mod history;
pub mod model;
mod openslo;
pub mod promql;
pub mod report;
pub mod rule_tests;
pub mod rules;
pub mod simulate;
pub mod spec;

pub use cli::{check_summary, run, SloArgs, SloCommand};
pub use dashboard::generate_dashboard;
pub use error::{Issue, SpecError};
pub use model::{Slo, Spec};
pub use rules::generate_rules;
pub use spec::{
    load_spec, load_spec_with_job_buckets, parse_spec, parse_spec_with_job_buckets,
    DEFAULT_BUCKETS, DEFAULT_JOB_BUCKETS,
};
