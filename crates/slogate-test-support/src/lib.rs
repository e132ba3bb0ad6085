//! What slogate's integration tests share (a dev-dependency only; `publish = false`):
//!
//! * [`free_port`], [`wait_for`] / [`wait_for_or`], [`unix_now`];
//! * [`Proc`], a child process killed when dropped (its whole process group when it leads
//!   one), and [`rss_bytes`] / [`status_kib`] from `/proc`;
//! * [`require_tool`] and friends: a test that needs an external program (Ruby and Puma,
//!   nginx, Prometheus, Redis, ...) checks for it first, so that without it the failure says
//!   what is missing, which Debian package has it, and that `make test` installs it;
//! * a raw HTTP/1.1 client ([`raw`], [`get`], [`post`], [`Response`], [`dechunk`]);
//! * [`Metrics`], the parsed Prometheus text exposition (one reading of the format for every
//!   test and the load tester: [`Sample`] and [`parse_sample`] are `slogate_harness::prom`'s);
//! * [`Prometheus`], a real Prometheus server started for a test.

mod http;
mod metrics;
mod process;
mod prometheus;
mod tools;

pub use http::{dechunk, get, get_with, post, raw, Response};
pub use metrics::{parse_sample, Metrics, Sample};
pub use process::{free_port, rss_bytes, status_kib, unix_now, wait_for, wait_for_or, Proc};
pub use prometheus::{url_encode, Prometheus};
pub use tools::{
    datadog_python, on_path, require_ruby_lib, require_tool, run_datadog_validation, tool_path,
    workspace_root,
};
