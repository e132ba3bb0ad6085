//! A file answer streamed to the client: file ranges in chunks, and the bytes between them
//! (multipart part heads).

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

use super::body::BoxError;
use crate::static_files::Segment;

/// Chunk size for streaming a file to the client.
const CHUNK: usize = 64 * 1024;

/// The rest of a file answer.
pub struct FileStream {
    file: File,
    segments: VecDeque<Segment>,
    /// Bytes left to send in all.
    remaining: u64,
    /// Bytes left of the file range being read; its start was sought.
    in_range: u64,
    /// A seek was started and not yet completed.
    seeking: bool,
    buf: Vec<u8>,
}

impl FileStream {
    /// Opens `path` to send `segments` (`length` bytes in all).
    pub async fn open(path: &Path, segments: Vec<Segment>, length: u64) -> std::io::Result<Self> {
        Ok(FileStream {
            file: File::open(path).await?,
            segments: segments.into(),
            remaining: length,
            in_range: 0,
            seeking: false,
            buf: Vec::new(),
        })
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        loop {
            if self.seeking {
                match Pin::new(&mut self.file).poll_complete(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(Ok(_)) => self.seeking = false,
                }
            }
            if self.in_range > 0 {
                return self.poll_read_range(cx);
            }
            match self.segments.pop_front() {
                None => return Poll::Ready(None),
                Some(Segment::Text(b)) => {
                    self.remaining = self.remaining.saturating_sub(b.len() as u64);
                    return Poll::Ready(Some(Ok(b)));
                }
                Some(Segment::File { offset, length }) => {
                    if let Err(e) = Pin::new(&mut self.file).start_seek(SeekFrom::Start(offset)) {
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    self.seeking = true;
                    self.in_range = length;
                }
            }
        }
    }

    fn poll_read_range(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        let want = CHUNK.min(usize::try_from(self.in_range).unwrap_or(CHUNK));
        if self.buf.len() < want {
            self.buf = vec![0u8; want];
        }
        let mut rb = ReadBuf::new(&mut self.buf[..want]);
        match Pin::new(&mut self.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    // The file shrank while being served: end short rather than hang.
                    return Poll::Ready(Some(Err("static file shorter than announced".into())));
                }
                let filled = Bytes::copy_from_slice(rb.filled());
                self.in_range -= n as u64;
                self.remaining = self.remaining.saturating_sub(n as u64);
                Poll::Ready(Some(Ok(filled)))
            }
        }
    }
}
