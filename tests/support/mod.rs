//! Shared harness of the integration tests: the real Rails fixture on Puma, the real slogate
//! binary on ephemeral ports, a raw HTTP/1.1 client and a Prometheus exposition reader.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails with an install hint when a tool the tests need is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run `make setup` (or `apt-get install -y {package}`)"
    );
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // nginx's master takes its workers down on SIGTERM; SIGKILL would orphan them.
        if self.name == "nginx" {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Rails fixture (graphql-ruby on Puma), started once per test binary.
pub struct Rails {
    pub port: u16,
    _proc: Proc,
}

impl Rails {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

static RAILS: OnceLock<Rails> = OnceLock::new();

/// The shared Rails fixture of this test binary.
pub fn rails() -> &'static Rails {
    RAILS.get_or_init(|| start_rails(&format!("tcp://127.0.0.1:{}", free_port()), None))
}

/// Starts a Rails fixture bound to `bind` (`tcp://...` or `unix://...`).
pub fn start_rails(bind: &str, threads: Option<&str>) -> Rails {
    require_tool("puma", "puma ruby-railties ruby-actionpack ruby-graphql");
    let app = root().join("tests/rails-app/config.ru");
    let log = std::env::temp_dir().join(format!("slogate-puma-{}.log", free_port()));
    let child = Command::new("puma")
        .args([
            "-b",
            bind,
            "-t",
            threads.unwrap_or("8:8"),
            "-w",
            "0",
            "--quiet",
        ])
        .arg(&app)
        .env("EXIT_WITH_PARENT", std::process::id().to_string())
        .stdout(Stdio::from(std::fs::File::create(&log).expect("puma log")))
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("err")).expect("puma log"),
        ))
        .spawn()
        .expect("spawn puma");
    let proc_ = Proc {
        child,
        name: "puma".into(),
    };
    let port = bind
        .strip_prefix("tcp://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if port > 0 {
        wait_for("Rails to boot", Duration::from_secs(60), || {
            get(&format!("127.0.0.1:{port}"), "/up")
                .ok()
                .filter(|r| r.status == 200)
        });
    } else if let Some(path) = bind.strip_prefix("unix://") {
        wait_for(
            "Rails to boot on its socket",
            Duration::from_secs(60),
            || std::os::unix::net::UnixStream::connect(path).ok(),
        );
    }
    Rails { port, _proc: proc_ }
}

/// A running slogate.
pub struct Slogate {
    pub port: u16,
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Slogate {
    /// `127.0.0.1:port` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The parsed exposition of `/metrics`.
    pub fn metrics(&self) -> Metrics {
        let r = get(&format!("127.0.0.1:{}", self.admin_port), "/metrics").expect("scrape");
        assert_eq!(r.status, 200);
        Metrics::parse(&r.text())
    }

    /// The raw exposition text.
    pub fn metrics_text(&self) -> String {
        get(&format!("127.0.0.1:{}", self.admin_port), "/metrics")
            .expect("scrape")
            .text()
    }

    /// Access log lines written so far, parsed.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("access log lines are JSON"))
            .collect()
    }

    /// Waits until `slogate_requests_total` adds up to `n` (metrics are recorded just after
    /// the response is sent).
    pub fn wait_requests(&self, n: f64) -> Metrics {
        wait_for("the request count", Duration::from_secs(10), || {
            let m = self.metrics();
            (m.sum("slogate_requests_total", &[]) >= n).then_some(m)
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self._proc.child.id()
    }
}

/// Path of the slogate binary under test.
pub fn slogate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_slogate")
}

/// Starts slogate in front of `upstream` with extra YAML appended to the generated config
/// (which sets listen, admin, upstream and the access log file).
pub fn start_slogate(upstream: &str, extra_yaml: &str) -> Slogate {
    start_slogate_with(upstream, "", extra_yaml)
}

/// Like [`start_slogate`], with `server_lines` (e.g. `"  max_body_size: 1KiB\n"`) added to
/// the generated `server:` section.
pub fn start_slogate_with(upstream: &str, server_lines: &str, extra_yaml: &str) -> Slogate {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, admin_port) = (free_port(), free_port());
    let has_section = |s: &str| extra_yaml.lines().any(|l| l.starts_with(s));
    let mut yaml = format!(
        "server:\n  listen: [\"127.0.0.1:{port}\"]\n  threads: 2\n  upgrade_socket: {up}\n  pid_file: {pid}\n{server_lines}",
        up = dir.path().join("upgrade.sock").display(),
        pid = dir.path().join("slogate.pid").display()
    );
    yaml.push_str(&format!("admin:\n  listen: \"127.0.0.1:{admin_port}\"\n"));
    if !has_section("upstream:") {
        yaml.push_str(&format!(
            "upstream:\n  name: rails\n  backends: [\"{upstream}\"]\n"
        ));
    }
    if !has_section("access_log:") {
        yaml.push_str(&format!(
            "access_log:\n  target: {}\n",
            dir.path().join("access.log").display()
        ));
    }
    yaml.push_str(extra_yaml);
    let config = dir.path().join("slogate.yaml");
    std::fs::write(&config, &yaml).expect("write config");
    let child = Command::new(slogate_bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("SLOGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log"),
        ))
        .spawn()
        .expect("spawn slogate");
    let s = Slogate {
        port,
        admin_port,
        dir,
        _proc: Proc {
            child,
            name: "slogate".into(),
        },
    };
    wait_for("slogate to listen", Duration::from_secs(20), || {
        let admin = get(&format!("127.0.0.1:{admin_port}"), "/health").ok()?;
        let proxy = TcpStream::connect(("127.0.0.1", port)).ok()?;
        drop(proxy);
        (admin.status == 200).then_some(())
    });
    s
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: exact bytes in, exact bytes out.

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (gunzipped when `Content-Encoding: gzip`).
    pub fn text(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_string(&mut out)
                .expect("gzip body");
            return out;
        }
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends `request` (raw bytes) to `addr` and reads the whole response (`Connection: close`).
pub fn raw(addr: &str, request: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..pos]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// GET `path`.
pub fn get(addr: &str, path: &str) -> std::io::Result<Response> {
    get_with(addr, path, &[])
}

/// GET `path` with extra headers.
pub fn get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes())
}

/// POST `body` to `path` with a content type and extra headers.
pub fn post(
    addr: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    raw(addr, &req)
}

/// POST a GraphQL JSON body.
pub fn graphql(addr: &str, body: &serde_json::Value) -> Response {
    post(
        addr,
        "/graphql",
        "application/json",
        body.to_string().as_bytes(),
        &[],
    )
    .expect("graphql request")
}

// ---------------------------------------------------------------------------------------------
// Prometheus exposition

/// One parsed sample (the load tester's parser: one reading of the format for both).
pub use slogate_harness::prom::Sample;

/// A parsed `/metrics` page.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the text exposition format (as the prometheus crate writes it).
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter_map(slogate_harness::prom::parse_sample)
            .collect();
        Metrics { samples }
    }

    /// Sum of the samples of `name` whose labels include all of `want`.
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// `slogate_requests_total` for one operation, type and outcome.
    pub fn requests(&self, operation: &str, op_type: &str, outcome: &str) -> f64 {
        self.sum(
            "slogate_requests_total",
            &[
                ("operation", operation),
                ("operation_type", op_type),
                ("outcome", outcome),
            ],
        )
    }

    /// Every (operation, type, outcome) with a non-zero request count, sorted.
    pub fn request_table(&self) -> Vec<(String, String, String, f64)> {
        let mut rows: Vec<_> = self
            .samples
            .iter()
            .filter(|s| s.name == "slogate_requests_total" && s.value > 0.0)
            .map(|s| {
                (
                    s.labels["operation"].clone(),
                    s.labels["operation_type"].clone(),
                    s.labels["outcome"].clone(),
                    s.value,
                )
            })
            .collect();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        rows
    }
}

/// Resident memory of a process in bytes (from /proc).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A socket address string's port.
pub fn port_of(addr: &SocketAddr) -> u16 {
    addr.port()
}

/// Path helper.
pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`: (cert, key) paths.
pub fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl")
        .status
        .success();
    assert!(ok, "openssl could not make a certificate");
    (cert.display().to_string(), key.display().to_string())
}

/// Whether the tests run as root (nginx's workers then drop to `nobody`).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
