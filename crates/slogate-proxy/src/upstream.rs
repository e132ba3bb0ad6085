//! The application's backends: prebuilt peers, round robin, and health state.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use slogate_metrics::prometheus::IntGauge;

use slogate_config::{Address, UpstreamSettings};

/// Where a backend listens.
#[derive(Clone, Debug)]
pub enum Target {
    /// A TCP address, resolved once at start.
    Tcp(SocketAddr),
    /// A Unix socket.
    Unix(PathBuf),
}

/// One backend.
pub struct Backend {
    /// As configured, for logs and labels.
    pub label: String,
    target: Target,
    healthy: AtomicBool,
    /// The hyper engine's idle connections to it.
    pub(crate) pool: crate::engine::pool::Pool,
}

impl Backend {
    /// Whether the last health check passed (true until a check says otherwise).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records a health check result; returns whether it changed.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed) != healthy
    }

    /// Where it listens.
    pub fn target(&self) -> &Target {
        &self.target
    }
}

/// The backends of the upstream, chosen round robin among the healthy ones.
pub struct Backends {
    backends: Vec<Backend>,
    next: AtomicUsize,
}

impl Backends {
    /// Resolves every backend once; each keeps idle connections for `workers` threads, and
    /// counts its open connections in the gauge `open` gives for its label.
    pub fn new(
        settings: &UpstreamSettings,
        workers: usize,
        open: impl Fn(&str) -> IntGauge,
    ) -> Result<Backends, String> {
        let mut backends = Vec::with_capacity(settings.backends.len());
        for address in &settings.backends {
            let target = match address {
                Address::Tcp(hostport) => Target::Tcp(
                    hostport
                        .to_socket_addrs()
                        .map_err(|e| format!("upstream.backends: cannot resolve {hostport}: {e}"))?
                        .next()
                        .ok_or_else(|| {
                            format!("upstream.backends: {hostport} resolves to nothing")
                        })?,
                ),
                Address::Unix(path) => Target::Unix(path.clone()),
            };
            let label = address.to_string();
            backends.push(Backend {
                pool: crate::engine::pool::Pool::new(workers, open(&label)),
                label,
                target,
                healthy: AtomicBool::new(true),
            });
        }
        Ok(Backends {
            backends,
            next: AtomicUsize::new(0),
        })
    }

    /// All backends.
    pub fn all(&self) -> &[Backend] {
        &self.backends
    }

    /// Whether any backend is healthy.
    pub fn any_healthy(&self) -> bool {
        self.backends.iter().any(Backend::is_healthy)
    }

    /// The index of the next healthy backend, round robin; `None` when all are down.
    pub fn pick(&self) -> Option<usize> {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.backends[i].is_healthy())
    }

    /// The next backend for a request: a healthy one, or, when every health check fails,
    /// the next one all the same (as nginx does when all its servers are marked down): a
    /// failing check must not turn an app that still answers into a wall of 502s.
    pub fn pick_or_any(&self) -> usize {
        self.pick().unwrap_or_else(|| {
            self.next.fetch_add(1, Ordering::Relaxed) % self.backends.len().max(1)
        })
    }

    /// The label of backend `i`.
    pub fn label(&self, i: usize) -> &str {
        self.backends.get(i).map_or("", |b| b.label.as_str())
    }
}
