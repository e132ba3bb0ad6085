//! The application's backends: prebuilt peers, round robin, and health state.

use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pingora_core::upstreams::peer::HttpPeer;
use slogate_config::{Address, UpstreamSettings};

/// One backend.
pub struct Backend {
    /// As configured, for logs and labels.
    pub label: String,
    peer: HttpPeer,
    healthy: AtomicBool,
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

    /// The address to connect to.
    pub fn address(&self) -> &pingora_core::protocols::l4::socket::SocketAddr {
        &self.peer._address
    }
}

/// The backends of the upstream, chosen round robin among the healthy ones.
pub struct Backends {
    backends: Vec<Backend>,
    next: AtomicUsize,
}

impl Backends {
    /// Resolves every backend once and prepares its peer.
    pub fn new(settings: &UpstreamSettings) -> Result<Backends, String> {
        let mut backends = Vec::with_capacity(settings.backends.len());
        for address in &settings.backends {
            let mut peer = match address {
                Address::Tcp(hostport) => {
                    let addr = hostport
                        .to_socket_addrs()
                        .map_err(|e| format!("upstream.backends: cannot resolve {hostport}: {e}"))?
                        .next()
                        .ok_or_else(|| {
                            format!("upstream.backends: {hostport} resolves to nothing")
                        })?;
                    HttpPeer::new(addr, false, String::new())
                }
                Address::Unix(path) => {
                    HttpPeer::new_uds(&path.to_string_lossy(), false, String::new())
                        .map_err(|e| format!("upstream.backends: unix:{}: {e}", path.display()))?
                }
            };
            peer.options.connection_timeout = Some(settings.connect_timeout);
            peer.options.read_timeout = Some(settings.read_timeout);
            peer.options.write_timeout = Some(settings.write_timeout);
            peer.options.idle_timeout = Some(settings.idle_timeout);
            backends.push(Backend {
                label: address.to_string(),
                peer,
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

    /// The next healthy backend, round robin; `None` when all are down.
    pub fn select(&self) -> Option<(usize, Box<HttpPeer>)> {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.backends[i].is_healthy())
            .map(|i| (i, Box::new(self.backends[i].peer.clone())))
    }

    /// The label of backend `i`.
    pub fn label(&self, i: usize) -> &str {
        self.backends.get(i).map_or("", |b| b.label.as_str())
    }
}
