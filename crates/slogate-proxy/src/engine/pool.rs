//! Upstream HTTP/1.1 connections to the app: connect (TCP or Unix socket) with a timeout,
//! through hyper's client or slogate's own ([`super::app`]), keep idle ones per backend
//! (last in, first out, so the warmest is reused), and drop those that closed or sat idle
//! too long.

use std::cell::Cell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use slogate_config::UpstreamClient;
use slogate_metrics::prometheus::IntGauge;
use tokio::net::{TcpStream, UnixStream};

use super::app::{AppConn, Conn};
use super::body::UpBody;
use super::Counted;
use crate::upstream::{Backend, Target};

/// Idle connections kept per backend (nginx's `keepalive` in an `upstream` block).
const MAX_IDLE_PER_BACKEND: usize = 256;

/// Why no connection could be had.
#[derive(Debug)]
pub enum ConnectError {
    /// The connect timeout passed.
    TimedOut,
    /// Refused, unreachable, or the HTTP handshake failed.
    Failed(std::io::Error),
}

impl ConnectError {
    /// The status slogate answers (nginx's: 504 for a timeout, 502 otherwise) and why.
    pub fn answer(self) -> (u16, String) {
        match self {
            ConnectError::TimedOut => (504, "upstream connect timed out".into()),
            ConnectError::Failed(e) => (502, format!("upstream connect failed: {e}")),
        }
    }
}

struct Idle {
    conn: AppConn,
    since: Instant,
}

thread_local! {
    /// The worker thread this is (0 outside the workers).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as worker `index`: it keeps its own idle connections.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The idle connections of one backend, one list per worker thread.
///
/// A connection is driven by the runtime of the worker that opened it; reused by another
/// worker, every read and write would cross threads. Each worker reuses its own.
pub struct Pool {
    idle: Box<[Mutex<Vec<Idle>>]>,
    /// Connections open to the backend, in use or idle (`slogate_upstream_connections_open`).
    open: IntGauge,
}

impl Pool {
    /// A pool for `workers` worker threads, counting its open connections in `open`.
    pub fn new(workers: usize, open: IntGauge) -> Pool {
        Pool {
            idle: (0..workers.max(1)).map(|_| Mutex::default()).collect(),
            open,
        }
    }

    /// Counts one more connection open to the backend while the guard lives: an upgraded
    /// connection (WebSocket), whose socket hyper hands over when it upgrades.
    pub(crate) fn count_open(&self) -> Counted {
        Counted::new(&self.open)
    }

    fn mine(&self) -> &Mutex<Vec<Idle>> {
        &self.idle[WORKER.with(Cell::get) % self.idle.len()]
    }

    /// An idle connection ready for a request, if one is kept.
    pub async fn checkout(&self, idle_timeout: Duration) -> Option<AppConn> {
        loop {
            let idle = {
                let mut idle = self.mine().lock().unwrap_or_else(|e| e.into_inner());
                idle.pop()?
            };
            if idle.conn.is_closed() || idle.since.elapsed() >= idle_timeout {
                continue;
            }
            match idle.conn {
                // Ready at once unless the connection just closed (its driver saw the app's
                // close) or the driver has yet to see the end of the previous answer.
                AppConn::Hyper(mut sender) => {
                    if sender.ready().await.is_ok() {
                        return Some(AppConn::Hyper(sender));
                    }
                }
                conn @ AppConn::Slogate(_) => return Some(conn),
            }
        }
    }

    /// Gives a connection back after its response ended.
    pub fn checkin(&self, conn: AppConn) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.mine().lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_PER_BACKEND {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Closes this worker's connections idle for `idle_timeout` or more (the oldest are at
    /// the bottom of the list), and those the app closed.
    pub fn sweep(&self, idle_timeout: Duration) {
        let mut idle = self.mine().lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| !c.conn.is_closed() && c.since.elapsed() < idle_timeout);
    }

    /// Idle connections kept now, by every worker.
    pub fn idle_count(&self) -> usize {
        self.idle
            .iter()
            .map(|w| w.lock().map_or(0, |v| v.len()))
            .sum()
    }
}

/// Opens a new HTTP/1.1 connection to `backend` with `client` (hyper's driver runs as its
/// own task).
pub async fn connect(
    backend: &Backend,
    timeout: Duration,
    client: UpstreamClient,
) -> Result<AppConn, ConnectError> {
    let open = &backend.pool.open;
    let attempt = async {
        match (backend.target(), client) {
            (Target::Tcp(addr), client) => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                match client {
                    UpstreamClient::Hyper => handshake(s, open).await.map(AppConn::Hyper),
                    UpstreamClient::Slogate => Ok(AppConn::Slogate(Box::new(Conn::tcp(s, open)))),
                }
            }
            (Target::Unix(path), UpstreamClient::Hyper) => {
                handshake(UnixStream::connect(path).await?, open)
                    .await
                    .map(AppConn::Hyper)
            }
            (Target::Unix(path), UpstreamClient::Slogate) => Ok(AppConn::Slogate(Box::new(
                Conn::unix(UnixStream::connect(path).await?, open),
            ))),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(sender)) => Ok(sender),
        Ok(Err(e)) => Err(ConnectError::Failed(e)),
        Err(_) => Err(ConnectError::TimedOut),
    }
}

async fn handshake<S>(io: S, open: &IntGauge) -> std::io::Result<SendRequest<UpBody>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .writev(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(std::io::Error::other)?;
    // The driver owns the socket: the connection is open exactly as long as it runs (or
    // until its runtime drops it, which drops the guard too).
    let counted = Counted::new(open);
    tokio::spawn(async move {
        let _counted = counted;
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("upstream connection: {e}");
        }
    });
    Ok(sender)
}
