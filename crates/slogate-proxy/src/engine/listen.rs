//! slogate's listeners: one accept loop per worker thread, each on its own single-threaded
//! tokio runtime, as nginx's workers do.
//!
//! pingora keeps what it is good at: the process (daemon, pid file, signals), the handover
//! of listening sockets to a new process on a graceful upgrade (their fds are taken from, and
//! given to, pingora's table under the same keys its own listeners use), and the background
//! services. The connections themselves never pass through pingora's stream type (measured
//! in docs/architecture.md: 30.5 KiB per idle keep-alive connection inside pingora's
//! `ServerApp`, 27.5 here, 21 with the request future boxed).
//!
//! A worker accepts on the shared listening socket and serves what it accepted itself, with
//! its own upstream connections ([`super::pool`]), so a request never crosses threads.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pingora_core::server::{ListenFds, ShutdownWatch};
use pingora_core::services::Service;
use pingora_rustls::TlsAcceptor;
use slogate_metrics::prometheus::{IntCounter, IntGauge, Registry};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::handler::{self, Conn};
use super::Counted;
use crate::runtime::Runtime;

/// Largest request head (request line and headers) accepted, as nginx's
/// `large_client_header_buffers 4 8k` roughly allows (hyper answers 431 past it).
const MAX_HEAD: usize = 64 * 1024;

/// The listen queue asked of the kernel (capped by `net.core.somaxconn`), as pingora's.
const BACKLOG: i32 = 65535;

/// Where a listener listens.
#[derive(Clone, Debug)]
pub enum Bind {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Bind {
    /// The key of its fd in pingora's table of listening sockets handed over on upgrade.
    pub(crate) fn key(&self) -> String {
        match self {
            Bind::Tcp(a) => a.clone(),
            Bind::Unix(p) => p.to_string_lossy().into_owned(),
        }
    }
}

/// One listening address, plain or TLS.
pub struct Endpoint {
    /// The address.
    pub bind: Bind,
    /// TLS termination on it.
    pub tls: Option<TlsAcceptor>,
}

/// Open connections and the limit on them, shared by every worker.
pub struct Connections {
    permits: Arc<Semaphore>,
    max: usize,
    open: IntGauge,
    limit_reached: IntCounter,
    at_limit: AtomicBool,
}

impl Connections {
    /// Registers `slogate_connections_open` and `slogate_connection_limit_reached_total`.
    pub fn new(max: usize, registry: &Registry) -> Result<Connections, String> {
        let open = IntGauge::new(
            "slogate_connections_open",
            "Client connections open (the limit is server.max_connections).",
        )
        .map_err(|e| e.to_string())?;
        let limit_reached = IntCounter::new(
            "slogate_connection_limit_reached_total",
            "Times the client connection limit (server.max_connections) was reached; \
             new connections then wait in the kernel's listen queue until one closes.",
        )
        .map_err(|e| e.to_string())?;
        for c in [
            Box::new(open.clone()) as Box<dyn slogate_metrics::prometheus::core::Collector>,
            Box::new(limit_reached.clone()),
        ] {
            registry
                .register(c)
                .map_err(|e| format!("cannot register metrics: {e}"))?;
        }
        Ok(Connections {
            permits: Arc::new(Semaphore::new(max)),
            max,
            open,
            limit_reached,
            at_limit: AtomicBool::new(false),
        })
    }

    /// Waits for room for one more connection (HAProxy's `maxconn`: past the limit, slogate
    /// stops accepting and new connections wait in the listen queue; none is reset).
    async fn room(&self) -> OwnedSemaphorePermit {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !self.at_limit.swap(true, Ordering::Relaxed) {
                    self.limit_reached.inc();
                    tracing::warn!(
                        max_connections = self.max,
                        "connection limit reached: new connections wait in the listen queue \
                         until one closes (server.max_connections)"
                    );
                }
                let p = self.permits.clone().acquire_owned().await;
                p.expect("the connection semaphore is never closed")
            }
        };
        if self.permits.available_permits() > self.max / 10 {
            self.at_limit.store(false, Ordering::Relaxed);
        }
        permit
    }

    /// An accepted connection takes the room it waited for.
    fn open_slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            _permit: permit,
            _open: Counted::new(&self.open),
        }
    }

    /// Connections open now.
    fn open(&self) -> i64 {
        self.open.get()
    }
}

/// A connection's place under the limit, given back when the connection ends.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _open: Counted,
}

/// The proxy's listeners as a pingora service.
pub struct Listeners {
    rt: &'static Runtime,
    endpoints: Vec<Endpoint>,
    connections: &'static Connections,
}

impl Listeners {
    /// Listeners for `endpoints`, serving with `rt`.
    pub fn new(
        rt: &'static Runtime,
        endpoints: Vec<Endpoint>,
        connections: &'static Connections,
    ) -> Self {
        Listeners {
            rt,
            endpoints,
            connections,
        }
    }
}

/// A bound listening socket, shareable by the workers (each registers it with its runtime).
enum Socket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Socket {
    fn local_port(&self) -> Option<u16> {
        match self {
            Socket::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Socket::Unix(_) => None,
        }
    }

    fn try_clone(&self) -> io::Result<Socket> {
        Ok(match self {
            Socket::Tcp(l) => Socket::Tcp(l.try_clone()?),
            Socket::Unix(l) => Socket::Unix(l.try_clone()?),
        })
    }
}

#[async_trait]
impl Service for Listeners {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        mut shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let mut sockets = Vec::with_capacity(self.endpoints.len());
        for endpoint in &self.endpoints {
            match bind(&endpoint.bind, fds.as_ref()).await {
                Ok(s) => sockets.push((s, endpoint.tls.clone())),
                Err(e) => cannot_listen(None, &endpoint.bind, e),
            }
        }
        let threads = self.rt.config.server.threads.max(1);
        let spawned = spawn_workers(
            self.rt,
            self.connections,
            &sockets,
            threads,
            &shutdown,
            AfterShutdown::KeepServing,
        );
        if let Err(e) = spawned {
            tracing::error!("{e}");
            std::process::exit(1);
        }
        self.rt
            .listening
            .store(true, std::sync::atomic::Ordering::Release);
        // The sockets stay open here too: pingora's table (when it has one) refers to them.
        let _keep = sockets;
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        // The workers stopped accepting and let their connections finish their requests;
        // pingora waits out the grace period, then ends the process.
        while self.connections.open() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn name(&self) -> &str {
        "slogate proxy"
    }

    fn threads(&self) -> Option<usize> {
        // This runtime only binds and waits; the workers have their own.
        Some(1)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(self.endpoints.iter().map(|e| e.bind.key()).collect())
    }
}

/// What a worker does once its accept loops have stopped (on shutdown).
#[derive(Clone, Copy, Debug)]
pub(crate) enum AfterShutdown {
    /// Keep serving the connections still open until the process ends (pingora ends it
    /// after the grace period).
    KeepServing,
    /// Give the open connections up to this long to finish their requests, then end the
    /// worker thread: its runtime and every task on it (connections, upstream connections)
    /// are dropped.
    Stop(Duration),
}

/// Starts `threads` worker threads, each accepting on (a duplicate of) every socket.
fn spawn_workers(
    rt: &'static Runtime,
    connections: &'static Connections,
    sockets: &[(Socket, Option<TlsAcceptor>)],
    threads: usize,
    shutdown: &ShutdownWatch,
    after: AfterShutdown,
) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let mut mine = Vec::with_capacity(sockets.len());
        for (s, tls) in sockets {
            match s.try_clone() {
                Ok(c) => mine.push((c, tls.clone())),
                Err(e) => {
                    return Err(format!(
                        "cannot share a listening socket with worker {i}: {e}"
                    ))
                }
            }
        }
        let shutdown = shutdown.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("slogate-w{i}"))
            .spawn(move || worker(i, rt, connections, mine, shutdown, after));
        match spawned {
            Ok(w) => workers.push(w),
            Err(e) => return Err(format!("cannot start worker thread {i}: {e}")),
        }
    }
    Ok(workers)
}

/// Serves plain HTTP on `listener` with `rt.config.server.threads` workers (as [`Listeners`]
/// does, without pingora) until `shutdown` turns true; then each worker gives its open
/// connections up to `grace` and ends. For [`crate::in_process`].
pub(crate) fn serve_in_process(
    rt: &'static Runtime,
    connections: &'static Connections,
    listener: std::net::TcpListener,
    shutdown: &ShutdownWatch,
    grace: Duration,
) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    let fail = |e: io::Error| format!("cannot listen: {e}");
    listener.set_nonblocking(true).map_err(fail)?;
    relisten(socket2::SockRef::from(&listener)).map_err(fail)?;
    let threads = rt.config.server.threads.max(1);
    let sockets = [(Socket::Tcp(listener), None)];
    spawn_workers(
        rt,
        connections,
        &sockets,
        threads,
        shutdown,
        AfterShutdown::Stop(grace),
    )
}

/// One worker thread: a single-threaded runtime accepting on every listener.
fn worker(
    index: usize,
    rt: &'static Runtime,
    connections: &'static Connections,
    sockets: Vec<(Socket, Option<TlsAcceptor>)>,
    shutdown: ShutdownWatch,
    after: AfterShutdown,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("worker {index}: cannot build its runtime: {e}");
            std::process::exit(1);
        }
    };
    super::pool::set_worker(index);
    runtime.block_on(async move {
        // Idle upstream connections are closed after upstream.idle_timeout even when no
        // request comes to take them (so slogate, not the app, ends them).
        tokio::spawn(async move {
            let idle = rt.config.upstream.idle_timeout;
            let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(250)));
            loop {
                tick.tick().await;
                for backend in rt.backends.all() {
                    backend.pool.sweep(idle);
                }
            }
        });
        let mut loops = Vec::with_capacity(sockets.len());
        for (socket, tls) in sockets {
            let port = socket.local_port();
            let accepted = match socket {
                Socket::Tcp(l) => TcpListener::from_std(l).map(Accept::Tcp),
                Socket::Unix(l) => UnixListener::from_std(l).map(Accept::Unix),
            };
            match accepted {
                Ok(a) => loops.push(tokio::spawn(accept_loop(
                    rt,
                    connections,
                    a,
                    port,
                    tls,
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!("worker {index}: cannot register a listener: {e}"),
            }
        }
        for l in loops {
            let _ = l.await;
        }
        match after {
            // Keep serving the connections still open until the process ends.
            AfterShutdown::KeepServing => std::future::pending::<()>().await,
            AfterShutdown::Stop(grace) => {
                let deadline = tokio::time::Instant::now() + grace;
                while connections.open() > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // This worker's idle upstream connections go with its runtime.
                for backend in rt.backends.all() {
                    backend.pool.sweep(Duration::ZERO);
                }
            }
        }
    });
}

enum Accept {
    Tcp(TcpListener),
    Unix(UnixListener),
}

async fn accept_loop(
    rt: &'static Runtime,
    connections: &'static Connections,
    listener: Accept,
    port: Option<u16>,
    tls: Option<TlsAcceptor>,
    mut shutdown: ShutdownWatch,
) {
    let port_value = port.map(HeaderValue::from);
    loop {
        let room = tokio::select! {
            r = connections.room() => r,
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            a = accept(&listener) => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors: accept() would fail at once in a loop; let others close.
                let emfile = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                tracing::warn!("accept failed on port {port:?}: {e}");
                if emfile {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let slot = connections.open_slot(room);
        let conn = Conn {
            peer,
            peer_value: peer.and_then(|p| HeaderValue::from_str(&p.to_string()).ok()),
            port_value: port_value.clone(),
            tls: tls.is_some(),
        };
        tokio::spawn(connection(
            rt,
            conn,
            stream,
            tls.clone(),
            slot,
            shutdown.clone(),
        ));
    }
}

/// One client connection's task, from accept to close; it holds the connection's `slot`.
///
/// The task is sized for the largest state its future can be in, and an idle keep-alive
/// connection holds it for its whole life: the TLS handshake and a TLS stream (rustls'
/// connection state), HTTP/2 and Unix sockets are boxed, so that the task of a plain TCP
/// HTTP/1.1 connection (most connections) is sized for that alone: ~1.5 KB, not ~9 KB.
async fn connection(
    rt: &'static Runtime,
    conn: Conn,
    stream: Stream,
    tls: Option<TlsAcceptor>,
    slot: Slot,
    shutdown: ShutdownWatch,
) {
    match stream {
        Stream::Tcp(s) => match tls {
            None => serve(rt, conn, s, false, shutdown).await,
            Some(acceptor) => Box::pin(serve_tls(rt, conn, s, acceptor, shutdown)).await,
        },
        Stream::Unix(s) => Box::pin(serve(rt, conn, s, false, shutdown)).await,
    }
    drop(slot);
}

/// Serves a TLS client connection: the handshake within `client_header_timeout`, then HTTP/2
/// if ALPN chose it, else HTTP/1.1.
async fn serve_tls(
    rt: &'static Runtime,
    conn: Conn,
    s: TcpStream,
    acceptor: TlsAcceptor,
    shutdown: ShutdownWatch,
) {
    let limit = rt.config.server.client_header_timeout;
    match tokio::time::timeout(limit, acceptor.accept(s)).await {
        Ok(Ok(s)) => {
            let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
            serve(rt, conn, s, h2, shutdown).await
        }
        Ok(Err(e)) => tracing::debug!("TLS handshake: {e}"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(tokio::net::UnixStream),
}

/// A listening socket registered with the current runtime.
pub(crate) struct Listener(Accept);

impl Listener {
    /// Binds `bind`, or takes its socket over from the process being upgraded, as the
    /// proxy's listeners do.
    pub(crate) async fn bind(bind: &Bind, fds: Option<&ListenFds>) -> io::Result<Listener> {
        Ok(Listener(match self::bind(bind, fds).await? {
            Socket::Tcp(l) => Accept::Tcp(TcpListener::from_std(l)?),
            Socket::Unix(l) => Accept::Unix(UnixListener::from_std(l)?),
        }))
    }

    /// The next connection and its peer's address (none over a Unix socket).
    pub(crate) async fn accept(&self) -> io::Result<(Stream, Option<IpAddr>)> {
        accept(&self.0).await
    }
}

async fn accept(listener: &Accept) -> io::Result<(Stream, Option<IpAddr>)> {
    match listener {
        Accept::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            // Small answers leave at once (as nginx's tcp_nodelay).
            let _ = s.set_nodelay(true);
            Ok((Stream::Tcp(s), Some(peer.ip())))
        }
        Accept::Unix(l) => {
            let (s, _) = l.accept().await?;
            Ok((Stream::Unix(s), None))
        }
    }
}

/// Serves one client connection with hyper until it closes or the process shuts down.
async fn serve<I>(rt: &'static Runtime, conn: Conn, io: I, h2: bool, shutdown: ShutdownWatch)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + TryWrite + Unpin + Send + 'static,
{
    if h2 {
        // An HTTP/2 connection's state is several KB: boxed, so that an HTTP/1.1 connection's
        // future (most connections, and every idle keep-alive one) is not sized for it.
        return Box::pin(serve_h2(rt, conn, io, shutdown)).await;
    }
    serve_h1(rt, conn, io, shutdown).await
}

/// Serves one HTTP/2 client connection (TLS with ALPN `h2`).
async fn serve_h2<I>(rt: &'static Runtime, conn: Conn, io: I, mut shutdown: ShutdownWatch)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let handling = Box::pin(handler::handle(rt, conn.clone(), req));
        async move { Ok::<_, std::convert::Infallible>(handling.await) }
    });
    let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service);
    serve_until_shutdown!(served, shutdown);
}

/// Serves one HTTP/1.1 client connection.
async fn serve_h1<I>(rt: &'static Runtime, conn: Conn, io: I, mut shutdown: ShutdownWatch)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + TryWrite + Unpin + Send + 'static,
{
    let head = Arc::new(HeadWatch::default());
    let watch = head.clone();
    let service = service_fn(move |req| {
        let (conn, watch) = (conn.clone(), watch.clone());
        watch.request_began();
        // The request's future (~5 KB of state) lives on the heap only while the request
        // is handled: hyper keeps room for one in-flight future per connection for the
        // connection's life, and an idle keep-alive connection should hold none of it.
        let handling = Box::pin(handler::handle(rt, conn, req));
        async move {
            let resp = handling.await;
            watch.request_answered();
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    // hyper's head timer also runs while a keep-alive connection waits for its next
    // request: the shorter of the two limits bounds both.
    let server = &rt.config.server;
    let head_timeout = match server.keepalive_timeout.is_zero() {
        true => server.client_header_timeout,
        false => server.client_header_timeout.min(server.keepalive_timeout),
    };
    let io = HeadIo {
        io,
        watch: head.clone(),
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .keep_alive(!server.keepalive_timeout.is_zero())
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(served);
    let end = tokio::select! {
        r = served.as_mut() => r,
        _ = shutdown.changed() => {
            served.as_mut().graceful_shutdown();
            served.as_mut().await
        }
    };
    if let Err(e) = &end {
        if e.is_timeout() && head.partial.load(Ordering::Relaxed) {
            // A request head begun and not finished in time (slowloris): answered 408 as
            // the connection closes (HAProxy's `timeout http-request`; nginx closes without
            // a word). An idle keep-alive connection that times out is closed silently.
            head.timed_out.store(true, Ordering::Relaxed);
        }
    }
    log_end(end);
}

/// What a connection's reads tell about its request heads: whether bytes of a new head have
/// arrived since the last request was answered.
#[derive(Default)]
struct HeadWatch {
    /// A request is being handled; what is read now is its body.
    in_request: AtomicBool,
    /// Bytes of a next request head have arrived.
    partial: AtomicBool,
    /// The head timer fired with a head begun: the 408 goes out as the connection closes.
    timed_out: AtomicBool,
}

impl HeadWatch {
    fn request_began(&self) {
        self.in_request.store(true, Ordering::Relaxed);
        self.partial.store(false, Ordering::Relaxed);
    }

    fn request_answered(&self) {
        self.in_request.store(false, Ordering::Relaxed);
    }
}

/// A client socket that notes the arrival of request heads (see [`HeadWatch`]) and, closed
/// after a head timed out, sends the 408.
struct HeadIo<I: TryWrite> {
    io: I,
    watch: Arc<HeadWatch>,
}

impl<I: TryWrite> Drop for HeadIo<I> {
    fn drop(&mut self) {
        if self.watch.timed_out.load(Ordering::Relaxed) {
            // Best effort, without waiting: a client still sending its head has an empty
            // receive window on our side of the story, and the answer is small.
            self.io.try_write_now(request_timeout());
        }
    }
}

impl<I: tokio::io::AsyncRead + TryWrite + Unpin> tokio::io::AsyncRead for HeadIo<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && !self.watch.in_request.load(Ordering::Relaxed) {
            self.watch.partial.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<I: tokio::io::AsyncWrite + TryWrite + Unpin> tokio::io::AsyncWrite for HeadIo<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A write that never waits (for the 408 sent as a timed-out connection closes).
pub trait TryWrite {
    /// Writes what the socket takes now; the rest is dropped.
    fn try_write_now(&self, bytes: &[u8]);
}

impl TryWrite for TcpStream {
    fn try_write_now(&self, bytes: &[u8]) {
        let _ = self.try_write(bytes);
    }
}

impl TryWrite for tokio::net::UnixStream {
    fn try_write_now(&self, bytes: &[u8]) {
        let _ = self.try_write(bytes);
    }
}

impl TryWrite for pingora_rustls::ServerTlsStream<TcpStream> {
    fn try_write_now(&self, _bytes: &[u8]) {
        // A TLS record needs the session's state machine; such a client just sees the close.
    }
}

/// The 408 answer, with a page like nginx's.
fn request_timeout() -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        let page = crate::pages::default_page(408);
        let mut a = format!(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            page.len()
        )
        .into_bytes();
        a.extend_from_slice(&page);
        a
    })
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

/// Says which socket (of which side `service`, if not the proxy's) could not be bound and
/// why, then ends the process: pingora's own listeners panic here.
pub(crate) fn cannot_listen(service: Option<&str>, bind: &Bind, e: io::Error) -> ! {
    let what = bind.key();
    let service = service.map(|s| format!("{s}: ")).unwrap_or_default();
    tracing::error!("{service}cannot listen on {what}: {e}");
    eprintln!("slogate: {service}cannot listen on {what}: {e}");
    std::process::exit(1)
}

/// Binds `bind`, or takes its socket from `fds` (handed over by the process being upgraded)
/// and records a new one there for the next upgrade.
async fn bind(bind: &Bind, fds: Option<&ListenFds>) -> io::Result<Socket> {
    let key = bind.key();
    if let Some(fd) = fds.and_then(|t| t.lock().get(&key).copied()) {
        let owned = super::fd::adopt(fd);
        let socket = match bind {
            Bind::Tcp(_) => Socket::Tcp(owned.into()),
            Bind::Unix(_) => Socket::Unix(owned.into()),
        };
        match &socket {
            Socket::Tcp(l) => {
                relisten(socket2::SockRef::from(l))?;
                l.set_nonblocking(true)?;
            }
            Socket::Unix(l) => {
                relisten(socket2::SockRef::from(l))?;
                l.set_nonblocking(true)?;
            }
        }
        return Ok(socket);
    }
    let socket = match bind {
        Bind::Tcp(addr) => Socket::Tcp(bind_tcp(addr).await?),
        Bind::Unix(path) => Socket::Unix(bind_unix(path)?),
    };
    if let Some(t) = fds {
        let fd = match &socket {
            Socket::Tcp(l) => l.as_raw_fd(),
            Socket::Unix(l) => l.as_raw_fd(),
        };
        t.lock().add(key, fd);
    }
    Ok(socket)
}

async fn bind_tcp(addr: &str) -> io::Result<std::net::TcpListener> {
    let sock_addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "resolves to no address"))?;
    // A restarted slogate may find the port held by connections in TIME_WAIT for a moment.
    let mut tries = 0;
    loop {
        let socket = match sock_addr {
            std::net::SocketAddr::V4(_) => TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(sock_addr) {
            Ok(()) => {
                let l = socket.listen(BACKLOG as u32)?;
                return l.into_std();
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 5 => {
                tries += 1;
                tracing::warn!("{addr} is in use; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn bind_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    // A socket file left by a process that is gone would make bind fail.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    // Readable and writable by every user, as pingora's Unix listeners.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    l.set_nonblocking(true)?;
    relisten(socket2::SockRef::from(&l))?;
    Ok(l)
}

/// Sets the listen queue of an already listening socket (Linux updates it in place).
fn relisten(socket: socket2::SockRef<'_>) -> io::Result<()> {
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle keep-alive connection holds its task for its whole life: a plain HTTP/1.1
    /// connection's must not be sized for TLS or HTTP/2 (it was ~9 KB, over half of an idle
    /// connection's memory, before those were boxed).
    #[tokio::test]
    async fn a_plain_connection_task_is_not_sized_for_tls_or_http2() {
        let config = slogate_config::parse_str("test", "upstream: {backends: ['127.0.0.1:9']}")
            .expect("valid configuration");
        let registry = Registry::new();
        let rt: &'static Runtime =
            Box::leak(Box::new(Runtime::new(config, &registry).expect("runtime")));
        let connections: &'static Connections =
            Box::leak(Box::new(Connections::new(4, &registry).expect("counter")));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let slot = connections.open_slot(connections.room().await);
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let conn = Conn {
            peer: None,
            peer_value: None,
            port_value: None,
            tls: false,
        };
        let task = connection(rt, conn, Stream::Tcp(client), None, slot, shutdown);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "a plain connection's task is {size} bytes");
    }
}
