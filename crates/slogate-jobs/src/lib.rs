//! `slogate jobs`: job SLIs for Sidekiq, as easy as request SLIs.
//!
//! In a Rails shop much of what users wait for happens in Sidekiq, where an
//! HTTP proxy never looks. This mode runs beside Sidekiq (e.g. as a
//! sidecar), follows its JSON log (files, across rotations, or standard
//! input), polls its Redis for queue health, and serves the metrics on an
//! admin listener like the proxy's:
//!
//! - `slogate_jobs_total{service, queue, job_class, outcome}`: `done` →
//!   `success`, `fail` → `system_error`, configured job or error classes →
//!   `client_error`, `Sidekiq::Shutdown` → `canceled`;
//! - `slogate_job_duration_seconds` (enqueue → completion, with slogate's
//!   Sidekiq middleware) and `slogate_job_execution_seconds` (execution);
//! - `slogate_job_queue_size` and `slogate_job_queue_latency_seconds` per queue.
//!
//! The pure part ([`parse_line`], [`OutcomeRules`]) is separate from the
//! I/O ([`FileFollower`], [`QueuePoller`]):
//!
//! ```
//! use slogate_core::Outcome;
//! use slogate_jobs::{parse_line, LogLine, OutcomeRules};
//!
//! let line = br#"{"ts":"2026-11-30T10:53:37.998Z","pid":1,"tid":"bk6","lvl":"INFO","msg":"fail","ctx":{"class":"MissingRecordJob","jid":"0b61","queue":"default","enqueued_at":1796036017.5,"error_class":"ActiveRecord::RecordNotFound","elapsed":0.009}}"#;
//! let LogLine::Job(event) = parse_line(line) else { panic!("a job line") };
//! assert_eq!(event.class, "MissingRecordJob");
//! assert_eq!(event.elapsed, Some(0.009));
//! assert!((event.enqueue_to_completion().unwrap() - 0.498).abs() < 1e-6);
//!
//! let rules = OutcomeRules::new([], ["ActiveRecord::RecordNotFound".to_string()], []);
//! assert_eq!(rules.outcome(&event), Some(Outcome::ClientError));
//! assert_eq!(parse_line(b"not json"), LogLine::Malformed);
//! ```
//!
//! Lines become metrics through a [`JobRecorder`], registered in any
//! [`Registry`](slogate_metrics::Registry):
//!
//! ```
//! use std::sync::Arc;
//! use slogate_jobs::{JobMetrics, JobRecorder, OutcomeRules, DEFAULT_JOB_BUCKETS};
//! use slogate_metrics::{CardinalityGuard, Registry};
//!
//! let registry = Registry::new();
//! let metrics = JobMetrics::register(&registry, DEFAULT_JOB_BUCKETS)?;
//! let recorder = JobRecorder::new(
//!     "rails",
//!     metrics,
//!     OutcomeRules::default(),
//!     CardinalityGuard::new(1000, None),
//!     Arc::new(CardinalityGuard::new(100, None)),
//! );
//! recorder.record_line(br#"{"ts":"2026-11-30T10:53:38.000Z","msg":"done","ctx":{"class":"HardJob","queue":"default","enqueued_at":1796036017.0,"elapsed":0.2}}"#);
//! let text = slogate_metrics::encode(&registry);
//! assert!(text.contains(r#"slogate_jobs_total{job_class="HardJob",outcome="success",queue="default",service="rails"} 1"#));
//! assert!(text.contains(r#"slogate_job_duration_seconds_sum{job_class="HardJob",outcome="success",queue="default",service="rails"} 1"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `slogate` binary mounts [`JobsArgs`] as `slogate jobs` and calls
//! [`run`]; a [`ConfigError`] inside the returned error means the config or
//! a flag is wrong (exit code 2). [`check_config`] serves `slogate check`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod classify;
pub mod cli;
pub mod config;
pub mod event;
pub mod follow;
pub mod lines;
pub mod metrics;
pub mod queues;
pub mod recorder;
pub mod redis_url;
pub mod services;
pub mod time;

pub use classify::OutcomeRules;
pub use cli::{build_server, check_config, effective_config, run, JobsArgs};
pub use config::{load_config, ConfigError, JobsConfig};
pub use event::{parse_line, JobEvent, JobMessage, LogLine};
pub use follow::{FileFollower, LogSink, Rotation, StartAt};
pub use metrics::{JobMetrics, DEFAULT_JOB_BUCKETS};
pub use queues::QueuePoller;
pub use recorder::JobRecorder;
