//! Response buffering, as nginx's `proxy_buffering`: the app's answer is read as fast as the
//! app sends it, into memory up to a bound and then into a bounded temporary file, so a slow
//! client never holds a Puma thread. Past the file's bound, the app is read only as fast as
//! the client takes it.
//!
//! A task (the writer) reads the app; the client's response body (the reader) takes what
//! is spooled, oldest first: memory, then the file.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::Notify;

use super::app::AppBody;

/// Bytes read from the file per chunk sent to the client.
const FILE_CHUNK: u64 = 64 * 1024;

/// Bounds of one response's buffers.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Memory held per response (and one chunk handed to a client waiting for it).
    pub memory: usize,
    /// Temporary file size per response (0: no file).
    pub file: u64,
    /// Where temporary files are made (they are unlinked at once).
    pub dir: PathBuf,
    /// Time allowed between two reads from the app.
    pub read_timeout: Duration,
}

/// How the app's answer ended.
#[derive(Clone, Debug)]
pub enum End {
    /// Complete, at this instant.
    Done(Instant),
    /// Failed.
    Failed(String),
}

#[derive(Default)]
struct State {
    memory: VecDeque<Bytes>,
    memory_bytes: usize,
    /// The temporary file, its written length and the reader's position in it.
    file: Option<(File, u64, u64)>,
    /// The file reached its bound: no more writes to it.
    file_full: bool,
    end: Option<End>,
    reader_gone: bool,
    reader: Option<Waker>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer when the reader took something or left.
    taken: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The client's side of a spooled answer.
pub struct Spool {
    shared: Arc<Shared>,
}

/// Starts spooling `body` (after `first`, already read) and returns the reader.
pub fn start(first: Vec<Bytes>, body: AppBody, limits: Limits) -> Spool {
    let mut state = State::default();
    for b in first {
        state.memory_bytes += b.len();
        state.memory.push_back(b);
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        taken: Notify::new(),
    });
    tokio::spawn(write(shared.clone(), body, limits));
    Spool { shared }
}

/// The writer: reads the app until its answer ends, fails, or the client leaves.
async fn write(shared: Arc<Shared>, mut body: AppBody, limits: Limits) {
    let end = loop {
        let frame = match super::handler::within(limits.read_timeout, body.frame()).await {
            Err(_) => break End::Failed("upstream read timed out in the body".into()),
            Ok(None) => break End::Done(Instant::now()),
            Ok(Some(Err(e))) => break End::Failed(format!("upstream: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !put(&shared, data, &limits).await {
            return; // the client left: the app's connection goes too
        }
    };
    // A clean end gave the app's connection back (its body does).
    let waker = {
        let mut st = shared.lock();
        st.end = Some(end);
        st.reader.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// Spools one chunk, waiting while every buffer is full; `false` if the client left.
async fn put(shared: &Shared, data: Bytes, limits: &Limits) -> bool {
    loop {
        let notified = shared.taken.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (placed, waker) = {
            let mut st = shared.lock();
            if st.reader_gone {
                return false;
            }
            match place(&mut st, &data, limits) {
                Placed::Wait => (Placed::Wait, None),
                p => (p, st.reader.take()),
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        match placed {
            Placed::Wait => notified.await,
            Placed::Memory | Placed::File => {
                // The client's task has a turn before the next chunk is read: the app has
                // usually sent more already, and without it this task would read all of it
                // into the file before the client took any; with it, a client that keeps up
                // takes each chunk from memory as it comes (`place`).
                tokio::task::yield_now().await;
                return true;
            }
        }
    }
}

enum Placed {
    Memory,
    File,
    Wait,
}

/// Where a chunk goes: memory while it has room and no file is in use, or whatever its size
/// when the reader has taken everything and waits for more (it takes the chunk at once: a
/// fast client's answer never touches the disk, though one read from the app, up to 256 KiB,
/// is larger than the memory bound); the file while it has room; else, once the reader has
/// drained the file, memory again (one chunk at a time).
fn place(st: &mut State, data: &Bytes, limits: &Limits) -> Placed {
    let file_in_use = st.file.as_ref().is_some_and(|(_, w, r)| r < w);
    let reader_waits = st.reader.is_some() && st.memory.is_empty();
    if !file_in_use && (reader_waits || st.memory_bytes + data.len() <= limits.memory.max(1)) {
        return push_memory(st, data);
    }
    if !st.file_full && limits.file > 0 {
        if st.file.is_none() {
            match tempfile::tempfile_in(&limits.dir) {
                Ok(f) => st.file = Some((f, 0, 0)),
                Err(e) => {
                    tracing::warn!(
                        "cannot make a temporary file in {}: {e}",
                        limits.dir.display()
                    );
                    st.file_full = true;
                }
            }
        }
        if let Some((f, written, _)) = st.file.as_mut() {
            // Positional, as the reads: a write that fails half-way leaves nothing the reader
            // would take.
            if *written + data.len() as u64 <= limits.file && f.write_all_at(data, *written).is_ok()
            {
                *written += data.len() as u64;
                return Placed::File;
            }
            st.file_full = true;
        }
    }
    if !file_in_use && st.memory.is_empty() {
        // Over every bound: one chunk at a time, as fast as the client takes them.
        return push_memory(st, data);
    }
    Placed::Wait
}

fn push_memory(st: &mut State, data: &Bytes) -> Placed {
    st.memory_bytes += data.len();
    st.memory.push_back(data.clone());
    Placed::Memory
}

impl Spool {
    /// The next chunk for the client, `None` at the end.
    // A buffer zeroed by `resize`, not `vec![0; n]` (see below).
    #[allow(clippy::slow_vector_initialization)]
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
        let mut st = self.shared.lock();
        if let Some(b) = st.memory.pop_front() {
            st.memory_bytes -= b.len();
            drop(st);
            self.shared.taken.notify_one();
            return Poll::Ready(Some(Ok(b)));
        }
        if let Some((f, written, read)) = st.file.as_mut() {
            if *read < *written {
                let n = (*written - *read).min(FILE_CHUNK);
                // Zeroed by `resize` (a memset), not allocated zeroed (`vec![0; n]`, calloc):
                // jemalloc zeroes a large block it reuses by purging it, a madvise and then
                // a page fault per 4 KiB, every chunk (1,300 faults per 5 MB answer).
                let mut buf = Vec::with_capacity(n as usize);
                buf.resize(n as usize, 0);
                return match f.read_exact_at(&mut buf, *read) {
                    Ok(()) => {
                        *read += n;
                        drop(st);
                        self.shared.taken.notify_one();
                        Poll::Ready(Some(Ok(Bytes::from(buf))))
                    }
                    Err(e) => Poll::Ready(Some(Err(format!("reading the temporary file: {e}")))),
                };
            }
        }
        match &st.end {
            Some(End::Done(_)) => Poll::Ready(None),
            Some(End::Failed(why)) => Poll::Ready(Some(Err(why.clone()))),
            None => {
                st.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Whether the app's answer ended and the client was given all of it.
    pub fn is_drained(&self) -> bool {
        let st = self.shared.lock();
        matches!(st.end, Some(End::Done(_)))
            && st.memory.is_empty()
            && st.file.as_ref().is_none_or(|(_, w, r)| r >= w)
    }

    /// When the app's answer ended, if it did.
    pub fn done_at(&self) -> Option<Instant> {
        match self.shared.lock().end {
            Some(End::Done(at)) => Some(at),
            _ => None,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.shared.lock().reader_gone = true;
        self.shared.taken.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A current-thread runtime, a temporary directory (kept while the test runs), limits of
    /// `memory` bytes in memory and 64 MiB of file, and an empty buffer's shared state.
    fn fixture(
        memory: usize,
    ) -> (
        tokio::runtime::Runtime,
        tempfile::TempDir,
        Limits,
        Arc<Shared>,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            memory,
            file: 64 << 20,
            dir: dir.path().to_path_buf(),
            read_timeout: Duration::from_secs(5),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            taken: Notify::new(),
        });
        (rt, dir, limits, shared)
    }

    /// What goes in comes out, byte for byte and in order, whether a chunk went through
    /// memory or the temporary file, and when reads and writes interleave (the file drained,
    /// then memory again, then the file again).
    #[test]
    fn a_spooled_answer_comes_out_as_it_went_in() {
        let (rt, _dir, limits, shared) = fixture(4096);
        let mut spool = Spool {
            shared: shared.clone(),
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut next = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            next ^= next << 13;
            next ^= next >> 7;
            next ^= next << 17;
            next
        };
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        let mut used_file = false;
        for i in 0..400u64 {
            let len = (random() % 100_000) as usize + 1;
            let chunk: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
            sent.extend_from_slice(&chunk);
            assert!(rt.block_on(put(&shared, Bytes::from(chunk), &limits)));
            used_file |= shared.lock().file.is_some();
            // Now and then the client takes a few chunks.
            for _ in 0..random() % 3 {
                match spool.poll_chunk(&mut cx) {
                    Poll::Ready(Some(Ok(b))) => got.extend_from_slice(&b),
                    Poll::Pending => break,
                    other => panic!("{other:?}"),
                }
            }
        }
        shared.lock().end = Some(End::Done(Instant::now()));
        loop {
            match spool.poll_chunk(&mut cx) {
                Poll::Ready(Some(Ok(b))) => got.extend_from_slice(&b),
                Poll::Ready(None) => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(used_file, "the test must go through the temporary file");
        assert!(got == sent, "{} bytes in, {} out", sent.len(), got.len());
        assert!(spool.is_drained());
    }

    /// A chunk larger than the memory bound goes to a client that waits for it through
    /// memory, not the disk; to a client that does not, through the file.
    #[test]
    fn a_waiting_client_is_handed_a_large_chunk_without_the_file() {
        let (rt, _dir, limits, shared) = fixture(4096);
        let mut spool = Spool {
            shared: shared.clone(),
        };
        let mut cx = Context::from_waker(Waker::noop());
        let big = Bytes::from(vec![7u8; 256 * 1024]);
        // The client waits: the chunk goes through memory and comes out whole.
        assert!(spool.poll_chunk(&mut cx).is_pending());
        assert!(rt.block_on(put(&shared, big.clone(), &limits)));
        assert!(
            shared.lock().file.is_none(),
            "a waiting client's chunk went to disk"
        );
        match spool.poll_chunk(&mut cx) {
            Poll::Ready(Some(Ok(b))) => assert_eq!(b, big),
            other => panic!("{other:?}"),
        }
        // The client is busy (has not asked again since it was given a chunk): the next
        // large chunk goes to the file, as does the one after it.
        assert!(rt.block_on(put(&shared, big.clone(), &limits)));
        assert!(
            shared.lock().file.is_some(),
            "a busy client's chunk stayed in memory"
        );
        assert!(rt.block_on(put(&shared, big.clone(), &limits)));
        assert!(shared.lock().memory.is_empty());
        // Waiting again with the file not yet drained: the file is read first, in order.
        let mut got = 0;
        while let Poll::Ready(Some(Ok(b))) = spool.poll_chunk(&mut cx) {
            got += b.len();
        }
        assert_eq!(got, 2 * big.len());
    }

    /// An app that has sent its whole answer already and a client that takes each chunk as
    /// it comes: every chunk goes through memory, none through the disk (the app's side
    /// lets the client's take each chunk before it reads the next).
    #[test]
    fn a_client_that_keeps_up_never_makes_the_answer_touch_the_disk() {
        let (rt, _dir, limits, shared) = fixture(64 * 1024);
        const CHUNKS: usize = 20;
        const CHUNK: usize = 256 * 1024;
        let got = rt.block_on(async {
            // The client first, as in the engine: it has taken what came with the head and
            // waits for more when the task reading the app starts.
            let client = {
                let mut spool = Spool {
                    shared: shared.clone(),
                };
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Some(b) = std::future::poll_fn(|cx| spool.poll_chunk(cx)).await {
                        let b = b.unwrap();
                        got.push((b[0], b.len()));
                    }
                    got
                })
            };
            let app = {
                let shared = shared.clone();
                tokio::spawn(async move {
                    for i in 0..CHUNKS {
                        let chunk = Bytes::from(vec![i as u8; CHUNK]);
                        assert!(put(&shared, chunk, &limits).await);
                    }
                    let waker = {
                        let mut st = shared.lock();
                        st.end = Some(End::Done(Instant::now()));
                        st.reader.take()
                    };
                    if let Some(w) = waker {
                        w.wake();
                    }
                })
            };
            app.await.unwrap();
            client.await.unwrap()
        });
        let want: Vec<(u8, usize)> = (0..CHUNKS).map(|i| (i as u8, CHUNK)).collect();
        assert_eq!(got, want);
        assert!(
            shared.lock().file.is_none(),
            "the answer went through the disk"
        );
    }
}
