//! The bodies the engine moves: [`UpBody`] to the app, [`ResBody`] to the client.
//!
//! A [`ResBody`] carries the exchange's [`Tracker`]: every chunk of the app's answer passes
//! the classifier on its way out, and the exchange is accounted for when the body ends,
//! fails, or is dropped because the client left.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use slogate_config::CompressionAlgorithm;
use slogate_core::exchange::Ending;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::app::AppBody;
use super::file::FileStream;
use super::spool::Spool;
use super::track::Tracker;

/// Errors of bodies: whatever failed, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body on its way to the app.
pub enum UpBody {
    /// Read whole before the request left: one write with the head.
    Full(Option<Bytes>),
    /// Larger than the prefetch: what was read, then the rest as the client sends it.
    Streaming {
        /// The prefetched part.
        first: Option<Bytes>,
        /// The rest, from the task reading the client.
        rest: mpsc::Receiver<Result<Bytes, BoxError>>,
        /// The declared length, if any.
        length: Option<u64>,
    },
}

impl UpBody {
    /// An empty body.
    pub fn empty() -> UpBody {
        UpBody::Full(None)
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpBody::Streaming { first, rest, .. } => {
                if let Some(b) = first.take() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                rest.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, UpBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            UpBody::Streaming {
                length: Some(n), ..
            } => SizeHint::with_exact(*n),
            UpBody::Streaming { .. } => SizeHint::default(),
        }
    }
}

/// The app's answer being passed on (its body gives its connection back at its end).
pub struct FromApp {
    /// The body as it arrives.
    pub body: AppBody,
    /// Fires when the app is silent longer than the read timeout.
    pub idle: Pin<Box<Sleep>>,
    /// The read timeout (nginx `proxy_read_timeout`, between two reads).
    pub read_timeout: Duration,
}

/// Where a response's bytes come from.
pub enum Source {
    /// Nothing.
    Empty,
    /// Bytes in hand (pages, redirects).
    Full(Option<Bytes>),
    /// The app.
    App(Box<FromApp>),
    /// The app, through the response buffer.
    Spooled(Spool),
    /// A file under the static root.
    File(FileStream),
}

/// A response body on its way to the client.
pub struct ResBody {
    source: Source,
    encoder: Option<Box<Encoder>>,
    tracker: Option<Box<Tracker>>,
    /// The app's announced length, and the bytes of its answer passed so far: a connection
    /// stops asking once the announced length is sent, before the source says it ended.
    announced: Option<u64>,
    passed: u64,
    /// The source ended and the encoder's tail was sent.
    finished: bool,
    /// hyper has had the chance to send the head: data went out, or the body waited once.
    head_out: bool,
    /// A failure held back for one poll so that hyper sends the head first (see
    /// [`Body::poll_frame`]).
    held: Option<BoxError>,
}

impl ResBody {
    /// A body from `source`, accounted for by `tracker`.
    pub fn new(source: Source, tracker: Option<Box<Tracker>>) -> ResBody {
        ResBody {
            source,
            encoder: None,
            tracker,
            announced: None,
            passed: 0,
            finished: false,
            head_out: false,
            held: None,
        }
    }

    /// The app announced this many bytes (`Content-Length`).
    pub fn announced(mut self, length: Option<u64>) -> ResBody {
        self.announced = length;
        self
    }

    /// Bytes in hand.
    pub fn full(bytes: Bytes, tracker: Option<Box<Tracker>>) -> ResBody {
        ResBody::new(Source::Full(Some(bytes)), tracker)
    }

    /// Compresses what passes with `encoder`.
    pub fn compress(mut self, encoder: Encoder) -> ResBody {
        self.encoder = Some(Box::new(encoder));
        self
    }

    fn end(&mut self, ending: Ending) {
        if let Some(mut t) = self.tracker.take() {
            t.finish(ending);
        }
    }

    /// The next raw chunk of the source.
    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        match &mut self.source {
            Source::Empty => Poll::Ready(None),
            Source::Full(b) => Poll::Ready(b.take().map(Ok)),
            Source::File(f) => f.poll_chunk(cx),
            Source::Spooled(spool) => match spool.poll_chunk(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    if let Some(t) = self.tracker.as_mut() {
                        t.exchange.response_chunk(&data);
                    }
                    Poll::Ready(Some(Ok(data)))
                }
                Poll::Ready(Some(Err(why))) => {
                    if let Some(t) = self.tracker.as_mut() {
                        t.error = Some(why.clone());
                    }
                    self.end(Ending::UpstreamBroken);
                    Poll::Ready(Some(Err(why.into())))
                }
                Poll::Ready(None) => {
                    self.app_done();
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
            Source::App(app) => loop {
                match Pin::new(&mut app.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            let deadline = tokio::time::Instant::now() + app.read_timeout;
                            app.idle.as_mut().reset(deadline);
                            if let Some(t) = self.tracker.as_mut() {
                                t.exchange.response_chunk(&data);
                            }
                            return Poll::Ready(Some(Ok(data)));
                        }
                        // Trailers are not passed on (nginx drops them too).
                    }
                    Poll::Ready(Some(Err(e))) => {
                        if let Some(t) = self.tracker.as_mut() {
                            t.error = Some(format!("upstream body: {e}"));
                        }
                        self.end(Ending::UpstreamBroken);
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(None) => {
                        self.app_done();
                        return Poll::Ready(None);
                    }
                    Poll::Pending => {
                        if app.idle.as_mut().poll(cx).is_ready() {
                            if let Some(t) = self.tracker.as_mut() {
                                t.error = Some("upstream read timed out in the body".into());
                            }
                            self.end(Ending::UpstreamBroken);
                            return Poll::Ready(Some(Err("upstream read timed out".into())));
                        }
                        return Poll::Pending;
                    }
                }
            },
        }
    }
}

impl Body for ResBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if let Some(e) = this.held.take() {
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            let Poll::Ready(chunk) = this.poll_source(cx) else {
                this.head_out = true;
                return Poll::Pending;
            };
            if let Some(Ok(data)) = &chunk {
                this.passed += data.len() as u64;
            }
            let out = match (chunk, this.encoder.as_mut()) {
                (Some(Ok(data)), None) => Some(data),
                (Some(Ok(data)), Some(enc)) => {
                    let out = enc.write(&data);
                    if out.is_empty() {
                        continue;
                    }
                    Some(out)
                }
                (Some(Err(e)), _) => {
                    this.end(Ending::UpstreamBroken);
                    if !this.head_out {
                        // hyper sends the head with the first data, or when the body waits;
                        // a body that fails first would take the head down with it and
                        // leave the client without a status. Wait once: the head goes out
                        // (as nginx sends it), then the failure cuts the answer.
                        this.head_out = true;
                        this.held = Some(e);
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                (None, _) => {
                    this.finished = true;
                    let tail = this.encoder.take().map(|e| (*e).finish());
                    if let (Some(t), Some(tail)) = (this.tracker.as_mut(), tail.as_ref()) {
                        t.bytes_sent += tail.len() as u64;
                    }
                    this.end(Ending::Complete);
                    tail.filter(|t| !t.is_empty())
                }
            };
            return match out {
                Some(data) => {
                    this.head_out = true;
                    if let Some(t) = this.tracker.as_mut() {
                        t.bytes_sent += data.len() as u64;
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                None => Poll::Ready(None),
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
            || (self.encoder.is_none()
                && match &self.source {
                    Source::Empty | Source::Full(None) => true,
                    Source::App(app) => app.body.is_end_stream(),
                    _ => false,
                })
    }

    fn size_hint(&self) -> SizeHint {
        if self.encoder.is_some() {
            return SizeHint::default();
        }
        match &self.source {
            Source::Empty => SizeHint::with_exact(0),
            Source::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Source::App(app) => app.body.size_hint(),
            Source::File(f) => SizeHint::with_exact(f.remaining()),
            Source::Spooled(_) => SizeHint::default(),
        }
    }
}

impl ResBody {
    /// The app's answer is over: its end time (the app's body gives its connection back
    /// itself).
    fn app_done(&mut self) {
        let at = match &mut self.source {
            Source::App(_) => Instant::now(),
            Source::Spooled(spool) => spool.done_at().unwrap_or_else(Instant::now),
            _ => return,
        };
        if let Some(t) = self.tracker.as_mut() {
            t.exchange.response_end(at);
        }
    }

    /// Whether everything the source had was sent. The connection may stop polling once a
    /// body's announced length is sent, before the source says it ended: finish the app's
    /// part here then (its end time, and its connection back to the pool).
    fn source_done(&mut self) -> bool {
        if self.finished {
            return true;
        }
        let done = match &self.source {
            Source::Empty | Source::Full(None) => true,
            Source::Full(Some(_)) => false,
            Source::File(f) => f.remaining() == 0,
            Source::Spooled(spool) => spool.is_drained() || self.announced == Some(self.passed),
            Source::App(app) => app.body.is_end_stream() || self.announced == Some(self.passed),
        };
        if done {
            self.app_done();
        }
        done && self.encoder.is_none()
    }
}

impl Drop for ResBody {
    fn drop(&mut self) {
        // The connection dropped the body: it was all sent (a length-delimited body whose
        // end was not asked for), or the client left (or was cut) before the end.
        if self.tracker.is_some() {
            let ending = if self.source_done() {
                Ending::Complete
            } else {
                Ending::ClientGone
            };
            self.end(ending);
        }
    }
}

/// A streaming compressor for one response.
pub enum Encoder {
    /// gzip.
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// brotli.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    /// An encoder for `algorithm` at `level`.
    pub fn new(algorithm: CompressionAlgorithm, level: u32) -> Option<Encoder> {
        Some(match algorithm {
            CompressionAlgorithm::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            CompressionAlgorithm::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), level as i32).ok()?)
            }
            CompressionAlgorithm::Brotli => Encoder::Brotli(Box::new(
                brotli::CompressorWriter::new(Vec::new(), 16 * 1024, level, 22),
            )),
        })
    }

    /// Compresses `data`; returns what is ready to send (possibly nothing yet).
    fn write(&mut self, data: &[u8]) -> Bytes {
        // Writing into a Vec cannot fail.
        let out = match self {
            Encoder::Gzip(e) => {
                let _ = e.write_all(data);
                e.get_mut()
            }
            Encoder::Zstd(e) => {
                let _ = e.write_all(data);
                e.get_mut()
            }
            Encoder::Brotli(e) => {
                let _ = e.write_all(data);
                e.get_mut()
            }
        };
        Bytes::from(std::mem::take(out))
    }

    /// Ends the stream; returns its tail.
    fn finish(self) -> Bytes {
        let out = match self {
            Encoder::Gzip(e) => e.finish().unwrap_or_default(),
            Encoder::Zstd(e) => e.finish().unwrap_or_default(),
            Encoder::Brotli(e) => e.into_inner(),
        };
        Bytes::from(out)
    }

    /// The `Content-Encoding` value.
    pub fn name(&self) -> &'static str {
        match self {
            Encoder::Gzip(_) => "gzip",
            Encoder::Zstd(_) => "zstd",
            Encoder::Brotli(_) => "br",
        }
    }
}
