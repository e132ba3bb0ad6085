//! Splitting a byte stream into lines with a bound on a line's length.
//!
//! Memory never exceeds the bound: a line that grows past it is reported
//! once, as soon as it crosses the bound, and its bytes are dropped as they
//! arrive until its newline. A 100 MB log without a newline costs nothing
//! but the read buffer.

use memchr::memchr;

/// The default bound on a log line: Sidekiq's lines are a few hundred bytes;
/// a job whose context carries a megabyte is not one slogate should parse.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

/// What [`LineSplitter`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole line, without its newline.
    Line(&'a [u8]),
    /// A line longer than the bound, dropped.
    TooLong,
}

/// Splits chunks of bytes into lines of at most `max_line` bytes.
#[derive(Debug)]
pub struct LineSplitter {
    max_line: usize,
    pending: Vec<u8>,
    discarding: bool,
}

impl LineSplitter {
    /// A splitter for lines of at most `max_line` bytes (without the newline).
    pub fn new(max_line: usize) -> LineSplitter {
        LineSplitter {
            max_line,
            pending: Vec::new(),
            discarding: false,
        }
    }

    /// Feeds the next chunk; `on` sees each complete line or over-long line.
    pub fn feed(&mut self, mut chunk: &[u8], on: &mut impl FnMut(Piece<'_>)) {
        while !chunk.is_empty() {
            let newline = memchr(b'\n', chunk);
            if self.discarding {
                match newline {
                    Some(i) => {
                        self.discarding = false;
                        chunk = &chunk[i + 1..];
                    }
                    None => return,
                }
                continue;
            }
            match newline {
                Some(i) => {
                    self.complete_line(&chunk[..i], on);
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.keep_partial(chunk, on);
                    return;
                }
            }
        }
    }

    /// The stream ended: a last line without its newline is still a line.
    pub fn finish(&mut self, on: &mut impl FnMut(Piece<'_>)) {
        if !self.pending.is_empty() {
            on(Piece::Line(&self.pending));
        }
        self.reset();
    }

    /// Forgets any partial line (the stream was cut, e.g. truncated).
    /// Returns how many bytes of a partial line were dropped.
    pub fn reset(&mut self) -> usize {
        let dropped = self.pending.len();
        self.pending.clear();
        self.pending.shrink_to(64 * 1024);
        self.discarding = false;
        dropped
    }

    /// Drops everything up to the next newline without reporting it: for a
    /// stream joined in the middle of a line.
    pub fn skip_to_next_line(&mut self) {
        self.reset();
        self.discarding = true;
    }

    /// Bytes of the partial line held so far.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn complete_line(&mut self, tail: &[u8], on: &mut impl FnMut(Piece<'_>)) {
        if self.pending.len() + tail.len() > self.max_line {
            self.pending.clear();
            on(Piece::TooLong);
        } else if self.pending.is_empty() {
            on(Piece::Line(tail));
        } else {
            self.pending.extend_from_slice(tail);
            on(Piece::Line(&self.pending));
            self.pending.clear();
        }
    }

    fn keep_partial(&mut self, rest: &[u8], on: &mut impl FnMut(Piece<'_>)) {
        if self.pending.len() + rest.len() > self.max_line {
            self.pending.clear();
            self.discarding = true;
            on(Piece::TooLong);
        } else {
            self.pending.extend_from_slice(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Out {
        Line(String),
        TooLong,
    }

    fn split_chunks(max: usize, chunks: &[&[u8]], finish: bool) -> Vec<Out> {
        let mut out = Vec::new();
        let mut on = |p: Piece<'_>| {
            out.push(match p {
                Piece::Line(l) => Out::Line(String::from_utf8_lossy(l).into_owned()),
                Piece::TooLong => Out::TooLong,
            })
        };
        let mut s = LineSplitter::new(max);
        for c in chunks {
            s.feed(c, &mut on);
        }
        if finish {
            s.finish(&mut on);
        }
        out
    }

    fn line(s: &str) -> Out {
        Out::Line(s.to_string())
    }

    #[test]
    fn splits_lines_and_keeps_empty_ones() {
        let out = split_chunks(100, &[b"a\nbb\n\nccc\n"], false);
        assert_eq!(out, vec![line("a"), line("bb"), line(""), line("ccc")]);
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let text = b"first line\nsecond\n\nthird one is longer\nlast";
        let whole = split_chunks(100, &[text], true);
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(split_chunks(100, &[a, b], true), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split_chunks(100, &bytes, true), whole);
    }

    #[test]
    fn a_truncated_last_line_waits_for_the_rest() {
        assert_eq!(
            split_chunks(100, &[b"a\n{\"msg\":"], false),
            vec![line("a")]
        );
        assert_eq!(
            split_chunks(100, &[b"a\n{\"msg\":", b"\"done\"}\n"], false),
            vec![line("a"), line("{\"msg\":\"done\"}")]
        );
        assert_eq!(
            split_chunks(100, &[b"a\n{\"msg\":"], true),
            vec![line("a"), line("{\"msg\":")]
        );
    }

    #[test]
    fn lines_longer_than_the_bound_are_reported_once_and_dropped() {
        let out = split_chunks(4, &[b"ok\n123456789\nnext\n"], false);
        assert_eq!(out, vec![line("ok"), Out::TooLong, line("next")]);
        let out = split_chunks(4, &[b"12", b"34", b"5", b"6789", b"0\nok\n"], false);
        assert_eq!(out, vec![Out::TooLong, line("ok")]);
        // Exactly the bound is fine.
        assert_eq!(split_chunks(4, &[b"1234\n"], false), vec![line("1234")]);
        assert_eq!(
            split_chunks(4, &[b"12", b"34\n"], false),
            vec![line("1234")]
        );
        assert_eq!(
            split_chunks(4, &[b"12", b"345\n"], false),
            vec![Out::TooLong]
        );
    }

    #[test]
    fn memory_stays_bounded_without_a_newline() {
        let mut s = LineSplitter::new(1024);
        let chunk = vec![b'x'; 64 * 1024];
        let mut too_long = 0;
        for _ in 0..100 {
            s.feed(&chunk, &mut |p| {
                assert_eq!(p, Piece::TooLong);
                too_long += 1;
            });
            assert_eq!(s.pending_len(), 0);
        }
        assert_eq!(too_long, 1);
        let mut lines = Vec::new();
        s.feed(b"tail of the long line\nnext\n", &mut |p| {
            lines.push(format!("{p:?}"))
        });
        assert_eq!(lines, vec![format!("{:?}", Piece::Line(b"next"))]);
    }

    #[test]
    fn skipping_to_the_next_line_is_silent() {
        let mut s = LineSplitter::new(100);
        s.skip_to_next_line();
        let mut out = Vec::new();
        s.feed(b"middle of a line\nwhole\n", &mut |p| {
            out.push(format!("{p:?}"))
        });
        assert_eq!(out, vec![format!("{:?}", Piece::Line(b"whole"))]);
    }

    #[test]
    fn reset_drops_the_partial_line() {
        let mut s = LineSplitter::new(100);
        s.feed(b"partial", &mut |_| panic!("no line yet"));
        assert_eq!(s.reset(), 7);
        let mut out = Vec::new();
        s.feed(b"new\n", &mut |p| out.push(format!("{p:?}")));
        assert_eq!(out, vec![format!("{:?}", Piece::Line(b"new"))]);
    }
}
