//! Side listeners: the admin endpoints and the redirect to HTTPS. Small HTTP/1.1 services
//! on hyper, on one thread of their own, bound as the proxy's listeners are (taken over
//! from the old process on a graceful upgrade).
//!
//! Not pingora's listening service: its accept path wraps every connection's handshake in
//! pingora's fast timeout, whose first use starts a clock thread that then wakes every 10 ms
//! for the life of the process, busy or idle (the first Prometheus scrape started it).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use pingora_core::server::{ListenFds, ShutdownWatch};
use pingora_core::services::Service;
use tokio::io::{AsyncRead, AsyncWrite};

use super::listen::{cannot_listen, Bind, Listener, Stream};

/// How long a client may take to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a side listener answers.
pub trait Answer: Send + Sync + 'static {
    /// The whole answer to a request (its body is not read) from `peer` (none over a Unix
    /// socket).
    fn answer(&self, req: &http::request::Parts, peer: Option<IpAddr>) -> Response<Vec<u8>>;
}

/// A side listener as a pingora service.
pub struct SideService<A> {
    name: String,
    binds: Vec<Bind>,
    app: Arc<A>,
}

impl<A: Answer> SideService<A> {
    /// `app` answering on every one of `binds`.
    pub fn new(name: impl Into<String>, binds: Vec<Bind>, app: A) -> Self {
        SideService {
            name: name.into(),
            binds,
            app: Arc::new(app),
        }
    }
}

#[async_trait]
impl<A: Answer> Service for SideService<A> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let mut loops = Vec::with_capacity(self.binds.len());
        for bind in &self.binds {
            let listener = match Listener::bind(bind, fds.as_ref()).await {
                Ok(l) => l,
                Err(e) => cannot_listen(Some(&self.name), bind, e),
            };
            loops.push(tokio::spawn(accept_loop(
                listener,
                self.app.clone(),
                shutdown.clone(),
            )));
        }
        for l in loops {
            let _ = l.await;
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn threads(&self) -> Option<usize> {
        Some(1)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(self.binds.iter().map(Bind::key).collect())
    }
}

/// Accepts until shutdown; connections already open are served until the process ends.
async fn accept_loop<A: Answer>(listener: Listener, app: Arc<A>, mut shutdown: ShutdownWatch) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((Stream::Tcp(s), peer)) => {
                    tokio::spawn(serve(app.clone(), s, peer));
                }
                Ok((Stream::Unix(s), peer)) => {
                    tokio::spawn(serve(app.clone(), s, peer));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: do not spin on it.
                    tracing::warn!("side listener: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

async fn serve<A, I>(app: Arc<A>, io: I, peer: Option<IpAddr>)
where
    A: Answer,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: http::Request<Incoming>| {
        let (parts, _body) = req.into_parts();
        let answer = app.answer(&parts, peer).map(|b| Full::new(Bytes::from(b)));
        std::future::ready(Ok::<_, Infallible>(answer))
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("side listener connection: {e}");
    }
}
