//! Following a log file across rotations, without counting a line twice.
//!
//! [`FileFollower`] is a synchronous state machine: each [`poll`] reads what
//! was appended since the last one and hands lines to a [`LogSink`]. The
//! async service calls it in a loop and sleeps when nothing was read.
//!
//! - **Rename rotation** (logrotate's default, Ruby's `Logger` shift): when the
//!   path names another file, the old file is read to its end (a writer may
//!   have appended after the rename), its last line without a newline is
//!   still a line, and the new file is read from its start. While nothing
//!   exists at the path, the old file is kept open.
//! - **copytruncate**: the same file got shorter than what was read, or its
//!   first bytes changed (it was truncated and written again between two
//!   polls): it is read again from its start, and a partial line is dropped.
//!   Lines appended between logrotate's copy and its truncate are in the copy
//!   only; no follower can see them (logrotate documents this loss).
//!
//! [`poll`]: FileFollower::poll

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::lines::{LineSplitter, Piece};

/// How many bytes at a file's start identify its content across polls: a
/// few Sidekiq lines, so a file truncated and rewritten to the same size is
/// told apart by its timestamps, classes and jids.
const HEAD_LEN: usize = 1024;
/// One `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// At most this much is read in one poll, so a huge backlog does not keep
/// the follower from noticing a rotation or a shutdown.
const POLL_BUDGET: u64 = 8 * 1024 * 1024;

/// Where to start reading a file that exists when following starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// From its first byte: every line already there is counted.
    Beginning,
    /// From its end (the default): only lines appended from now on count.
    End,
}

/// How a followed file was rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The path now names another file.
    Renamed,
    /// The file was truncated in place.
    Truncated,
}

impl Rotation {
    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rotation::Renamed => "rename",
            Rotation::Truncated => "truncate",
        }
    }
}

/// Receives what a follower reads.
pub trait LogSink {
    /// One complete line, without its newline.
    fn line(&self, line: &[u8]);
    /// A line longer than the bound, skipped.
    fn too_long(&self);
    /// The file was rotated.
    fn rotated(&self, rotation: Rotation);
}

/// Follows one file path.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    start_at: StartAt,
    open: Option<OpenFile>,
    splitter: LineSplitter,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    id: (u64, u64),
    offset: u64,
    head: Vec<u8>,
}

impl FileFollower {
    /// A follower of `path`. `start_at` applies to a file that exists at the
    /// first poll; a file created later, or a rotated one, is read from its
    /// start.
    pub fn new(path: impl Into<PathBuf>, start_at: StartAt, max_line: usize) -> FileFollower {
        FileFollower {
            path: path.into(),
            start_at,
            open: None,
            splitter: LineSplitter::new(max_line),
            buf: vec![0; READ_CHUNK],
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a file is open (false while the path does not exist yet).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Reads what is new; returns the number of bytes read (0: nothing new,
    /// so wait before the next poll).
    pub fn poll(&mut self, sink: &dyn LogSink) -> io::Result<u64> {
        if self.open.is_none() && !self.open_path()? {
            return Ok(0);
        }
        self.check_truncation(sink)?;
        let read = self.read_available(sink, POLL_BUDGET)?;
        if read >= POLL_BUDGET {
            return Ok(read);
        }
        let Some(next) = self.replacement()? else {
            return Ok(read);
        };
        // Whatever the writer appended to the old file before switching.
        let drained = self.read_available(sink, u64::MAX)?;
        self.splitter.finish(&mut |p| deliver(sink, p));
        tracing::info!(path = %self.path.display(), "log file rotated (renamed); reading the new file");
        self.open = Some(next);
        sink.rotated(Rotation::Renamed);
        // Not 0 even if nothing was drained: the new file is read right away.
        Ok(read + drained + 1)
    }

    /// Opens the path if it exists; `false` if it does not.
    fn open_path(&mut self) -> io::Result<bool> {
        let start_at = std::mem::replace(&mut self.start_at, StartAt::Beginning);
        let mut open = match open_file(&self.path)? {
            Some(open) => open,
            None => return Ok(false),
        };
        if start_at == StartAt::End {
            let len = open.file.metadata()?.len();
            open.offset = open.file.seek(SeekFrom::Start(len))?;
            if len > 0 && last_byte(&open.file, len)? != Some(b'\n') {
                // Joined in the middle of a line: its start is not ours.
                self.splitter.skip_to_next_line();
            }
        }
        tracing::info!(path = %self.path.display(), offset = open.offset, "following log file");
        self.open = Some(open);
        Ok(true)
    }

    fn check_truncation(&mut self, sink: &dyn LogSink) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let len = open.file.metadata()?.len();
        if len >= open.offset && open.head_still_matches()? {
            return Ok(());
        }
        open.file.seek(SeekFrom::Start(0))?;
        open.offset = 0;
        open.head.clear();
        let dropped = self.splitter.reset();
        tracing::info!(path = %self.path.display(), dropped_partial_bytes = dropped, "log file truncated; reading it from the start");
        sink.rotated(Rotation::Truncated);
        Ok(())
    }

    fn read_available(&mut self, sink: &dyn LogSink, budget: u64) -> io::Result<u64> {
        let Some(open) = self.open.as_mut() else {
            return Ok(0);
        };
        let mut total = 0u64;
        while total < budget {
            let n = match open.file.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            open.offset += n as u64;
            total += n as u64;
            self.splitter
                .feed(&self.buf[..n], &mut |p| deliver(sink, p));
        }
        Ok(total)
    }

    /// The file the path names now, if it is not the open one.
    fn replacement(&self) -> io::Result<Option<OpenFile>> {
        let Some(open) = &self.open else {
            return Ok(None);
        };
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if (meta.dev(), meta.ino()) == open.id {
            return Ok(None);
        }
        open_file(&self.path)
    }
}

impl OpenFile {
    /// Whether the file still starts with the bytes seen before; extends
    /// the remembered head while the file is shorter than [`HEAD_LEN`].
    fn head_still_matches(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; HEAD_LEN];
        let n = read_at_most(&self.file, &mut buf, 0)?;
        let now = &buf[..n];
        if now.len() < self.head.len() || now[..self.head.len()] != self.head[..] {
            return Ok(false);
        }
        if now.len() > self.head.len() {
            self.head = now.to_vec();
        }
        Ok(true)
    }
}

fn open_file(path: &Path) -> io::Result<Option<OpenFile>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    Ok(Some(OpenFile {
        file,
        id: (meta.dev(), meta.ino()),
        offset: 0,
        head: Vec::new(),
    }))
}

fn last_byte(file: &File, len: u64) -> io::Result<Option<u8>> {
    let mut byte = [0u8; 1];
    let n = read_at_most(file, &mut byte, len - 1)?;
    Ok((n == 1).then_some(byte[0]))
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn deliver(sink: &dyn LogSink, piece: Piece<'_>) {
    match piece {
        Piece::Line(line) => sink.line(line),
        Piece::TooLong => sink.too_long(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::fs::OpenOptions;
    use std::io::Write;

    #[derive(Default)]
    struct Collect {
        lines: RefCell<Vec<String>>,
        too_long: RefCell<usize>,
        rotations: RefCell<Vec<Rotation>>,
    }

    impl LogSink for Collect {
        fn line(&self, line: &[u8]) {
            self.lines
                .borrow_mut()
                .push(String::from_utf8_lossy(line).into_owned());
        }
        fn too_long(&self) {
            *self.too_long.borrow_mut() += 1;
        }
        fn rotated(&self, rotation: Rotation) {
            self.rotations.borrow_mut().push(rotation);
        }
    }

    impl Collect {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.lines.borrow_mut())
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn poll_all(f: &mut FileFollower, sink: &Collect) {
        while f.poll(sink).unwrap() > 0 {}
    }

    #[test]
    fn starts_at_the_end_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        append(&path, "old 1\nold 2\n");
        let mut f = FileFollower::new(&path, StartAt::End, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        assert!(sink.take().is_empty());
        append(&path, "new 1\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["new 1"]);
    }

    #[test]
    fn starting_at_the_end_mid_line_skips_the_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        append(&path, "old 1\nhalf of a li");
        let mut f = FileFollower::new(&path, StartAt::End, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        append(&path, "ne\nnew 1\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["new 1"]);
    }

    #[test]
    fn from_the_beginning_reads_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        append(&path, "old 1\nold 2\n");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["old 1", "old 2"]);
    }

    #[test]
    fn a_file_created_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        let mut f = FileFollower::new(&path, StartAt::End, 1024);
        let sink = Collect::default();
        assert_eq!(f.poll(&sink).unwrap(), 0);
        assert!(!f.is_open());
        append(&path, "first\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["first"]);
    }

    #[test]
    fn a_truncated_last_line_is_completed_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        append(&path, "one\n{\"msg\":");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["one"]);
        append(&path, "\"done\"}\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["{\"msg\":\"done\"}"]);
    }

    #[test]
    fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        let rotated = dir.path().join("sidekiq.log.1");
        append(&path, "a1\n");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["a1"]);
        std::fs::rename(&path, &rotated).unwrap();
        // The writer still has the old file open and appends a last line.
        append(&rotated, "a2\na3-without-newline");
        poll_all(&mut f, &sink);
        assert_eq!(
            sink.take(),
            vec!["a2"],
            "old file kept while the path is missing"
        );
        append(&path, "b1\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["a3-without-newline", "b1"]);
        assert_eq!(*sink.rotations.borrow(), vec![Rotation::Renamed]);
        append(&path, "b2\n");
        append(&rotated, "late write to the old file\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["b2"]);
    }

    #[test]
    fn copytruncate_rereads_from_the_start_without_double_counting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        append(
            &path,
            "line 1 of the first generation\nline 2 of the first generation\n",
        );
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        assert_eq!(sink.take().len(), 2);
        std::fs::copy(&path, dir.path().join("sidekiq.log.1")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "after truncate\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["after truncate"]);
        assert_eq!(*sink.rotations.borrow(), vec![Rotation::Truncated]);
    }

    #[test]
    fn copytruncate_is_seen_even_when_the_file_regrew_past_the_old_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        append(&path, "2026-11-30T10:00:00.000Z first\n");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        assert_eq!(sink.take().len(), 1);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(
            &path,
            "2026-11-30T10:00:05.000Z second, and much longer than the first\n",
        );
        append(&path, "2026-11-30T10:00:06.000Z third\n");
        poll_all(&mut f, &sink);
        assert_eq!(
            sink.take(),
            vec![
                "2026-11-30T10:00:05.000Z second, and much longer than the first",
                "2026-11-30T10:00:06.000Z third"
            ]
        );
    }

    #[test]
    fn copytruncate_is_seen_when_the_new_content_has_the_same_size_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        let line = |class: &str| {
            format!("{{\"ts\":\"2026-11-30T10:53:37.991Z\",\"pid\":1,\"tid\":\"t0\",\"lvl\":\"INFO\",\"msg\":\"done\",\"ctx\":{{\"class\":\"{class}\"}}}}\n")
        };
        append(&path, &line("Gen3Job"));
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, &line("Gen4Job"));
        poll_all(&mut f, &sink);
        let seen = sink.take();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].contains("Gen4Job"));
    }

    #[test]
    fn truncation_drops_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        append(&path, "whole\npartial");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        poll_all(&mut f, &sink);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "fresh\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["whole", "fresh"]);
    }

    #[test]
    fn many_rotations_lose_and_repeat_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        let mut expected = Vec::new();
        for generation in 0..20 {
            for i in 0..50 {
                let line = format!("gen {generation} line {i}");
                append(&path, &format!("{line}\n"));
                expected.push(line);
                if i % 7 == 0 {
                    poll_all(&mut f, &sink);
                }
            }
            poll_all(&mut f, &sink);
            if generation % 2 == 0 {
                std::fs::rename(&path, dir.path().join(format!("old.{generation}"))).unwrap();
            } else {
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        }
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), expected);
    }

    #[test]
    fn an_overlong_line_without_newline_is_skipped_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidekiq.log");
        let mut f = FileFollower::new(&path, StartAt::Beginning, 1024);
        let sink = Collect::default();
        let chunk = "x".repeat(100_000);
        for _ in 0..30 {
            append(&path, &chunk);
            poll_all(&mut f, &sink);
            assert!(f.splitter.pending_len() <= 1024);
        }
        append(&path, "\nafter\n");
        poll_all(&mut f, &sink);
        assert_eq!(sink.take(), vec!["after"]);
        assert_eq!(*sink.too_long.borrow(), 1);
    }
}
