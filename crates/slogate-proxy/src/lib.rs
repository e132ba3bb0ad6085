//! slogate's proxy: the engine (hyper on slogate's listeners, in pingora's server framework)
//! glued to [`slogate_core`].
//!
//! Each request is handed to the pure core as it passes (request bytes to the operation
//! extractor, response bytes to the classifier, through one `Exchange`), and its account is
//! recorded as metrics and an access-log line when the exchange ends. [`server::run`] builds
//! the listeners, the admin endpoints and the runtime from a validated
//! [`slogate_config::Config`]; [`InProcess`] serves the same engine inside the calling process
//! (tests, embedders).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod engine;
pub mod forwarded;
pub mod health;
pub mod in_process;
pub mod pages;
pub mod request_id;
pub mod runtime;
pub mod server;
pub mod static_files;
pub mod upstream;

pub use in_process::InProcess;
pub use runtime::Runtime;
pub use server::{preflight, run, RunOptions};
