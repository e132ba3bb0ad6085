//! Streaming decoders for compressed response bodies, writing into any [`std::io::Write`].
//!
//! The decoded bytes are handed to the sink as they are produced, never collected, so a
//! compressed body is inspected in constant memory whatever its expanded size.

use std::io::Write;

use brotli_decompressor::DecompressorWriter;
use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// A `Content-Encoding` slogate can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// No encoding.
    Identity,
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped, or raw as some servers send it).
    Deflate,
    /// `br`.
    Brotli,
}

impl Encoding {
    /// Reads a `Content-Encoding` header value; `None` for encodings slogate cannot decode
    /// (including stacked ones such as `gzip, br`).
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        let Some(value) = value else {
            return Some(Encoding::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "deflate" => Some(Encoding::Deflate),
            "br" => Some(Encoding::Brotli),
            _ => None,
        }
    }
}

enum Inner<W: Write> {
    Identity(W),
    /// Deflate before its first two bytes tell zlib from raw; holds those seen so far.
    DeflatePending(W, Vec<u8>),
    Gzip(GzDecoder<W>),
    Zlib(ZlibDecoder<W>),
    RawDeflate(DeflateDecoder<W>),
    Brotli(Box<DecompressorWriter<W>>),
    /// Transient state while switching variants.
    Moved,
}

/// Decodes a body chunk by chunk into `W`.
pub struct StreamDecoder<W: Write> {
    inner: Inner<W>,
    failed: bool,
}

impl<W: Write> StreamDecoder<W> {
    /// A decoder for `encoding` writing into `sink`.
    pub fn new(encoding: Encoding, sink: W) -> Self {
        let inner = match encoding {
            Encoding::Identity => Inner::Identity(sink),
            Encoding::Gzip => Inner::Gzip(GzDecoder::new(sink)),
            Encoding::Deflate => Inner::DeflatePending(sink, Vec::new()),
            Encoding::Brotli => Inner::Brotli(Box::new(DecompressorWriter::new(sink, 8 * 1024))),
        };
        StreamDecoder {
            inner,
            failed: false,
        }
    }

    /// Whether the compressed stream was found corrupt or cut short.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The sink.
    pub fn sink_mut(&mut self) -> &mut W {
        match &mut self.inner {
            Inner::Identity(w) | Inner::DeflatePending(w, _) => w,
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::RawDeflate(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Moved => unreachable!("decoder state is restored before returning"),
        }
    }

    /// Decodes the next chunk.
    pub fn write(&mut self, chunk: &[u8]) {
        if self.failed || chunk.is_empty() {
            return;
        }
        if let Inner::DeflatePending(_, head) = &mut self.inner {
            head.extend_from_slice(chunk);
            if head.len() < 2 {
                return;
            }
            self.start_deflate();
            return;
        }
        self.write_decoded(chunk);
    }

    /// Picks zlib or raw deflate from the first two bytes, then decodes them.
    fn start_deflate(&mut self) {
        if let Inner::DeflatePending(sink, head) = std::mem::replace(&mut self.inner, Inner::Moved)
        {
            // A zlib stream starts with CM=8 and a header whose value is a multiple of 31.
            let zlib = head.len() >= 2
                && head[0] & 0x0f == 8
                && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            self.inner = if zlib {
                Inner::Zlib(ZlibDecoder::new(sink))
            } else {
                Inner::RawDeflate(DeflateDecoder::new(sink))
            };
            self.write_decoded(&head);
        }
    }

    fn write_decoded(&mut self, chunk: &[u8]) {
        let result = match &mut self.inner {
            Inner::Identity(w) => w.write_all(chunk),
            Inner::Gzip(d) => d.write_all(chunk),
            Inner::Zlib(d) => d.write_all(chunk),
            Inner::RawDeflate(d) => d.write_all(chunk),
            Inner::Brotli(d) => d.write_all(chunk),
            Inner::DeflatePending(..) | Inner::Moved => Ok(()),
        };
        if result.is_err() {
            self.failed = true;
        }
    }

    /// The body ended: flush what the decoder holds into the sink. Returns `false` if the
    /// compressed stream was corrupt or cut short.
    pub fn finish(&mut self) -> bool {
        if matches!(&self.inner, Inner::DeflatePending(_, head) if !head.is_empty()) {
            self.start_deflate();
        }
        if self.failed {
            return false;
        }
        let ok = match &mut self.inner {
            Inner::Identity(_) | Inner::DeflatePending(..) | Inner::Moved => true,
            Inner::Gzip(d) => d.try_finish().is_ok(),
            Inner::Zlib(d) => d.try_finish().is_ok(),
            Inner::RawDeflate(d) => d.try_finish().is_ok(),
            Inner::Brotli(d) => d.close().is_ok(),
        };
        self.failed = !ok;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn roundtrip(encoding: Encoding, compressed: &[u8], expect: &[u8]) {
        for split in [1, 7, 4096, compressed.len().max(1)] {
            let mut d = StreamDecoder::new(encoding, Vec::new());
            for c in compressed.chunks(split) {
                d.write(c);
            }
            assert!(d.finish(), "{encoding:?} split {split}");
            assert_eq!(d.sink_mut().as_slice(), expect);
        }
    }

    #[test]
    fn decodes_each_encoding() {
        let text = br#"{"data":{"a":1},"errors":[{"extensions":{"code":"X"}}]}"#.repeat(50);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text).unwrap();
        roundtrip(Encoding::Gzip, &gz.finish().unwrap(), &text);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        roundtrip(Encoding::Deflate, &z.finish().unwrap(), &text);
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&text).unwrap();
        roundtrip(Encoding::Deflate, &raw.finish().unwrap(), &text);
        roundtrip(Encoding::Identity, &text, &text);
    }

    #[test]
    fn corrupt_and_truncated_streams_fail() {
        let mut d = StreamDecoder::new(Encoding::Gzip, Vec::new());
        d.write(b"<html>not gzip</html>");
        assert!(!d.finish());
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&[b'x'; 10_000]).unwrap();
        let full = gz.finish().unwrap();
        let mut d = StreamDecoder::new(Encoding::Gzip, Vec::new());
        d.write(&full[..full.len() / 2]);
        assert!(!d.finish());
        let mut d = StreamDecoder::new(Encoding::Brotli, Vec::new());
        d.write(b"\xff\xff\xff garbage");
        assert!(!d.finish());
    }

    #[test]
    fn encodings_from_headers() {
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("br")), Some(Encoding::Brotli));
        assert_eq!(Encoding::from_header(Some("gzip, br")), None);
        assert_eq!(Encoding::from_header(Some("zstd")), None);
    }
}
