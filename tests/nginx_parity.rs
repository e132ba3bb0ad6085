//! Parity with nginx: the same requests through a real nginx (configured as Rails apps
//! configure it, tests/nginx/rails.conf.template) and through slogate, both in front of the
//! same Rails fixture. Rails must see the same forwarded headers, and clients the same
//! statuses, for the cases a drop-in replacement must not change. Intended differences are
//! asserted too, and listed in docs/replacing-nginx.md.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// A copy of public/ next to a tmp/ directory, so the maintenance file
/// (`$document_root/../tmp/maintenance.txt`) can be created without touching the repository.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(root().join("tests/rails-app/public"))
            .arg(dir.path().join("public"))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Site { dir }
    }
    fn public(&self) -> PathBuf {
        self.dir.path().join("public")
    }
    fn maintenance_file(&self) -> PathBuf {
        self.dir.path().join("tmp/maintenance.txt")
    }
}

fn files() -> PathBuf {
    root().join("tests/rails-app/files")
}

struct Nginx {
    port: u16,
    _proc: Proc,
    _prefix: tempfile::TempDir,
}

fn start_nginx(upstream: &str, site: &Site, read_timeout: &str) -> Nginx {
    require_tool("nginx", "nginx");
    let prefix = tempfile::tempdir().unwrap();
    let port = free_port();
    let template = std::fs::read_to_string(root().join("tests/nginx/rails.conf.template")).unwrap();
    let values = [
        ("PREFIX", prefix.path().display().to_string()),
        ("PORT", port.to_string()),
        ("UPSTREAM", upstream.to_string()),
        ("ROOT", site.public().display().to_string()),
        ("FILES", files().display().to_string()),
        ("MAINTENANCE", site.maintenance_file().display().to_string()),
        ("READ_TIMEOUT", read_timeout.to_string()),
        (
            "ERROR_LOG",
            prefix.path().join("error.log").display().to_string(),
        ),
        (
            "ACCESS_LOG",
            prefix.path().join("access.log").display().to_string(),
        ),
    ];
    let conf = values
        .iter()
        .fold(template, |t, (k, v)| t.replace(&format!("{{{{{k}}}}}"), v));
    let conf_path = prefix.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let pid = prefix.path().join("nginx.pid");
    // As root, nginx's workers would drop to `nobody`, who cannot enter the 0700 prefix.
    let user = if is_root() { "user root; " } else { "" };
    let child = Command::new("nginx")
        .arg("-p")
        .arg(prefix.path())
        .arg("-c")
        .arg(&conf_path)
        .args(["-e", "stderr", "-g"])
        .arg(format!("daemon off; {user}pid {};", pid.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(prefix.path().join("stderr.log")).unwrap(),
        ))
        .spawn()
        .expect("nginx");
    let n = Nginx {
        port,
        _proc: Proc {
            child,
            name: "nginx".into(),
        },
        _prefix: prefix,
    };
    wait_for("nginx to listen", Duration::from_secs(20), || {
        get(&format!("127.0.0.1:{port}"), "/robots.txt")
            .ok()
            .filter(|r| r.status == 200)
    });
    n
}

fn slogate_for(upstream: &str, site: &Site, read_timeout: &str) -> Slogate {
    let extra = format!(
        "upstream:\n  name: rails\n  backends: [\"{upstream}\"]\n  read_timeout: {read_timeout}\n  health_check:\n    enabled: false\nstatic:\n  root: {}\n  internal:\n    \"/protected/\": {}\npages:\n  maintenance_file: {}\n",
        site.public().display(),
        files().display(),
        site.maintenance_file().display()
    );
    start_slogate("unused", &extra)
}

/// Both proxies in front of the shared Rails.
struct Pair {
    nginx: Nginx,
    slogate: Slogate,
    site: Site,
}

impl Pair {
    fn new(upstream: &str, read_timeout: &str) -> Pair {
        let site = Site::new();
        Pair {
            nginx: start_nginx(upstream, &site, read_timeout),
            slogate: slogate_for(upstream, &site, read_timeout),
            site,
        }
    }
    fn addrs(&self) -> [(String, &'static str); 2] {
        [
            (format!("127.0.0.1:{}", self.nginx.port), "nginx"),
            (self.slogate.addr(), "slogate"),
        ]
    }
    fn both(&self, f: impl Fn(&str) -> Response) -> (Response, Response) {
        let [(n, _), (s, _)] = self.addrs();
        (f(&n), f(&s))
    }
}

fn headers_seen(addr: &str) -> serde_json::Map<String, Value> {
    let request = "GET /echo?x=1 HTTP/1.1\r\nHost: app.example.com:8080\r\nX-Request-Id: parity-1\r\nX-Forwarded-For: 6.6.6.6\r\nProxy: http://evil.example:3128\r\nUser-Agent: parity\r\nConnection: close\r\n\r\n";
    let r = raw(addr, request.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{addr}: {}", r.text());
    r.json()["headers"].as_object().unwrap().clone()
}

#[test]
fn rails_sees_the_same_forwarded_headers() {
    let p = Pair::new(&rails().addr(), "60s");
    let [(n, _), (s, _)] = p.addrs();
    let (nh, sh) = (headers_seen(&n), headers_seen(&s));
    // Same value through both.
    for key in [
        "HTTP_HOST",
        "HTTP_X_REAL_IP",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_REQUEST_ID",
        "HTTP_USER_AGENT",
        "HTTP_X_ACCEL_MAPPING",
        "HTTP_X_SENDFILE_TYPE",
        "REMOTE_ADDR",
    ] {
        assert_eq!(
            nh.get(key),
            sh.get(key),
            "{key}: nginx {:?} slogate {:?}",
            nh.get(key),
            sh.get(key)
        );
    }
    // Each proxy's own listening port.
    assert_eq!(nh["HTTP_X_FORWARDED_PORT"], p.nginx.port.to_string());
    assert_eq!(sh["HTTP_X_FORWARDED_PORT"], p.slogate.port.to_string());
    // X-Request-Start: the same `t=<seconds>.<millis>` form.
    for h in [&nh, &sh] {
        let v = h["HTTP_X_REQUEST_START"].as_str().unwrap();
        let (secs, millis) = v.trim_start_matches("t=").split_once('.').unwrap();
        assert!(secs.len() == 10 && millis.len() == 3, "{v}");
    }
    // httpoxy: neither forwards Proxy.
    assert!(nh.get("HTTP_PROXY").is_none() && sh.get("HTTP_PROXY").is_none());
    // Intended difference: nginx appends to a client's X-Forwarded-For even from an untrusted
    // client ($proxy_add_x_forwarded_for); slogate replaces it unless the peer is trusted.
    assert_eq!(nh["HTTP_X_FORWARDED_FOR"], "6.6.6.6, 127.0.0.1");
    assert_eq!(sh["HTTP_X_FORWARDED_FOR"], "127.0.0.1");
    // No other forwarding header differs: the sets of headers Rails sees are the same.
    let keys = |h: &serde_json::Map<String, Value>| -> std::collections::BTreeSet<String> {
        h.keys()
            .filter(|k| k.starts_with("HTTP_"))
            .cloned()
            .collect()
    };
    assert_eq!(keys(&nh), keys(&sh), "nginx {nh:?}\nslogate {sh:?}");
}

#[test]
fn statuses_match_for_limits_static_files_and_maintenance() {
    let p = Pair::new(&rails().addr(), "60s");
    let big = vec![b'x'; 2 << 20];
    let (n, s) = p.both(|a| post(a, "/echo", "application/octet-stream", &big, &[]).unwrap());
    assert_eq!((n.status, s.status), (413, 413), "body over 1m");
    let (n, s) =
        p.both(|a| post(a, "/echo", "application/octet-stream", &big[..900_000], &[]).unwrap());
    assert_eq!((n.status, s.status), (200, 200), "body under 1m");

    let (n, s) = p.both(|a| get(a, "/robots.txt").unwrap());
    assert_eq!((n.status, s.status), (200, 200));
    assert_eq!(n.body, s.body);
    assert_eq!(n.header("etag"), s.header("etag"), "the same entity tag");
    assert_eq!(n.header("last-modified"), s.header("last-modified"));
    let etag = n.header("etag").unwrap().to_string();
    let (n, s) = p.both(|a| get_with(a, "/robots.txt", &[("If-None-Match", &etag)]).unwrap());
    assert_eq!((n.status, s.status), (304, 304));
    let modified = s.header("last-modified").map(str::to_string);
    let (n, s) = p.both(|a| {
        get_with(
            a,
            "/robots.txt",
            &[("If-Modified-Since", modified.as_deref().unwrap_or(""))],
        )
        .unwrap()
    });
    assert_eq!((n.status, s.status), (304, 304));
    let (n, s) = p.both(|a| get_with(a, "/robots.txt", &[("Range", "bytes=0-9")]).unwrap());
    assert_eq!((n.status, s.status), (206, 206));
    assert_eq!(n.body, s.body);
    assert_eq!(n.header("content-range"), s.header("content-range"));
    let (n, s) = p.both(|a| get_with(a, "/robots.txt", &[("Range", "bytes=99999-")]).unwrap());
    assert_eq!((n.status, s.status), (416, 416));
    // Several ranges: multipart/byteranges, the same parts as nginx's but for the boundary.
    let (n, s) = p.both(|a| get_with(a, "/robots.txt", &[("Range", "bytes=0-4,10-14")]).unwrap());
    assert_eq!((n.status, s.status), (206, 206));
    let boundary = |r: &Response| {
        let ct = r.header("content-type").unwrap_or_default().to_string();
        assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
        ct.rsplit('=').next().unwrap_or_default().to_string()
    };
    let (nb, sb) = (boundary(&n), boundary(&s));
    assert_eq!(
        n.text().replace(&nb, "B"),
        s.text().replace(&sb, "B"),
        "the parts"
    );
    let (n, s) =
        p.both(|a| get_with(a, "/assets/app-abc123.js", &[("Accept-Encoding", "gzip")]).unwrap());
    assert_eq!((n.status, s.status), (200, 200));
    assert_eq!(n.header("content-encoding"), s.header("content-encoding"));
    assert_eq!(n.header("cache-control"), s.header("cache-control"));
    assert_eq!(n.text(), s.text());
    let (n, s) = p.both(|a| get(a, "/download").unwrap());
    assert_eq!((n.status, s.status), (200, 200), "X-Accel-Redirect");
    assert_eq!(n.body, s.body);
    let (n, s) = p.both(|a| get(a, "/protected/report.txt").unwrap());
    assert_eq!(
        (n.status, s.status),
        (404, 404),
        "internal locations are not public"
    );
    let (n, s) = p.both(|a| get(a, "/api/v1/courses/1").unwrap());
    assert_eq!((n.status, s.status), (200, 200), "the app behind");

    std::fs::write(p.site.maintenance_file(), "").unwrap();
    let page = std::fs::read(p.site.public().join("maintenance.html")).unwrap();
    let (n, s) = wait_for("maintenance on both", Duration::from_secs(3), || {
        let (n, s) = p.both(|a| get(a, "/api/v1/courses/1").unwrap());
        (s.status == 503).then_some((n, s))
    });
    assert_eq!((n.status, s.status), (503, 503));
    assert_eq!(n.body, page);
    assert_eq!(s.body, page);
    let (n, s) = p.both(|a| {
        post(
            a,
            "/graphql",
            "application/json",
            b"{\"query\":\"{ courses { id } }\"}",
            &[],
        )
        .unwrap()
    });
    assert_eq!((n.status, s.status), (503, 503), "every method");
}

#[test]
fn statuses_match_when_rails_is_down_or_slow() {
    let dead = format!("127.0.0.1:{}", free_port());
    let p = Pair::new(&dead, "60s");
    let page = std::fs::read(p.site.public().join("502.html")).unwrap();
    let (n, s) = p.both(|a| get(a, "/api/v1/courses/1").unwrap());
    assert_eq!((n.status, s.status), (502, 502));
    assert_eq!(n.body, page);
    assert_eq!(s.body, page, "the app's 502.html");
    let (n, s) = p.both(|a| {
        post(
            a,
            "/graphql",
            "application/json",
            b"{\"query\":\"{ a }\"}",
            &[],
        )
        .unwrap()
    });
    assert_eq!((n.status, s.status), (502, 502));

    let p = Pair::new(&rails().addr(), "1s");
    let (n, s) = p.both(|a| get(a, "/slow?ms=2500").unwrap());
    assert_eq!((n.status, s.status), (504, 504));
    assert_eq!(n.body, s.body, "both answer the gateway page");
}

#[test]
fn ambiguous_requests_are_refused_by_both() {
    let p = Pair::new(&rails().addr(), "60s");
    for (what, request) in [
        ("two Host headers", "GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n"),
        ("two Content-Lengths", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxx"),
    ] {
        let (n, s) = p.both(|a| raw(a, request.as_bytes()).unwrap_or(Response { status: 0, headers: vec![], body: vec![] }));
        assert_eq!(n.status, 400, "nginx, {what}");
        assert!(s.status == 400 || s.status == 0, "slogate, {what}: {}", s.status);
    }
    // Intended difference: with both Content-Length and Transfer-Encoding, nginx refuses the
    // request; slogate follows RFC 9112 6.3 (hyper's parser drops the Content-Length): the
    // chunked framing wins, Content-Length never reaches Rails, and the connection is
    // closed after the response.
    let request = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (n, s) = p.both(|a| raw(a, request.as_bytes()).unwrap());
    assert_eq!(n.status, 400);
    assert_eq!(s.status, 200);
    assert_eq!(
        s.json()["body_length"],
        3,
        "the chunked body, not the declared length"
    );
}

#[test]
fn intended_difference_post_to_a_static_file() {
    // nginx answers 405 to a POST for a file under public/; slogate sends it to Rails, which
    // routes (or 404s) it like any other POST.
    let p = Pair::new(&rails().addr(), "60s");
    let (n, s) = p.both(|a| post(a, "/robots.txt", "text/plain", b"x", &[]).unwrap());
    assert_eq!(n.status, 405);
    assert_eq!(s.status, 404, "Rails has no route for it");
}

#[test]
fn a_slow_reader_frees_puma_through_both() {
    // One Puma thread: while it writes a 24 MB answer to a client reading slowly, nothing
    // else is served unless the proxy in front takes the answer off its hands.
    let port = free_port();
    let rails = start_rails(&format!("tcp://127.0.0.1:{port}"), Some("1:1"));
    let p = Pair::new(&rails.addr(), "60s");
    for (addr, who) in p.addrs() {
        let mut slow = std::net::TcpStream::connect(&addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        std::io::Write::write_all(
            &mut slow,
            b"GET /big?kb=24576 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n",
        )
        .unwrap();
        // read_exact retries a read a signal interrupted.
        let mut first = [0u8; 12];
        std::io::Read::read_exact(&mut slow, &mut first).unwrap();
        let n = first.len();
        assert!(
            String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
            "{who}"
        );
        std::thread::sleep(Duration::from_millis(500));
        let t = std::time::Instant::now();
        assert_eq!(get(&rails.addr(), "/up").unwrap().status, 200, "{who}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{who}: Puma answered a direct request in {:?}",
            t.elapsed()
        );
        drop(slow);
    }
}

// ---------------------------------------------------------------------------------------------
// Requests read two ways (issue #11): the corpus in tests/smuggling/, one raw request per file
// (format: tests/smuggling/README.md), sent byte for byte to nginx and to slogate, each in
// front of its own recording upstream.

mod smuggling {
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

    fn fill_until(
        s: &mut TcpStream,
        buf: &mut Vec<u8>,
        from: usize,
        needle: &[u8],
    ) -> Option<usize> {
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
            } else if headers.iter().any(|(k, _)| {
                k.is_empty() || k.bytes().any(|c| c <= b' ' || c == 0x7f || c == b':')
            }) {
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
                    let size =
                        usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
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
}

#[test]
fn smuggling_corpus_is_read_one_way() {
    use smuggling::*;
    let started = std::time::Instant::now();
    let cases = load(&root().join("tests/smuggling"));
    let only = std::env::var("SMUGGLING_CASE").ok();
    let (rec_n, rec_s) = (Recorder::start(), Recorder::start());
    let site = Site::new();
    let nginx = start_nginx(&rec_n.addr, &site, "5s");
    let slogate = slogate_for(&rec_s.addr, &site, "5s");
    let (n_addr, s_addr) = (format!("127.0.0.1:{}", nginx.port), slogate.addr());
    let final_ = |c: &[u16]| c.iter().copied().filter(|s| *s >= 200).collect::<Vec<_>>();
    let (mut failures, mut known, mut fixed) = (Vec::new(), Vec::new(), Vec::new());
    let mut table = vec![format!(
        "{:<44} {:<12} {:<12} {}",
        "case", "nginx", "slogate", "slogate forwarded"
    )];
    for case in cases
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| c.file.contains(o.as_str())))
    {
        rec_n.take();
        rec_s.take();
        let ((n_codes, _), (s_codes, s_raw)) = std::thread::scope(|t| {
            let n = t.spawn(|| exchange(&n_addr, case));
            let s = t.spawn(|| exchange(&s_addr, case));
            (n.join().unwrap(), s.join().unwrap())
        });
        // A request forwarded is forwarded before its answer; a moment for stragglers.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (n_seen, s_seen) = (rec_n.take(), rec_s.take());
        let mut wrong = Vec::new();
        let want = case
            .expect_slogate
            .clone()
            .unwrap_or_else(|| final_(&n_codes));
        if final_(&s_codes) != want {
            wrong.push(format!(
                "status: slogate {} but {} {}",
                show(&s_codes),
                if case.expect_slogate.is_some() {
                    "the case expects"
                } else {
                    "nginx answered"
                },
                show(&want)
            ));
        }
        let meant: Vec<(String, String, Vec<u8>)> = case.upstream.clone();
        let got: Vec<(String, String, Vec<u8>)> = s_seen
            .iter()
            .map(|r| (r.method.clone(), r.target.clone(), r.body.clone()))
            .collect();
        if got != meant {
            wrong.push(format!(
                "the app got {} from slogate, the case means {}",
                show_seen(&s_seen),
                if meant.is_empty() {
                    "nothing".to_string()
                } else {
                    meant
                        .iter()
                        .map(|(m, t, b)| format!("{m} {t} {:?}", String::from_utf8_lossy(b)))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ));
        }
        if let Some(r) = s_seen.iter().find(|r| r.ambiguous.is_some()) {
            wrong.push(format!(
                "slogate forwarded an ambiguous head: {:?}",
                r.ambiguous
            ));
        }
        for name in &case.upstream_without {
            if let Some(r) = s_seen.iter().find(|r| r.header(name).is_some()) {
                wrong.push(format!("slogate forwarded {name}: {:?}", r.header(name)));
            }
        }
        for (name, value) in &case.upstream_header {
            if let Some(r) = s_seen
                .iter()
                .find(|r| r.header(name) != Some(value.as_str()))
            {
                wrong.push(format!(
                    "slogate forwarded {name}: {:?}, the case means {value:?}",
                    r.header(name)
                ));
            }
        }
        table.push(format!(
            "{:<44} {:<12} {:<12} {}{}",
            case.file.trim_end_matches(".http"),
            show(&n_codes),
            show(&s_codes),
            show_seen(&s_seen),
            if show_seen(&n_seen) != show_seen(&s_seen) {
                format!("  (nginx forwarded {})", show_seen(&n_seen))
            } else {
                String::new()
            }
        ));
        let report = format!(
            "{} ({}): {}\n    slogate answered: {:?}",
            case.file,
            case.name,
            wrong.join("\n    "),
            String::from_utf8_lossy(&s_raw[..s_raw.len().min(300)])
        );
        match (&case.known_bug, wrong.is_empty()) {
            (None, true) => {}
            (None, false) => failures.push(report),
            (Some(bug), false) => known.push(format!("{report}\n    known bug: {bug}")),
            (Some(bug), true) => fixed.push(format!(
                "{}: passes now ({bug}): drop its known_bug line",
                case.file
            )),
        }
    }
    eprintln!("{}", table.join("\n"));
    for k in &known {
        eprintln!("KNOWN BUG {k}");
    }
    for f in &fixed {
        eprintln!("FIXED? {f}");
    }
    eprintln!(
        "{} cases, {} known bugs, in {:?}",
        table.len() - 1,
        known.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn smuggling_case_files_parse() {
    use smuggling::*;
    let cases = load(&root().join("tests/smuggling"));
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let c = parse_case(
        "x.http",
        "name: x\nupstream: POST /a a\\r\\nb\n\nGET / HTTP/1.1\\r\\n\nX: {{3*ab}}\\x41\\0\\r\\n\\r\\n\n",
    )
    .unwrap();
    assert_eq!(c.request, b"GET / HTTP/1.1\r\nX: abababA\0\r\n\r\n");
    assert_eq!(c.upstream[0].2, b"a\r\nb");
    assert!(
        parse_case(
            "y.http",
            "name: y\nexpect_slogate: 400\n\nGET / HTTP/1.1\\r\\n\\r\\n"
        )
        .is_err(),
        "a difference needs a why"
    );
    assert_eq!(statuses(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"), vec![100, 200, 400]);
}
