//! The app's side of an exchange: a connection to it ([`AppConn`]) and the body of its
//! answer ([`AppBody`]), through hyper's HTTP/1.1 client or slogate's own
//! (`upstream.client`).
//!
//! slogate's own client ([`Conn`]) has no task and no channel: the request's task writes the
//! request (head and a small body in one write), reads the answer's head and frames it with
//! [`slogate_core::h1`], and the answer's body reads the socket as the client's connection
//! asks for more. Either body puts its connection back in its pool when the answer ended
//! cleanly and the request went out whole; otherwise the connection is closed.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use arrayvec::ArrayVec;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use slogate_core::h1::{self, ChunkedDecoder, Framing};
use slogate_metrics::prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::body::{BoxError, UpBody};
use super::pool::Pool;
use super::Counted;

/// The largest answer head accepted (nginx's `proxy_buffer_size` is 4–8 KiB; Rails' cookies
/// and CSP headers can be long).
const MAX_ANSWER_HEAD: usize = 64 * 1024;

/// The least room made for a read from the app's socket.
const MIN_READ: usize = 8 * 1024;

/// The most read from the app's socket at once (a large answer's body), as hyper's read
/// buffer grows to a few hundred KiB: a 200 KB answer that the app has already written is
/// taken in one or two reads and passed on as one or two chunks (the response buffer holds
/// `upstream.buffering.memory` plus at most one such chunk in memory before its file).
const MAX_READ: usize = 256 * 1024;

/// The most buffer an idle pooled connection keeps.
const MAX_IDLE_BUFFER: usize = 16 * 1024;

/// A request body up to this size goes out in the same write as the head.
const JOINED_BODY: usize = 16 * 1024;

/// Header slots tried first (Rails answers carry about 15); all [`h1::MAX_HEADERS`] only
/// when an answer has more.
const FEW_HEADERS: usize = 32;

/// A connection to the app, ready for a request.
pub enum AppConn {
    /// hyper's client connection (its driver runs as a task of its own).
    Hyper(SendRequest<UpBody>),
    /// slogate's own.
    Slogate(Box<Conn>),
}

impl AppConn {
    /// Whether the app closed it (or it cannot carry a request).
    pub fn is_closed(&self) -> bool {
        match self {
            AppConn::Hyper(s) => s.is_closed(),
            AppConn::Slogate(c) => c.is_closed(),
        }
    }
}

/// A socket to the app.
enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Io {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Io::Tcp(s) => s.poll_read_ready(cx),
            Io::Unix(s) => s.poll_read_ready(cx),
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Tcp(s) => s.try_read(buf),
            Io::Unix(s) => s.try_read(buf),
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_write(cx, b),
            Io::Unix(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// slogate's own HTTP/1.1 connection to the app.
pub struct Conn {
    io: Io,
    /// What was read and not yet used: the answer's head, then its body.
    buf: BytesMut,
    /// The request head being written (its capacity kept from one request to the next).
    out: Vec<u8>,
    /// Room made for the first read of an answer: the size of the last answer (a large
    /// answer the app has already written comes in one read, as hyper's adaptive buffer
    /// takes it).
    read_size: usize,
    /// Counted in `slogate_upstream_connections_open` while it lives.
    _open: Counted,
}

impl Conn {
    /// A TCP connection.
    pub fn tcp(s: TcpStream, open: &IntGauge) -> Conn {
        Conn::new(Io::Tcp(s), open)
    }

    /// A Unix-socket connection.
    pub fn unix(s: UnixStream, open: &IntGauge) -> Conn {
        Conn::new(Io::Unix(s), open)
    }

    fn new(io: Io, open: &IntGauge) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            read_size: MIN_READ,
            _open: Counted::new(open),
        }
    }

    /// Whether the app closed the connection while it was idle, or sent something
    /// unasked: either way it cannot carry a request. Costs no system call while the
    /// socket has not become readable.
    fn is_closed(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            // Readable: the app's FIN or bytes it should not have sent, unless the
            // readiness is stale (a read that filled the buffer to the byte leaves it set).
            Poll::Ready(Ok(())) => !matches!(
                self.io.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }
}

/// Why an exchange on slogate's own connection failed.
#[derive(Debug)]
pub enum SendError {
    /// Nothing of the request was written: it can be sent again anywhere.
    Unsent(io::Error),
    /// The app closed or reset the connection before any byte of an answer (on a reused
    /// connection, most likely its keep-alive timeout).
    Closed(String),
    /// The app took none of the request for `upstream.write_timeout` (nginx's
    /// `proxy_send_timeout`): answered 504, as nginx does.
    TimedOut(String),
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Unsent(e) => write!(f, "connection closed before the request: {e}"),
            SendError::Closed(why) | SendError::TimedOut(why) | SendError::Failed(why) => {
                f.write_str(why)
            }
        }
    }
}

/// The request line of a request for the app.
pub struct Head<'a> {
    /// Its method.
    pub method: &'a Method,
    /// Its target, in origin form (path and query).
    pub target: &'a str,
    /// The client declared a `Content-Length` (an empty body keeps one, of 0).
    pub declared_length: bool,
}

/// Sends a request on `conn` (its `head`, the header lines `lines` writes, which leave out
/// `Content-Length`, `Transfer-Encoding` and `Expect`, and `body`) and reads the head of the
/// answer. Each write waits at most `write_timeout` for the app to take bytes.
pub async fn send(
    mut conn: Box<Conn>,
    head: Head<'_>,
    lines: impl FnOnce(&mut Vec<u8>),
    body: UpBody,
    write_timeout: Duration,
) -> Result<Response<AppBody>, SendError> {
    let head_request = *head.method == Method::HEAD;
    let whole = write_request(&mut conn, &head, lines, body, write_timeout).await?;
    let (head, resp) = read_head(&mut conn, head_request).await?;
    // The body's state, and the room the next answer's first read gets (this one's size).
    let (state, read_size) = match head.framing {
        Framing::Length(n) => {
            let size = usize::try_from(n)
                .unwrap_or(MAX_READ)
                .saturating_add(head.len);
            (State::Length(n), size.clamp(MIN_READ, MAX_READ))
        }
        Framing::None => (State::Length(0), MIN_READ),
        Framing::Chunked => (State::Chunked(ChunkedDecoder::default()), 2 * MIN_READ),
        Framing::UntilClose => (State::UntilClose, 2 * MIN_READ),
    };
    conn.read_size = read_size;
    let body = SlogateBody {
        conn: Some(conn),
        state,
        keep: head.keep_alive && whole,
        pool: None,
    };
    Ok(resp.map(|()| AppBody::Slogate(body)))
}

/// Writes the request; whether it all went (the app may answer before taking all of a
/// streamed body).
async fn write_request(
    conn: &mut Conn,
    head: &Head<'_>,
    lines: impl FnOnce(&mut Vec<u8>),
    body: UpBody,
    limit: Duration,
) -> Result<bool, SendError> {
    let out = &mut conn.out;
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // The framing is slogate's, written below from the body it sends. `Expect:
    // 100-continue` was the client's to slogate (hyper answered it): the body follows the
    // head at once, and an app's `100 Continue` would read as an early answer.
    lines(out);
    let length = |out: &mut Vec<u8>, n: u64| {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
    };
    match body {
        UpBody::Full(None) => {
            let expects_body = matches!(*head.method, Method::POST | Method::PUT | Method::PATCH);
            if head.declared_length || expects_body {
                length(out, 0);
            } else {
                out.extend_from_slice(b"\r\n");
            }
            first_write(conn, limit).await?;
            Ok(true)
        }
        UpBody::Full(Some(b)) => {
            length(out, b.len() as u64);
            if b.len() <= JOINED_BODY {
                out.extend_from_slice(&b);
                first_write(conn, limit).await?;
            } else {
                first_write(conn, limit).await?;
                write_body(conn, &b, limit).await?;
            }
            Ok(true)
        }
        UpBody::Streaming {
            first,
            mut rest,
            length: declared,
        } => {
            let chunked = declared.is_none();
            match declared {
                Some(n) => length(out, n),
                None => out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n"),
            }
            first_write(conn, limit).await?;
            let mut sent = 0u64;
            let mut next = first;
            loop {
                let chunk = match next.take() {
                    Some(c) => c,
                    None => match rest.recv().await {
                        Some(Ok(c)) => c,
                        Some(Err(why)) => {
                            return Err(SendError::Failed(format!("request body: {why}")))
                        }
                        None => break,
                    },
                };
                if chunk.is_empty() {
                    continue;
                }
                if answered_early(conn) {
                    return Ok(false);
                }
                sent += chunk.len() as u64;
                if declared.is_some_and(|n| sent > n) {
                    return Err(SendError::Failed(
                        "request body longer than its length".into(),
                    ));
                }
                if chunked {
                    let size = format!("{:x}\r\n", chunk.len());
                    write_body(conn, size.as_bytes(), limit).await?;
                    write_body(conn, &chunk, limit).await?;
                    write_body(conn, b"\r\n", limit).await?;
                } else {
                    write_body(conn, &chunk, limit).await?;
                }
            }
            if let Some(n) = declared.filter(|&n| sent < n) {
                return Err(SendError::Failed(format!(
                    "request body ended after {sent} of {n} bytes"
                )));
            }
            if chunked {
                write_body(conn, b"0\r\n\r\n", limit).await?;
            }
            Ok(true)
        }
    }
}

/// Writes bytes of the request body (after its head).
async fn write_body(conn: &mut Conn, bytes: &[u8], limit: Duration) -> Result<(), SendError> {
    match super::handler::within(limit, conn.io.write_all(bytes)).await {
        Ok(written) => written.map_err(failed("request body")),
        Err(_) => Err(write_timed_out(limit)),
    }
}

fn write_timed_out(limit: Duration) -> SendError {
    SendError::TimedOut(format!(
        "upstream write timed out: the app took nothing of the request for {limit:?} (upstream.write_timeout)"
    ))
}

fn failed(what: &'static str) -> impl Fn(io::Error) -> SendError {
    move |e| SendError::Failed(format!("upstream write ({what}): {e}"))
}

/// Writes `conn.out`, the request head (with a small body): `Unsent` when nothing of it
/// left.
async fn first_write(conn: &mut Conn, limit: Duration) -> Result<(), SendError> {
    let mut written = 0;
    while written < conn.out.len() {
        let wrote = super::handler::within(limit, conn.io.write(&conn.out[written..])).await;
        let Ok(wrote) = wrote else {
            return Err(write_timed_out(limit));
        };
        match wrote {
            Ok(0) => {
                let e = io::Error::from(io::ErrorKind::WriteZero);
                return Err(if written == 0 {
                    SendError::Unsent(e)
                } else {
                    failed("request head")(e)
                });
            }
            Ok(n) => written += n,
            Err(e) if written == 0 => return Err(SendError::Unsent(e)),
            Err(e) => return Err(failed("request head")(e)),
        }
    }
    Ok(())
}

/// Whether the app has started answering (or closed) while the request body still goes
/// out: the rest of the body is not sent, and the connection is not reused.
fn answered_early(conn: &Conn) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(conn.io.poll_read_ready(&mut cx), Poll::Ready(_))
}

/// Reads the answer's final head (interim 1xx answers are skipped).
async fn read_head(
    conn: &mut Conn,
    head_request: bool,
) -> Result<(h1::Head, Response<()>), SendError> {
    let mut answered = false;
    loop {
        if !conn.buf.is_empty() {
            answered = true;
            if let Some(done) = parse(conn, head_request)? {
                if done.0.is_interim() {
                    continue;
                }
                if done.0.status == 101 {
                    return Err(SendError::Failed(
                        "upstream answered 101 to a request that asked for no upgrade".into(),
                    ));
                }
                return Ok(done);
            }
            if conn.buf.len() > MAX_ANSWER_HEAD {
                return Err(SendError::Failed("upstream sent too big a header".into()));
            }
        }
        let spare = conn.buf.capacity() - conn.buf.len();
        if spare < 1024 || (conn.buf.is_empty() && spare < conn.read_size) {
            conn.buf.reserve(conn.read_size);
        }
        let n = match std::future::poll_fn(|cx| {
            tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf)
        })
        .await
        {
            Ok(n) => n,
            Err(e) if !answered => return Err(SendError::Closed(format!("upstream: {e}"))),
            Err(e) => return Err(SendError::Failed(format!("upstream read: {e}"))),
        };
        if n == 0 {
            return Err(if answered {
                SendError::Failed("upstream closed the connection within the answer's head".into())
            } else {
                SendError::Closed("upstream closed the connection before answering".into())
            });
        }
    }
}

/// Parses the head at the start of `conn.buf`: the head and a response with its status,
/// version and headers (the values share the bytes read), the head's bytes taken out.
fn parse(
    conn: &mut Conn,
    head_request: bool,
) -> Result<Option<(h1::Head, Response<()>)>, SendError> {
    // Where each header's name and value lie in the buffer.
    let mut spots: ArrayVec<(HeaderName, usize, usize), { h1::MAX_HEADERS }> = ArrayVec::new();
    let head = {
        let mut few = [MaybeUninit::uninit(); FEW_HEADERS];
        match h1::parse_head(&conn.buf, &mut few, head_request) {
            Err(h1::HeadError::TooManyHeaders) => {
                let mut all = [MaybeUninit::uninit(); h1::MAX_HEADERS];
                collect(
                    h1::parse_head(&conn.buf, &mut all, head_request),
                    &conn.buf,
                    &mut spots,
                )?
            }
            parsed => collect(parsed, &conn.buf, &mut spots)?,
        }
    };
    let Some(head) = head else {
        return Ok(None);
    };
    let bytes = conn.buf.split_to(head.len).freeze();
    if head.is_interim() {
        return Ok(Some((head, Response::new(()))));
    }
    // Room for the headers slogate adds to every answer (X-Request-Id).
    let mut headers = HeaderMap::with_capacity(spots.len() + 1);
    // A Content-Length beside Transfer-Encoding is not the body's length: not passed on.
    let length_is_framing = matches!(head.framing, Framing::Length(_) | Framing::None);
    // Drained, not moved: the array is some kilobytes.
    for (name, start, end) in spots.drain(..) {
        if name == CONTENT_LENGTH && !length_is_framing {
            continue;
        }
        // Hop-by-hop fields are not passed on: dropped here, unless `Connection` names
        // fields of its own (the engine's strip then removes it with them).
        if super::head::hop_by_hop_index(name.as_str()).is_some()
            && (name != CONNECTION || names_only_itself(&bytes[start..end]))
        {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..end))
            .map_err(|_| SendError::Failed("upstream: invalid header value".into()))?;
        headers.append(name, value);
    }
    let mut resp = Response::new(());
    *resp.status_mut() = StatusCode::from_u16(head.status)
        .map_err(|_| SendError::Failed(format!("upstream: invalid status {}", head.status)))?;
    *resp.version_mut() = if head.minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    *resp.headers_mut() = headers;
    Ok(Some((head, resp)))
}

/// Whether a `Connection` value names no field but the connection's own options.
fn names_only_itself(value: &[u8]) -> bool {
    value.split(|&b| b == b',').all(|t| {
        let t = t.trim_ascii();
        t.is_empty() || t.eq_ignore_ascii_case(b"close") || t.eq_ignore_ascii_case(b"keep-alive")
    })
}

/// The name of a header Rails, Puma and nginx send on most answers, spelled as they spell
/// it: matched as written, where [`HeaderName::from_bytes`] lowercases every name into a
/// scratch buffer first (~300 instructions a name).
fn common_name(name: &str) -> Option<HeaderName> {
    use http::header;
    Some(match name {
        "Content-Type" | "content-type" => header::CONTENT_TYPE,
        "Content-Length" | "content-length" => header::CONTENT_LENGTH,
        "Date" | "date" => header::DATE,
        "Server" | "server" => header::SERVER,
        "Connection" | "connection" => header::CONNECTION,
        "Cache-Control" | "cache-control" => header::CACHE_CONTROL,
        "ETag" | "etag" => header::ETAG,
        "Vary" | "vary" => header::VARY,
        "Set-Cookie" | "set-cookie" => header::SET_COOKIE,
        "Transfer-Encoding" | "transfer-encoding" => header::TRANSFER_ENCODING,
        "Content-Encoding" | "content-encoding" => header::CONTENT_ENCODING,
        "Referrer-Policy" | "referrer-policy" => header::REFERRER_POLICY,
        "X-Content-Type-Options" | "x-content-type-options" => header::X_CONTENT_TYPE_OPTIONS,
        "X-Frame-Options" | "x-frame-options" => header::X_FRAME_OPTIONS,
        "Last-Modified" | "last-modified" => header::LAST_MODIFIED,
        _ => return None,
    })
}

/// The head, with its headers' names and where their values lie in `buf` put in `spots`.
fn collect(
    parsed: Result<Option<(h1::Head, &[httparse::Header<'_>])>, h1::HeadError>,
    buf: &[u8],
    spots: &mut ArrayVec<(HeaderName, usize, usize), { h1::MAX_HEADERS }>,
) -> Result<Option<h1::Head>, SendError> {
    let Some((head, headers)) = parsed.map_err(|e| SendError::Failed(format!("upstream: {e}")))?
    else {
        return Ok(None);
    };
    let base = buf.as_ptr() as usize;
    for h in headers {
        let name = match common_name(h.name) {
            Some(name) => name,
            None => HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| SendError::Failed("upstream: invalid header name".into()))?,
        };
        let start = h.value.as_ptr() as usize - base;
        spots.push((name, start, start + h.value.len()));
    }
    Ok(Some(head))
}

/// How much of the answer's body is still to come.
enum State {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// The body of an answer on slogate's own connection.
pub struct SlogateBody {
    /// The connection, while the body is being read.
    conn: Option<Box<Conn>>,
    state: State,
    /// The answer allows another request on the connection, and the request went out whole.
    keep: bool,
    /// Where the connection goes back at the end, once the engine says it may.
    pool: Option<&'static Pool>,
}

impl SlogateBody {
    fn ended(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    fn end(&mut self) {
        self.state = State::Done;
        self.release();
    }

    /// Gives the connection back when the body ended cleanly with nothing after it.
    fn release(&mut self) {
        if !self.ended() || !self.keep {
            return;
        }
        if let (Some(pool), Some(mut conn)) = (self.pool, self.conn.take()) {
            if conn.buf.is_empty() {
                if conn.buf.capacity() > MAX_IDLE_BUFFER {
                    // An idle connection does not keep a large answer's buffer alive.
                    conn.buf = BytesMut::new();
                }
                pool.checkin(AppConn::Slogate(conn));
            }
        }
    }

    fn fail(&mut self, why: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        self.state = State::Done;
        self.keep = false;
        Poll::Ready(Some(Err(why.into())))
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.ended() {
                self.end();
                return Poll::Ready(None);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if !conn.buf.is_empty() {
                match &mut self.state {
                    State::Done => unreachable!("an ended body returns above"),
                    State::Length(left) => {
                        let n = conn
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        let data = conn.buf.split_to(n).freeze();
                        if *left == 0 {
                            self.end();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    State::Chunked(decoder) => {
                        let step = match decoder.decode(&conn.buf) {
                            Ok(step) => step,
                            Err(e) => return self.fail(format!("upstream body: {e}")),
                        };
                        let data = step.data.map(|r| {
                            conn.buf.advance(r.start);
                            conn.buf.split_to(r.len()).freeze()
                        });
                        if data.is_none() {
                            conn.buf.advance(step.consumed);
                        }
                        if step.done {
                            self.end();
                            return Poll::Ready(None);
                        }
                        if let Some(data) = data {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        continue;
                    }
                    State::UntilClose => {
                        let data = conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            if conn.buf.capacity() - conn.buf.len() < 4096 {
                // Room for what is still to come, up to MAX_READ: a large answer in few reads.
                let want = match self.state {
                    State::Length(left) => usize::try_from(left).unwrap_or(MAX_READ),
                    _ => MAX_READ,
                };
                conn.buf.reserve(want.clamp(MIN_READ, MAX_READ));
            }
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut conn.io),
                cx,
                &mut conn.buf
            )) {
                Ok(0) => {
                    if let State::UntilClose = self.state {
                        self.conn = None;
                        self.state = State::Done;
                        return Poll::Ready(None);
                    }
                    return self.fail("upstream closed the connection within the body".into());
                }
                Ok(_) => {}
                Err(e) => return self.fail(format!("upstream body: {e}")),
            }
        }
    }
}

/// The body of the app's answer.
pub enum AppBody {
    /// Through hyper's client, with the connection to give back at its end.
    Hyper {
        /// The body.
        body: Incoming,
        /// Its connection.
        conn: Option<SendRequest<UpBody>>,
        /// Where the connection goes back, once the engine says it may.
        pool: Option<&'static Pool>,
    },
    /// Through slogate's own.
    Slogate(SlogateBody),
}

impl AppBody {
    /// hyper's `body`, on `conn`.
    pub fn hyper(body: Incoming, conn: SendRequest<UpBody>) -> AppBody {
        AppBody::Hyper {
            body,
            conn: Some(conn),
            pool: None,
        }
    }

    /// The request went out whole: the connection goes back to `pool` when the answer
    /// ends cleanly (at once if it has already).
    pub fn reuse_into(&mut self, pool: &'static Pool) {
        match self {
            AppBody::Hyper { pool: p, .. } => {
                *p = Some(pool);
                self.release_hyper(false);
            }
            AppBody::Slogate(b) => {
                b.pool = Some(pool);
                b.release();
            }
        }
    }

    /// Gives hyper's connection back once its body `ended` (or says it has).
    fn release_hyper(&mut self, ended: bool) {
        if let AppBody::Hyper { body, conn, pool } = self {
            if let (true, Some(pool)) = (ended || body.is_end_stream(), *pool) {
                if let Some(c) = conn.take() {
                    pool.checkin(AppConn::Hyper(c));
                }
            }
        }
    }
}

impl Body for AppBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this {
            AppBody::Hyper { body, conn, .. } => {
                let frame = ready!(Pin::new(&mut *body).poll_frame(cx));
                match frame {
                    None => {
                        this.release_hyper(true);
                        Poll::Ready(None)
                    }
                    Some(Ok(f)) => {
                        this.release_hyper(false);
                        Poll::Ready(Some(Ok(f)))
                    }
                    Some(Err(e)) => {
                        *conn = None;
                        Poll::Ready(Some(Err(e.into())))
                    }
                }
            }
            AppBody::Slogate(b) => b.poll_data(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AppBody::Hyper { body, .. } => body.is_end_stream(),
            AppBody::Slogate(b) => b.ended(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AppBody::Hyper { body, .. } => body.size_hint(),
            AppBody::Slogate(b) => match b.state {
                State::Length(n) => SizeHint::with_exact(n),
                State::Done => SizeHint::with_exact(0),
                _ => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{EXPECT, TRANSFER_ENCODING};
    use http::Request;
    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn gauge() -> IntGauge {
        IntGauge::new("open", "open").unwrap()
    }

    fn pool() -> &'static Pool {
        Box::leak(Box::new(Pool::new(1, gauge())))
    }

    /// An app that reads one request head (and the body its Content-Length announces) per
    /// entry of `answers` on one connection, sends the entry's bytes in pieces of `piece`
    /// bytes, and closes after the last; the requests it read, in order.
    async fn app(
        answers: Vec<Vec<u8>>,
        piece: usize,
    ) -> (String, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = Vec::new();
            for answer in answers {
                let request = loop {
                    if let Some(end) = request_end(&buf) {
                        break buf.drain(..end).collect::<Vec<u8>>();
                    }
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return seen,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                seen.push(request);
                for p in answer.chunks(piece.max(1)) {
                    if s.write_all(p).await.is_err() {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            }
            seen
        });
        (addr, task)
    }

    /// Where the request at the start of `buf` ends (head, and a body by Content-Length or
    /// chunked).
    fn request_end(buf: &[u8]) -> Option<usize> {
        let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
        if let Some(l) = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
        {
            let end = head + l.trim().parse::<usize>().unwrap();
            return (buf.len() >= end).then_some(end);
        }
        if text.contains("transfer-encoding: chunked") {
            let end = buf[head..].windows(5).position(|w| w == b"0\r\n\r\n")? + head + 5;
            return Some(end);
        }
        Some(head)
    }

    async fn connect(addr: &str, open: &IntGauge) -> Box<Conn> {
        Box::new(Conn::tcp(TcpStream::connect(addr).await.unwrap(), open))
    }

    fn get(path: &str) -> Request<UpBody> {
        let mut r = Request::new(UpBody::empty());
        *r.uri_mut() = path.parse().unwrap();
        r.headers_mut()
            .insert(http::header::HOST, HeaderValue::from_static("app"));
        r
    }

    /// Sends `req` as the engine does (its headers written as lines).
    async fn send_req(
        conn: Box<Conn>,
        req: Request<UpBody>,
    ) -> Result<Response<AppBody>, SendError> {
        let (parts, body) = req.into_parts();
        let head = Head {
            method: &parts.method,
            target: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
            declared_length: parts.headers.contains_key(CONTENT_LENGTH),
        };
        send(
            conn,
            head,
            |out| super::super::head::write_lines(out, &parts.headers),
            body,
            Duration::from_secs(5),
        )
        .await
    }

    /// What comes of a `GET /` to an app that answers `answer` (its task left running).
    async fn answered(answer: &[u8], open: &IntGauge) -> Result<Response<AppBody>, SendError> {
        let (addr, _app) = app(vec![answer.to_vec()], 4096).await;
        send_req(connect(&addr, open).await, get("/")).await
    }

    async fn body(resp: Response<AppBody>) -> Result<Vec<u8>, String> {
        resp.into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    /// `upstream.write_timeout` (nginx's `proxy_send_timeout`): an app that takes none of a
    /// large body for that long fails the request as timed out (504), not after
    /// `read_timeout`.
    #[test]
    fn an_app_that_stops_reading_the_request_times_the_write_out() {
        rt().block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap().to_string();
            // Accepts and holds the connection without reading a byte.
            let _app = tokio::spawn(async move {
                let (s, _) = l.accept().await.unwrap();
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(s);
            });
            let open = gauge();
            let conn = connect(&addr, &open).await;
            let big = Bytes::from(vec![b'x'; 64 << 20]);
            let method = Method::POST;
            let head = Head {
                method: &method,
                target: "/upload",
                declared_length: true,
            };
            let started = std::time::Instant::now();
            let limit = Duration::from_millis(300);
            let sent = send(conn, head, |_| {}, UpBody::Full(Some(big)), limit).await;
            let took = started.elapsed();
            assert!(
                matches!(sent, Err(SendError::TimedOut(_))),
                "{:?}",
                sent.err()
            );
            assert!(took >= limit && took < Duration::from_secs(10), "{took:?}");
        });
    }

    #[test]
    fn answers_are_read_whatever_their_framing_and_however_they_arrive() {
        let cases: [(&str, &[u8], u16, &[u8]); 6] = [
            ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\n\r\nhello", 200, b"hello"),
            (
                "GET",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nhel\r\n2\r\nlo\r\n0\r\nT: v\r\n\r\n",
                200,
                b"hello",
            ),
            ("GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 201, b"ok"),
            ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, b""),
            ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
            ("GET", b"HTTP/1.0 200 OK\r\n\r\nuntil the close", 200, b"until the close"),
        ];
        for piece in [1, 3, 7, 4096] {
            for (method, answer, status, want) in cases {
                rt().block_on(async {
                    let (addr, app) = app(vec![answer.to_vec()], piece).await;
                    let open = gauge();
                    let mut req = get("/x");
                    *req.method_mut() = method.parse().unwrap();
                    let resp = send_req(connect(&addr, &open).await, req).await.unwrap();
                    assert_eq!(resp.status(), status, "{method} {piece}");
                    for hop in ["connection", "keep-alive", "upgrade", "transfer-encoding"] {
                        assert!(!resp.headers().contains_key(hop), "{hop} is not passed on");
                    }
                    assert_eq!(body(resp).await.unwrap(), want, "{method} {piece}");
                    drop(app);
                });
            }
        }
    }

    #[test]
    fn a_connection_goes_back_to_its_pool_only_after_a_clean_whole_answer() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec();
        let close = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec();
        let extra = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec();
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec();
        for (answer, reused) in [
            (ok.clone(), true),
            (chunked, true),
            (close, false),
            (extra, false),
            (both, false),
        ] {
            rt().block_on(async {
                let (addr, app) = app(vec![answer.clone(), ok.clone()], 4096).await;
                let open = gauge();
                let pool = pool();
                let mut resp = send_req(connect(&addr, &open).await, get("/1"))
                    .await
                    .unwrap();
                resp.body_mut().reuse_into(pool);
                if answer.windows(8).any(|w| w == b"chunked\r") {
                    assert!(
                        !resp.headers().contains_key(CONTENT_LENGTH),
                        "not the body's length"
                    );
                }
                assert_eq!(body(resp).await.unwrap(), b"ok");
                let again = pool.checkout(std::time::Duration::from_secs(10)).await;
                assert_eq!(
                    again.is_some(),
                    reused,
                    "{}",
                    String::from_utf8_lossy(&answer)
                );
                if let Some(AppConn::Slogate(conn)) = again {
                    let resp = send_req(conn, get("/2")).await.unwrap();
                    assert_eq!(body(resp).await.unwrap(), b"ok");
                    let seen = app.await.unwrap();
                    assert_eq!(seen.len(), 2, "both requests on one connection");
                    assert!(seen[1].starts_with(b"GET /2 HTTP/1.1\r\n"));
                }
            });
        }
        // Not asked to be reused (the request did not go out whole), or dropped before its
        // end: closed.
        rt().block_on(async {
            let (addr, _app) = app(vec![ok.clone()], 4096).await;
            let open = gauge();
            let pool = pool();
            let resp = send_req(connect(&addr, &open).await, get("/1"))
                .await
                .unwrap();
            assert_eq!(body(resp).await.unwrap(), b"ok");
            assert!(pool
                .checkout(std::time::Duration::from_secs(10))
                .await
                .is_none());
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok";
            let mut resp = answered(answer, &open).await.unwrap();
            resp.body_mut().reuse_into(pool);
            drop(resp);
            assert!(pool
                .checkout(std::time::Duration::from_secs(10))
                .await
                .is_none());
            assert_eq!(open.get(), 0, "every connection closed");
        });
    }

    #[test]
    fn an_idle_connection_the_app_closed_is_not_handed_out() {
        rt().block_on(async {
            let (addr, app) = app(
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
                4096,
            )
            .await;
            let open = gauge();
            let pool = pool();
            let mut resp = send_req(connect(&addr, &open).await, get("/1"))
                .await
                .unwrap();
            resp.body_mut().reuse_into(pool);
            assert_eq!(body(resp).await.unwrap(), b"ok");
            assert_eq!(pool.idle_count(), 1);
            app.await.unwrap(); // the app closes its side
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            assert!(pool
                .checkout(std::time::Duration::from_secs(10))
                .await
                .is_none());
        });
    }

    #[test]
    fn common_names_are_the_names_from_bytes_gives() {
        for name in [
            "Content-Type",
            "Content-Length",
            "Date",
            "Server",
            "Connection",
            "Cache-Control",
            "ETag",
            "Vary",
            "Set-Cookie",
            "Transfer-Encoding",
            "Content-Encoding",
            "Referrer-Policy",
            "X-Content-Type-Options",
            "X-Frame-Options",
            "Last-Modified",
        ] {
            for spelled in [name.to_string(), name.to_ascii_lowercase()] {
                let want = HeaderName::from_bytes(spelled.as_bytes()).unwrap();
                assert_eq!(common_name(&spelled), Some(want), "{spelled}");
            }
        }
        assert_eq!(common_name("X-Runtime"), None);
        assert_eq!(
            common_name("CONTENT-TYPE"),
            None,
            "other spellings go the general way"
        );
    }

    #[test]
    fn a_connection_header_naming_other_fields_is_left_for_the_strip() {
        rt().block_on(async {
            let answer = b"HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: 1\r\nContent-Length: 0\r\n\r\n";
            let resp = answered(answer, &gauge()).await.unwrap();
            assert_eq!(resp.headers()["connection"], "close, X-Private");
            let mut headers = resp.headers().clone();
            super::super::head::strip_hop_by_hop(&mut headers, super::super::head::Underscores::Keep);
            assert!(headers.get("x-private").is_none() && headers.get("connection").is_none());
        });
    }

    #[test]
    fn failures_say_whether_the_app_answered_at_all() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "closed"),
            (b"HTTP/1.1 200 OK\r\nContent-Le", "failed"),
            (b"SMTP ready\r\n\r\n", "failed"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "failed"),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "failed"),
        ];
        for (answer, want) in cases {
            rt().block_on(async {
                let got = match answered(answer, &gauge()).await {
                    Err(SendError::Closed(_)) => "closed",
                    Err(SendError::Failed(_)) => "failed",
                    Err(SendError::Unsent(_)) => "unsent",
                    Err(SendError::TimedOut(_)) => "timed out",
                    Ok(_) => "answered",
                };
                assert_eq!(got, want, "{}", String::from_utf8_lossy(answer));
            });
        }
        // A body cut short is an error, not a short answer.
        rt().block_on(async {
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok";
            let resp = answered(answer, &gauge()).await.unwrap();
            assert!(body(resp).await.is_err());
        });
    }

    #[test]
    fn the_request_goes_out_framed_by_what_slogate_sends() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        rt().block_on(async {
            let (addr, app) = app(vec![ok.clone(), ok.clone()], 4096).await;
            let open = gauge();
            let pool = pool();
            // A whole body, whatever framing the client's headers claimed.
            let mut req = get("/graphql?x=1");
            *req.method_mut() = Method::POST;
            req.headers_mut().insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            req.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
            *req.body_mut() = UpBody::Full(Some(Bytes::from_static(b"{\"a\":1}")));
            let mut resp = send_req(connect(&addr, &open).await, req).await.unwrap();
            resp.body_mut().reuse_into(pool);
            body(resp).await.unwrap();
            // A streamed body of unknown length: chunked.
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(Ok(Bytes::from_static(b"def"))).await.unwrap();
            drop(tx);
            let mut req = get("/up");
            *req.method_mut() = Method::PUT;
            req.headers_mut().insert(EXPECT, HeaderValue::from_static("100-continue"));
            *req.body_mut() = UpBody::Streaming {
                first: Some(Bytes::from_static(b"abc")),
                rest: rx,
                length: None,
            };
            let Some(AppConn::Slogate(conn)) = pool.checkout(std::time::Duration::from_secs(9)).await else {
                panic!("reused");
            };
            body(send_req(conn, req).await.unwrap()).await.unwrap();
            let seen = app.await.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&seen[0]),
                "POST /graphql?x=1 HTTP/1.1\r\nhost: app\r\ncontent-length: 7\r\n\r\n{\"a\":1}"
            );
            assert_eq!(
                String::from_utf8_lossy(&seen[1]),
                "PUT /up HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
            );
        });
    }
}
