//! slogate's truth harness: are the SLIs telling the truth, and what does the edge cost?
//!
//! * [`mock`]: a fast mock upstream (hyper) that answers like a Rails GraphQL app as a
//!   [`Scenario`] says: latency distributions, field errors under `200`, request errors, `500`
//!   pages, `4xx`, gzip, trickled bodies, connection resets, truncated bodies and hangs. It
//!   counts what it answered per operation and class: the ground truth (`/__mock/stats`).
//! * [`load`]: an open-loop (constant arrival rate, latency from the scheduled time) or
//!   closed-loop load tester that classifies what the client saw with slogate's own rules
//!   ([`slogate_core::response::ClassificationPolicy`]), records latency in HdrHistograms, and
//!   compares the client, proxy (`/metrics`) and mock views in a [`Report`].
//! * [`demo`]: the one-command demo (mock, slogate, an incident, the SLI table).
//!
//! ```
//! use slogate_harness::Scenario;
//!
//! let scenario = Scenario::parse(
//!     "inline.yaml",
//!     r#"
//! load: { rate: 50, duration: 2s }
//! operations:
//!   - name: GetCourse
//!     latency: { lognormal: { p50: 20ms, p99: 80ms } }
//!     answers:
//!       - success: { weight: 98 }
//!       - field_error: { weight: 2, code: NOT_FOUND }
//! "#,
//! )?;
//! assert_eq!(scenario.operations[0].behavior.answers.len(), 2);
//! let err = Scenario::parse("bad.yaml", "operations:\n  - name: A\n    answers:\n      - sucess: {}\n")
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("bad.yaml: operations[0].answers[0].sucess: unknown field `sucess`, expected one of `success`"));
//! # Ok::<(), slogate_harness::ScenarioError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cli;
pub mod counts;
pub mod demo;
pub mod latency;
pub mod load;
pub mod mock;
pub mod prom;
pub mod report;
pub mod rng;
pub mod rules;
pub mod scenario;

pub use cli::{run_loadtest, run_mock, Disagreement, LoadtestArgs, MockArgs};
pub use counts::{OpKey, OutcomeCounts};
pub use demo::{run_demo, DemoArgs};
pub use load::{run as run_load, run_blocking as run_load_blocking, LoadOptions};
pub use mock::{MockServer, MockStats};
pub use report::Report;
pub use rules::ProxyRules;
pub use scenario::{Scenario, ScenarioError};
