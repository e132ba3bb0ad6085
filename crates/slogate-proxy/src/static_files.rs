//! Files from the app's `public/` directory, served by slogate as nginx serves them for Rails:
//! `try_files $uri @app`, fingerprinted assets cached forever, precompressed siblings,
//! `ETag`/`Last-Modified` revalidation, byte ranges, and `X-Accel-Redirect`/`X-Sendfile`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use slogate_config::StaticSettings;

/// Response headers of the app kept when slogate serves the file it named
/// (`X-Accel-Redirect`, `X-Sendfile`).
pub const SENDFILE_KEPT: &[&str] = &[
    "content-type",
    "content-disposition",
    "cache-control",
    "expires",
    "content-language",
    "set-cookie",
    "x-request-id",
];

/// Whether an answer is to be compressed (nginx's `gzip` rules): a 2xx other than 204 and
/// 206, not to HEAD, not already encoded, of a listed type, and not known to be smaller
/// than `min_size`.
pub fn compressible(
    settings: &slogate_config::CompressionSettings,
    status: u16,
    head: bool,
    content_type: Option<&str>,
    len: Option<u64>,
    encoding: Option<&str>,
) -> bool {
    if !settings.enabled || head || !(200..300).contains(&status) || matches!(status, 204 | 206) {
        return false;
    }
    if encoding.is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
        return false;
    }
    let mime = content_type.map_or("", slogate_core::media_type);
    settings.types.iter().any(|t| t.eq_ignore_ascii_case(mime))
        && len.is_none_or(|l| l >= settings.min_size)
}

/// A file found for a request.
#[derive(Clone, Debug)]
pub struct FoundFile {
    /// The file on disk (possibly a `.br`/`.gz` sibling).
    pub path: PathBuf,
    /// Its size.
    pub len: u64,
    /// Its modification time.
    pub modified: SystemTime,
    /// `Content-Encoding` of a precompressed sibling.
    pub encoding: Option<&'static str>,
    /// `Content-Type` from the original name's extension.
    pub content_type: &'static str,
    /// Fingerprinted: cache forever.
    pub immutable: bool,
    /// A precompressed sibling exists, so the answer depends on `Accept-Encoding`.
    pub vary: bool,
}

impl FoundFile {
    /// nginx's entity tag: `"<mtime hex>-<size hex>"`.
    pub fn etag(&self) -> String {
        let secs = self
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("\"{secs:x}-{:x}\"", self.len)
    }

    /// `Last-Modified` value.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// Decodes `%XX` in a URL path; `None` for encodings that would escape the root or are not
/// valid UTF-8.
fn decode_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('\0') && !s.contains('\\')).then_some(s)
}

/// The file under `root` a URL path names, refusing `..` and hidden files (but
/// `/.well-known/`).
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = decode_path(url_path)?;
    let mut path = root.to_path_buf();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == ".." || (seg.starts_with('.') && seg != ".well-known") {
            return None;
        }
        path.push(seg);
    }
    Some(path)
}

/// The `Content-Type` for a file name.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "application/javascript",
        "json" | "map" => "application/json",
        "txt" => "text/plain",
        "xml" => "text/xml",
        "csv" => "text/csv",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Whether an `Accept-Encoding` value accepts `coding` (a `q=0` refuses it).
pub fn accepts(accept_encoding: &str, coding: &str) -> bool {
    accept_encoding.split(',').any(|part| {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim();
        let q_zero = it.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>() == Ok(0.0))
        });
        name.eq_ignore_ascii_case(coding) && !q_zero
    })
}

fn regular_file(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file()
        .then(|| (meta.len(), meta.modified().unwrap_or(UNIX_EPOCH)))
}

/// Finds the file for `path` on disk, picking a precompressed sibling the client accepts.
pub fn find(
    settings: &StaticSettings,
    root: &Path,
    url_path: &str,
    accept_encoding: Option<&str>,
) -> Option<FoundFile> {
    let mut path = resolve(root, url_path)?;
    if path.is_dir() {
        path.push("index.html");
    }
    let (len, modified) = regular_file(&path)?;
    let immutable = settings
        .immutable
        .iter()
        .any(|p| url_path.starts_with(p.as_str()));
    Some(with_sibling(
        settings.precompressed,
        path,
        len,
        modified,
        immutable,
        accept_encoding,
    ))
}

/// Picks `file.br` or `file.gz` over `file` when it exists and the client accepts it.
fn with_sibling(
    precompressed: bool,
    path: PathBuf,
    len: u64,
    modified: SystemTime,
    immutable: bool,
    accept_encoding: Option<&str>,
) -> FoundFile {
    let content_type = content_type(&path);
    let mut found = FoundFile {
        path: path.clone(),
        len,
        modified,
        encoding: None,
        content_type,
        immutable,
        vary: false,
    };
    if !precompressed {
        return found;
    }
    for (ext, coding) in [("br", "br"), ("gz", "gzip")] {
        let mut sibling = path.clone().into_os_string();
        sibling.push(".");
        sibling.push(ext);
        let sibling = PathBuf::from(sibling);
        if let Some((slen, smod)) = regular_file(&sibling) {
            found.vary = true;
            if accept_encoding.is_some_and(|ae| accepts(ae, coding)) && found.encoding.is_none() {
                found.path = sibling;
                found.len = slen;
                found.modified = smod;
                found.encoding = Some(coding);
            }
        }
    }
    found
}

/// A file named by `X-Accel-Redirect` (a URL under an internal prefix) or `X-Sendfile` (a
/// path on disk, which must lie under an internal directory or the static root).
pub fn sendfile_target(
    settings: &StaticSettings,
    accel: Option<&str>,
    sendfile: Option<&str>,
) -> Option<PathBuf> {
    if let Some(url) = accel {
        let url = url.split('?').next().unwrap_or(url);
        for (prefix, dir) in &settings.internal {
            if let Some(rest) = url.strip_prefix(prefix.as_str()) {
                return resolve(dir, rest);
            }
        }
        return settings.root.as_ref().and_then(|r| resolve(r, url));
    }
    let path = PathBuf::from(sendfile?);
    let path = path.canonicalize().ok()?;
    let allowed = settings
        .internal
        .iter()
        .map(|(_, d)| d)
        .chain(settings.root.iter())
        .filter_map(|d| d.canonicalize().ok())
        .any(|d| path.starts_with(d));
    allowed.then_some(path)
}

/// Opens a file found by [`sendfile_target`] for serving.
pub fn sendfile_file(
    settings: &StaticSettings,
    path: PathBuf,
    accept_encoding: Option<&str>,
) -> Option<FoundFile> {
    let (len, modified) = regular_file(&path)?;
    Some(with_sibling(
        settings.precompressed,
        path,
        len,
        modified,
        false,
        accept_encoding,
    ))
}

/// What a request asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    NotModified,
    Full,
    Ranges(Vec<(u64, u64)>),
    Unsatisfiable,
}

/// Ranges served at most in one multipart answer; a request for more gets the whole file
/// (a defence against range amplification).
const MAX_RANGES: usize = 16;

fn etag_matches(list: &str, etag: &str) -> bool {
    let strong = etag.trim_start_matches("W/");
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == strong)
}

fn answer<'a>(header: impl Fn(&str) -> Option<&'a str>, file: &FoundFile) -> Answer {
    let etag = file.etag();
    if let Some(inm) = header("if-none-match") {
        if etag_matches(inm, &etag) {
            return Answer::NotModified;
        }
    } else if let Some(ims) = header("if-modified-since") {
        // nginx's default (`if_modified_since exact`): the same date, to the second.
        if ims.trim() == file.last_modified() {
            return Answer::NotModified;
        }
    }
    let Some(range) = header("range") else {
        return Answer::Full;
    };
    if let Some(if_range) = header("if-range") {
        let same = if if_range.trim_start().starts_with('"') || if_range.starts_with("W/") {
            if_range.trim() == etag
        } else {
            if_range.trim() == file.last_modified()
        };
        if !same {
            return Answer::Full;
        }
    }
    parse_range(range, file.len)
}

/// A `bytes=` range set: every satisfiable range in order (nginx serves several as
/// `multipart/byteranges`); malformed sets, or more than [`MAX_RANGES`], get the whole file.
fn parse_range(range: &str, len: u64) -> Answer {
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Answer::Full;
    };
    let mut ranges = Vec::new();
    for part in spec.split(',') {
        match parse_one_range(part, len) {
            Err(()) => return Answer::Full,
            Ok(Some(r)) => ranges.push(r),
            Ok(None) => {}
        }
    }
    match ranges.len() {
        0 => Answer::Unsatisfiable,
        n if n > MAX_RANGES => Answer::Full,
        _ => Answer::Ranges(ranges),
    }
}

/// One `first-last`, `first-` or `-suffix`: `Ok(None)` when it lies past the end.
fn parse_one_range(part: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let (start, end) = part.trim().split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let (first, last) = match (start.parse::<u64>(), end.parse::<u64>()) {
        (Ok(s), Ok(e)) if s <= e => (s, e.min(len.saturating_sub(1))),
        (Ok(s), Err(_)) if end.is_empty() => (s, len.saturating_sub(1)),
        (Err(_), Ok(n)) if start.is_empty() => {
            if n == 0 {
                return Ok(None);
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        _ => return Err(()),
    };
    Ok((first < len).then_some((first, last)))
}

/// A piece of a file answer: bytes slogate writes (multipart part heads), or a range of the
/// file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Bytes written as they are.
    Text(Bytes),
    /// `length` bytes of the file from `offset`.
    File {
        /// First byte.
        offset: u64,
        /// Bytes.
        length: u64,
    },
}

/// How a file is answered: status, headers, and the bytes to send.
pub struct FilePlan {
    /// 200 (or the status asked for), 206, 304 or 416.
    pub status: u16,
    /// Response headers, `extra` last.
    pub headers: Vec<(String, String)>,
    /// What the body is made of, in order.
    pub segments: Vec<Segment>,
    /// Body bytes in all.
    pub length: u64,
}

/// Plans the answer to a request for `file`: conditional requests, a byte range, and the
/// headers nginx writes. `extra` carries headers kept from the app's response (for
/// X-Accel-Redirect) or added by slogate (request id, HSTS).
pub fn plan<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    file: &FoundFile,
    status_ok: u16,
    extra: &[(String, String)],
) -> FilePlan {
    let (status, ranges) = match answer(header, file) {
        Answer::NotModified => (304, Vec::new()),
        Answer::Full => (status_ok, Vec::new()),
        Answer::Ranges(r) => (206, r),
        Answer::Unsatisfiable => (416, Vec::new()),
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + extra.len());
    let mut set = |k: &str, v: String| headers.push((k.to_string(), v));
    if !extra
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        set("content-type", file.content_type.to_string());
    }
    set("last-modified", file.last_modified());
    set("etag", file.etag());
    set("accept-ranges", "bytes".into());
    if file.immutable {
        set(
            "cache-control",
            "public, max-age=31536000, immutable".into(),
        );
    }
    if let Some(enc) = file.encoding {
        set("content-encoding", enc.into());
    }
    if file.vary {
        set("vary", "Accept-Encoding".into());
    }
    let whole = |offset, length| vec![Segment::File { offset, length }];
    let segments = match (status, ranges.as_slice()) {
        (206, [(a, b)]) => {
            set("content-range", format!("bytes {a}-{b}/{}", file.len));
            whole(*a, b - a + 1)
        }
        (206, many) => {
            let part_type = extra
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map_or(file.content_type, |(_, v)| v.as_str());
            let boundary = crate::request_id::generate();
            let segments = multipart(many, file.len, part_type, &boundary);
            let mut headers: Vec<(String, String)> = headers
                .into_iter()
                .chain(extra.iter().cloned())
                .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
                .collect();
            headers.push((
                "content-type".into(),
                format!("multipart/byteranges; boundary={boundary}"),
            ));
            return plan_of(status, headers, segments);
        }
        (416, _) => {
            set("content-range", format!("bytes */{}", file.len));
            Vec::new()
        }
        (304, _) => Vec::new(),
        _ => whole(0, file.len),
    };
    headers.extend(extra.iter().cloned());
    plan_of(status, headers, segments)
}

fn plan_of(status: u16, headers: Vec<(String, String)>, segments: Vec<Segment>) -> FilePlan {
    let length = segments
        .iter()
        .map(|s| match s {
            Segment::Text(b) => b.len() as u64,
            Segment::File { length, .. } => *length,
        })
        .sum();
    FilePlan {
        status,
        headers,
        segments,
        length,
    }
}

/// The parts of a `multipart/byteranges` body (RFC 9110 14.6), as nginx writes them.
fn multipart(ranges: &[(u64, u64)], len: u64, part_type: &str, boundary: &str) -> Vec<Segment> {
    let mut segments = Vec::with_capacity(ranges.len() * 2 + 1);
    for (a, b) in ranges {
        segments.push(Segment::Text(Bytes::from(format!(
            "\r\n--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {a}-{b}/{len}\r\n\r\n"
        ))));
        segments.push(Segment::File {
            offset: *a,
            length: b - a + 1,
        });
    }
    segments.push(Segment::Text(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_types_compare_without_case_or_parameters() {
        let settings = slogate_config::CompressionSettings {
            enabled: true,
            algorithms: Vec::new(),
            min_size: 100,
            types: vec!["application/json".into(), "text/html".into()],
        };
        let ok =
            |ct: &str, len: Option<u64>| compressible(&settings, 200, false, Some(ct), len, None);
        assert!(ok("application/json", Some(100)));
        assert!(ok("Application/JSON; charset=utf-8", None));
        assert!(ok(" text/html ;q=1", Some(5000)));
        assert!(!ok("application/json", Some(99)), "under min_size");
        assert!(!ok("image/png", Some(5000)));
        assert!(!ok("", None));
        assert!(!compressible(&settings, 200, false, None, None, None));
        assert!(!compressible(
            &settings,
            206,
            false,
            Some("text/html"),
            None,
            None
        ));
        assert!(!compressible(
            &settings,
            200,
            false,
            Some("text/html"),
            None,
            Some("gzip")
        ));
    }

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/srv/public");
        assert_eq!(
            resolve(root, "/assets/app.js"),
            Some(PathBuf::from("/srv/public/assets/app.js"))
        );
        assert_eq!(
            resolve(root, "/a%20b.txt"),
            Some(PathBuf::from("/srv/public/a b.txt"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/assets/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(root, "/.env"), None);
        assert_eq!(resolve(root, "/x%00y"), None);
        assert_eq!(resolve(root, "/a%5c..%5cb"), None);
        assert!(resolve(root, "/.well-known/security.txt").is_some());
    }

    #[test]
    fn ranges() {
        let one = |a, b| Answer::Ranges(vec![(a, b)]);
        assert_eq!(parse_range("bytes=0-9", 100), one(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), one(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), one(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), one(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Answer::Unsatisfiable);
        assert_eq!(
            parse_range("bytes=0-1, 5-6,200-300", 100),
            Answer::Ranges(vec![(0, 1), (5, 6)]),
            "several ranges; one past the end is left out"
        );
        assert_eq!(parse_range("bytes=200-,300-", 100), Answer::Unsatisfiable);
        let many = (0..17)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_range(&format!("bytes={many}"), 100), Answer::Full);
        assert_eq!(parse_range("items=0-1", 100), Answer::Full);
        assert_eq!(parse_range("bytes=9-1", 100), Answer::Full);
        assert_eq!(parse_range("bytes=0-1,x", 100), Answer::Full);
    }

    #[test]
    fn several_ranges_make_a_multipart_body() {
        let parts = multipart(&[(0, 1), (5, 6)], 10, "text/plain", "B");
        let text: Vec<u8> = parts
            .iter()
            .flat_map(|s| match s {
                Segment::Text(b) => b.to_vec(),
                Segment::File { offset, length } => {
                    b"0123456789"[*offset as usize..(offset + length) as usize].to_vec()
                }
            })
            .collect();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n56\r\n--B--\r\n"
        );
    }

    #[test]
    fn accept_encoding_with_q_values() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(!accepts("gzip;q=0, br", "gzip"));
        assert!(accepts("GZIP;q=0.5", "gzip"));
        assert!(!accepts("identity", "gzip"));
        assert!(etag_matches("\"a\", W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
    }
}
