//! The corpus of requests read two ways (tests/smuggling/, format: tests/smuggling/README.md):
//! its reader, the raw client and the recording upstream. `own/smuggling.rs` checks that every
//! case file parses; `needs/nginx/nginx_parity.rs` sends each one to nginx and to slogate.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One case file.
pub struct Case {
    pub file: String,
    pub name: String,
    pub why: Option<String>,
    /// Final statuses slogate must answer, when deliberately not nginx's.
    pub expect_slogate: Option<Vec<u16>>,
    pub known_bug: Option<String>,
    /// What the app must receive from slogate: (method, target, body), in order.
    pub upstream: Vec<(String, String, Vec<u8>)>,
    /// Header names that must not reach the app from slogate.
    pub upstream_without: Vec<String>,
    /// Header values every request slogate forwards must carry: (name, value).
    pub upstream_header: Vec<(String, String)>,
    /// Half-close the client's side after sending.
    pub shutdown: bool,
    /// How long a silent connection is waited on before the answers are taken as read.
    pub idle: Duration,
    pub request: Vec<u8>,
}

/// `\r \n \t \0 \\ \xHH` escapes and `{{N*TEXT}}` repetitions, on one line of a case.
pub fn unescape(line: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            let end = line[i..]
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {line:?}"))?;
            let inner = &line[i + 2..i + end];
            let (n, text) = inner
                .split_once('*')
                .ok_or_else(|| format!("{{{{N*TEXT}}}} expected: {inner:?}"))?;
            let n: usize = n.trim().parse().map_err(|_| format!("count {n:?}"))?;
            let text = unescape(text)?;
            for _ in 0..n {
                out.extend_from_slice(&text);
            }
            i += end + 2;
            continue;
        }
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or("a lone \\ at the end of a line")?;
        i += 2;
        out.push(match c {
            b'r' => b'\r',
            b'n' => b'\n',
            b't' => b'\t',
            b'0' => 0,
            b'\\' => b'\\',
            b'{' => b'{',
            b'x' => {
                let hex = line.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                i += 2;
                u8::from_str_radix(hex, 16).map_err(|_| format!("\\x{hex}"))?
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        });
    }
    Ok(out)
}

pub fn parse_case(file: &str, text: &str) -> Result<Case, String> {
    let (meta, raw) = text
        .split_once("\n\n")
        .ok_or("no blank line between the header block and the request")?;
    let mut case = Case {
        file: file.to_string(),
        name: String::new(),
        why: None,
        expect_slogate: None,
        known_bug: None,
        upstream: Vec::new(),
        upstream_without: Vec::new(),
        upstream_header: Vec::new(),
        shutdown: false,
        idle: Duration::from_secs(3),
        request: Vec::new(),
    };
    for line in meta
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("`key: value` expected: {line:?}"))?;
        let value = value.trim();
        match key.trim() {
            "name" => case.name = value.to_string(),
            "why" => case.why = Some(value.to_string()),
            "expect_slogate" => {
                let codes = value
                    .split_whitespace()
                    .map(|c| c.parse::<u16>().map_err(|_| format!("status {c:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
                case.expect_slogate = Some(codes);
            }
            "known_bug" => case.known_bug = Some(value.to_string()),
            "upstream" => {
                let mut parts = value.splitn(3, ' ');
                let method = parts.next().unwrap_or_default().to_string();
                let target = parts.next().ok_or("upstream: METHOD TARGET [BODY]")?;
                let body = unescape(parts.next().unwrap_or(""))?;
                let target = String::from_utf8_lossy(&unescape(target)?).into_owned();
                case.upstream.push((method, target, body));
            }
            "upstream_without" => case
                .upstream_without
                .extend(value.split_whitespace().map(str::to_string)),
            "upstream_header" => {
                let (name, v) = value
                    .split_once(':')
                    .ok_or("upstream_header: NAME: VALUE")?;
                case.upstream_header
                    .push((name.trim().to_string(), v.trim().to_string()));
            }
            "shutdown" => case.shutdown = value == "yes",
            "idle" => {
                let secs: f64 = value.parse().map_err(|_| format!("idle {value:?}"))?;
                case.idle = Duration::from_secs_f64(secs);
            }
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    if case.name.is_empty() {
        return Err("no name:".into());
    }
    if case.expect_slogate.is_some() && case.why.is_none() {
        return Err("expect_slogate: without a why:".into());
    }
    for line in raw.lines() {
        case.request.extend(unescape(line)?);
    }
    if case.request.is_empty() {
        return Err("no request".into());
    }
    Ok(case)
}

pub fn load(dir: &Path) -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(p).unwrap();
            parse_case(&name, &text).unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect()
}

// -----------------------------------------------------------------------------------------
// The recording upstream

/// One request as the app received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// De-chunked when it came chunked.
    pub body: Vec<u8>,
    /// Framing two readers could disagree on (why, when so).
    pub ambiguous: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A std listener that answers `200 ok` to every request it can read and keeps what it
/// read. Bytes it cannot read as a request are kept as a request named `UNPARSED`.
pub struct Recorder {
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = shared.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        Recorder { addr, seen }
    }

    /// Everything received since the last call.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds at least `n` bytes; false at EOF.
fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> bool {
    let mut chunk = [0u8; 16384];
    while buf.len() < n {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
    true
}

fn fill_until(s: &mut TcpStream, buf: &mut Vec<u8>, from: usize, needle: &[u8]) -> Option<usize> {
    loop {
        if let Some(p) = find(&buf[from.min(buf.len())..], needle) {
            return Some(from + p);
        }
        let want = buf.len() + 1;
        if !fill(s, buf, want) {
            return None;
        }
    }
}

fn serve(mut s: TcpStream, seen: &Mutex<Vec<Seen>>) {
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut buf: Vec<u8> = Vec::new();
    let unparsed = |buf: &[u8], why: &str| Seen {
        method: "UNPARSED".into(),
        target: String::new(),
        headers: vec![],
        body: buf.to_vec(),
        ambiguous: Some(why.to_string()),
    };
    loop {
        let Some(end) = fill_until(&mut s, &mut buf, 0, b"\r\n\r\n") else {
            if !buf.is_empty() {
                seen.lock().unwrap().push(unparsed(&buf, "no end of head"));
            }
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let (method, target) = (
            first.next().unwrap_or_default().to_string(),
            first.next().unwrap_or_default().to_string(),
        );
        let headers: Vec<(String, String)> = lines
            .map(|l| match l.split_once(':') {
                Some((k, v)) => (k.to_string(), v.trim().to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        let all = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let (cls, tes, hosts) = (all("content-length"), all("transfer-encoding"), all("host"));
        let mut ambiguous = None;
        if !cls.is_empty() && !tes.is_empty() {
            ambiguous = Some("Content-Length and Transfer-Encoding".to_string());
        } else if cls.len() > 1 || tes.len() > 1 || hosts.len() > 1 {
            ambiguous = Some(format!(
                "{} Content-Length, {} Transfer-Encoding, {} Host",
                cls.len(),
                tes.len(),
                hosts.len()
            ));
        } else if tes
            .first()
            .is_some_and(|t| !t.eq_ignore_ascii_case("chunked"))
        {
            ambiguous = Some(format!("Transfer-Encoding: {}", tes[0]));
        } else if headers
            .iter()
            .any(|(k, _)| k.is_empty() || k.bytes().any(|c| c <= b' ' || c == 0x7f || c == b':'))
        {
            ambiguous = Some("a header line that is no `name: value`".to_string());
        }
        let mut body = Vec::new();
        let mut at = end + 4;
        if tes
            .first()
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
        {
            // Chunks, then trailers up to an empty line.
            loop {
                let Some(eol) = fill_until(&mut s, &mut buf, at, b"\r\n") else {
                    seen.lock()
                        .unwrap()
                        .push(unparsed(&buf, "cut in a chunk size"));
                    return;
                };
                let line = String::from_utf8_lossy(&buf[at..eol]).into_owned();
                let size = line.split(';').next().unwrap_or_default().trim();
                let Ok(size) = usize::from_str_radix(size, 16) else {
                    seen.lock().unwrap().push(unparsed(&buf, "bad chunk size"));
                    return;
                };
                at = eol + 2;
                if size == 0 {
                    loop {
                        let Some(eol) = fill_until(&mut s, &mut buf, at, b"\r\n") else {
                            seen.lock().unwrap().push(unparsed(&buf, "cut in trailers"));
                            return;
                        };
                        let empty = eol == at;
                        at = eol + 2;
                        if empty {
                            break;
                        }
                    }
                    break;
                }
                if !fill(&mut s, &mut buf, at + size + 2) {
                    seen.lock().unwrap().push(unparsed(&buf, "cut in a chunk"));
                    return;
                }
                body.extend_from_slice(&buf[at..at + size]);
                at += size + 2;
            }
        } else if let Some(cl) = cls.first() {
            let Ok(n) = cl.trim().parse::<usize>() else {
                seen.lock()
                    .unwrap()
                    .push(unparsed(&buf, "bad Content-Length"));
                return;
            };
            if !fill(&mut s, &mut buf, at + n) {
                seen.lock().unwrap().push(unparsed(&buf, "cut in the body"));
                return;
            }
            body.extend_from_slice(&buf[at..at + n]);
            at += n;
        }
        let head_request = method == "HEAD";
        seen.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body,
            ambiguous,
        });
        buf.drain(..at);
        let answer: &[u8] = if head_request {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        if s.write_all(answer).is_err() {
            return;
        }
    }
}

// -----------------------------------------------------------------------------------------
// The client

/// Sends `request`, reads until the server closes or is silent for `idle`, and returns
/// the statuses of the answers read (1xx included), and the raw bytes.
pub fn exchange(addr: &str, case: &Case) -> (Vec<u16>, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (vec![], vec![]);
    };
    s.set_read_timeout(Some(case.idle)).unwrap();
    // A server may answer and close before the whole request is written.
    let _ = s.write_all(&case.request);
    if case.shutdown {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 16384];
    let hard_stop = Instant::now() + Duration::from_secs(15);
    while Instant::now() < hard_stop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    (statuses(&got), got)
}

/// The statuses of the answers in `buf`, one after another.
pub fn statuses(mut buf: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(end) = find(buf, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let Some(status) = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
        else {
            break;
        };
        out.push(status);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        buf = &buf[end + 4..];
        if (100..200).contains(&status) || status == 204 || status == 304 {
            continue;
        }
        if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            // Skip the chunks.
            loop {
                let Some(eol) = find(buf, b"\r\n") else {
                    return out;
                };
                let size = String::from_utf8_lossy(&buf[..eol]).into_owned();
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .unwrap_or(0);
                buf = &buf[(eol + 2).min(buf.len())..];
                if size == 0 {
                    let Some(e) = find(buf, b"\r\n") else {
                        return out;
                    };
                    buf = &buf[e + 2..];
                    break;
                }
                buf = &buf[(size + 2).min(buf.len())..];
            }
        } else if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
            buf = &buf[n.min(buf.len())..];
        } else {
            break;
        }
    }
    out
}

pub fn show(codes: &[u16]) -> String {
    if codes.is_empty() {
        return "-".into();
    }
    codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Long targets and bodies cut for the table.
fn short(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...({} bytes)", &s[..i], s.len()),
        None => s.to_string(),
    }
}

pub fn show_seen(seen: &[Seen]) -> String {
    let items: Vec<String> = seen
        .iter()
        .map(|r| {
            format!(
                "{} {} {:?} host={}{}{}",
                r.method,
                short(&r.target),
                short(&String::from_utf8_lossy(&r.body)),
                r.header("host").unwrap_or("(none)"),
                r.header("x-forwarded-host")
                    .map(|h| format!(" x-forwarded-host={h}"))
                    .unwrap_or_default(),
                r.ambiguous
                    .as_ref()
                    .map(|a| format!(" AMBIGUOUS({a})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!("[{}]", items.join("; "))
}
