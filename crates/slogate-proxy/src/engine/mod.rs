//! The hyper engine: hyper 1.x moves the bytes (HTTP/1.1, and HTTP/2 when TLS negotiates
//! it), hosted by pingora's server framework, which owns the process, the listeners, TLS
//! and the graceful upgrade.
//!
//! Each accepted connection reaches [`HyperApp::process_new`] as a pingora stream and is
//! served by hyper; each request goes through [`handler::handle`], and its accounting rides
//! on the response body ([`body::ResBody`]) until the answer is delivered or abandoned.

pub mod body;
pub mod file;
pub mod handler;
pub mod pool;
pub mod spool;
pub mod track;

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pingora_core::apps::ServerApp;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;

use crate::runtime::Runtime;
use handler::Conn;

/// Largest request head (request line and headers) accepted, as nginx's
/// `large_client_header_buffers 4 8k` roughly allows (hyper answers 431 past it).
const MAX_HEAD: usize = 64 * 1024;

/// Serves the connections of one listener with hyper.
pub struct HyperApp {
    rt: &'static Runtime,
    tls: bool,
}

impl HyperApp {
    /// An app for plain or TLS listeners.
    pub fn new(rt: &'static Runtime, tls: bool) -> Self {
        HyperApp { rt, tls }
    }
}

#[async_trait]
impl ServerApp for HyperApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let rt = self.rt;
        // Asked once per connection; pingora caches the addresses in the digest.
        let digest = stream.get_socket_digest();
        let peer = digest
            .as_ref()
            .and_then(|d| d.peer_addr())
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let port = digest
            .as_ref()
            .and_then(|d| d.local_addr())
            .and_then(|a| a.as_inet())
            .map(|a| a.port());
        let h2 = self.tls && matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let conn = Conn {
            peer,
            port,
            tls: self.tls,
        };
        let service = service_fn(move |req| async move {
            Ok::<_, Infallible>(handler::handle(rt, conn, req).await)
        });
        let io = TokioIo::new(stream);
        let mut shutdown = shutdown.clone();
        if h2 {
            let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(io, service);
            serve_until_shutdown!(served, shutdown);
        } else {
            // hyper's head timer also runs while a keep-alive connection waits for its next
            // request: the shorter of the two limits bounds both.
            let server = &rt.config.server;
            let head_timeout = match server.keepalive_timeout.is_zero() {
                true => server.client_header_timeout,
                false => server.client_header_timeout.min(server.keepalive_timeout),
            };
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .keep_alive(!rt.config.server.keepalive_timeout.is_zero())
                .max_buf_size(MAX_HEAD)
                .serve_connection(io, service)
                .with_upgrades();
            serve_until_shutdown!(served, shutdown);
        }
        None
    }
}

/// Drives a hyper connection; on shutdown, lets it finish its requests (graceful).
macro_rules! serve_until_shutdown {
    ($served:expr, $shutdown:expr) => {{
        let served = $served;
        tokio::pin!(served);
        tokio::select! {
            r = served.as_mut() => log_end(r),
            _ = $shutdown.changed() => {
                served.as_mut().graceful_shutdown();
                log_end(served.await);
            }
        }
    }};
}
use serve_until_shutdown;

fn log_end(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!("client connection: {e}");
    }
}
