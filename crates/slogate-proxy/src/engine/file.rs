//! A file under the static root, streamed to the client in chunks.

use std::io::SeekFrom;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};

use super::body::BoxError;

/// Chunk size for streaming a file to the client.
const CHUNK: usize = 64 * 1024;

/// The rest of a file's answer: `remaining` bytes from the current position.
pub struct FileStream {
    file: File,
    remaining: u64,
    buf: Vec<u8>,
}

impl FileStream {
    /// Opens `path` at `offset` to send `length` bytes.
    pub async fn open(path: &Path, offset: u64, length: u64) -> std::io::Result<FileStream> {
        let mut file = File::open(path).await?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).await?;
        }
        Ok(FileStream {
            file,
            remaining: length,
            buf: Vec::new(),
        })
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = CHUNK.min(usize::try_from(self.remaining).unwrap_or(CHUNK));
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
                self.remaining -= n as u64;
                Poll::Ready(Some(Ok(filled)))
            }
        }
    }
}
