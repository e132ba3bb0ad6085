//! slogate's engine served inside the calling process, for tests and embedders: the same
//! workers, accept loops and request handling as [`crate::server::run`], without pingora's
//! server (no daemon, signals, pid file or graceful upgrade), without a subprocess.
//!
//! ```no_run
//! let config = slogate_config::parse_str("test", "upstream: {backends: ['127.0.0.1:3000']}")
//!     .expect("valid configuration");
//! let registry = slogate_metrics::Registry::new();
//! let proxy = slogate_proxy::InProcess::start_local(config, registry).expect("started");
//! println!("proxying on {}", proxy.addr());
//! println!("{}", proxy.metrics_text());
//! // Dropping `proxy` stops it.
//! ```
//!
//! What it serves: plain HTTP/1.1 on one TCP listener, with `server.threads` workers, each
//! with its own single-threaded runtime and upstream connections, as `run` does. What it does
//! not start: `server.listen` and `server.tls` (the caller gives the listener), the admin
//! endpoints (read the metrics from the registry given, or [`InProcess::metrics_text`]), the
//! active health checks (every backend stays up) and the raised open-files limit.
//!
//! Ownership: request handling borrows the [`Runtime`] for `'static`, as in `run`, so each
//! [`InProcess`] leaks its `Runtime` (its configuration, caches, backends) and the small
//! connection counter. Dropping the handle stops the workers and closes every connection and
//! socket; what stays is that memory and the access log's writer thread, which sleeps and
//! writes nothing more. Cheap for a test binary starting a few dozen; not meant for starting
//! one per request in a long-lived process.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use slogate_config::Config;
use slogate_metrics::Registry;
use tokio::sync::watch;

use crate::engine::listen::{self, Connections};
use crate::runtime::Runtime;

/// How long a stopping [`InProcess`] lets open connections finish their requests.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// slogate serving in this process. Dropping it stops it (see the [module](self) docs).
pub struct InProcess {
    addr: SocketAddr,
    rt: &'static Runtime,
    registry: Registry,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl InProcess {
    /// Serves `config` on `listener` (a bound TCP listener, blocking or not), registering the
    /// metrics in `registry` (give each instance its own: a metric registers once per
    /// registry). Clients may connect as soon as it returns (the listener queues them until
    /// a worker accepts).
    ///
    /// Fails as `run` does on a configuration whose backends do not resolve or whose access
    /// log cannot be opened, or when the listener cannot be used.
    pub fn start(
        config: Config,
        registry: Registry,
        listener: std::net::TcpListener,
    ) -> Result<InProcess, String> {
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen: {e}"))?;
        let max = config.server.max_connections;
        let rt: &'static Runtime = Box::leak(Box::new(Runtime::new(config, &registry)?));
        let connections: &'static Connections =
            Box::leak(Box::new(Connections::new(max, &registry)?));
        let (stop, shutdown) = watch::channel(false);
        let workers = listen::serve_in_process(rt, connections, listener, &shutdown, STOP_GRACE)?;
        Ok(InProcess {
            addr,
            rt,
            registry,
            stop,
            workers,
        })
    }

    /// [`InProcess::start`] on a new listener on `127.0.0.1` and a port the system picks.
    pub fn start_local(config: Config, registry: Registry) -> Result<InProcess, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        InProcess::start(config, registry, listener)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state requests are served with (configuration, metrics, pages, backends).
    pub fn runtime(&self) -> &'static Runtime {
        self.rt
    }

    /// The registry slogate's metrics are in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of the registry, as `/metrics` serves it.
    pub fn metrics_text(&self) -> String {
        slogate_metrics::encode(&self.registry)
    }

    /// Writes the access log lines pending now, rather than at the writer's next tick
    /// (every 100 ms). A request's line is recorded when its answer ends.
    pub fn flush_access_log(&self) {
        self.rt.access_log.flush();
    }
}

impl Drop for InProcess {
    /// Stops accepting, lets open connections finish for up to a second, ends the worker
    /// threads (closing every connection still open) and writes the pending access log.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.rt.access_log.flush();
    }
}
