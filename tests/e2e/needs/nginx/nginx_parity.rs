//! Parity with nginx: the same requests through a real nginx (configured as Rails apps
//! configure it, tests/nginx/rails.conf.template) and through slogate, both in front of the
//! same Rails fixture. Rails must see the same forwarded headers, and clients the same
//! statuses, for the cases a drop-in replacement must not change. Intended differences are
//! asserted too, and listed in docs/replacing-nginx.md.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::smuggling;
use crate::support::*;
use serde_json::Value;

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
