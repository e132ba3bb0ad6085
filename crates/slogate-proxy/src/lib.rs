//! slogate's proxy: pingora phases glued to [`slogate_core`].
//!
//! [`SlogateProxy`] implements pingora's `ProxyHttp`; each hook is a few lines that hand what
//! it sees to the pure core (request bytes to the operation extractor, response bytes to the
//! classifier) and, in `logging`, record the verdict as metrics and an access log line.
//! [`server::run`] builds the listeners, the admin endpoints and the runtime from a validated
//! [`slogate_config::Config`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod engine;
pub mod forwarded;
pub mod health;
pub mod pages;
pub mod proxy;
pub mod request_id;
pub mod runtime;
pub mod server;
pub mod static_files;
pub mod upstream;

pub use proxy::SlogateProxy;
pub use runtime::Runtime;
pub use server::{preflight, run, RunOptions};
