//! The engine: hyper 1.x moves the bytes (HTTP/1.1, and HTTP/2 when TLS negotiates it) on
//! slogate's own listeners ([`listen`]), inside pingora's server framework, which owns the
//! process, the handover of listening sockets on a graceful upgrade, and the background
//! services.
//!
//! Each request goes through [`handler::handle`], and its accounting rides on the response
//! body ([`body::ResBody`]) until the answer is delivered or abandoned.

pub mod app;
pub mod body;
pub mod fd;
pub mod file;
pub mod handler;
mod head;
pub mod listen;
pub mod pool;
pub mod side;
pub mod spool;
pub mod track;

use slogate_metrics::prometheus::IntGauge;

/// One count in a gauge for as long as it lives: an open connection in
/// `slogate_connections_open` or `slogate_upstream_connections_open`.
pub(crate) struct Counted(IntGauge);

impl Counted {
    pub(crate) fn new(gauge: &IntGauge) -> Counted {
        gauge.inc();
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}
