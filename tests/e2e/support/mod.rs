//! Shared harness of the end-to-end tests: the real Rails fixture on Puma, the real slogate
//! binary on ephemeral ports. What every test crate shares (ports, waiting, child processes,
//! tool checks, the raw HTTP/1.1 client, the Prometheus exposition reader) is in
//! crates/slogate-test-support, re-exported here.

pub mod smuggling;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

pub use slogate_test_support::*;

/// The tests of this binary run two at a time; this keeps the two kinds below apart.
static MACHINE: RwLock<()> = RwLock::new(());

/// Held for the whole of a test that loads the machine (a load run, faults under load, a
/// 100 MB answer, an upgrade under load). Such tests may run beside each other, as they did
/// when each file was its own binary, but never beside a test holding [`quiet`].
pub fn heavy() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// Held for the whole of a test whose assertions are about time (latency beside a slow
/// client, when a page fires, 10,000 connections within bounds): no [`heavy`] test and no
/// other `quiet` test runs beside it.
pub fn quiet() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
    let mut proc_ = Proc {
        child,
        name: "puma".into(),
    };
    let port = bind
        .strip_prefix("tcp://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // A Puma that dies while booting (a Ruby library missing, a port taken) fails the test at
    // once, with its output, rather than after the timeout.
    let err_log = log.with_extension("err");
    let puma_output = || {
        format!(
            "puma's output ({}):\n{}",
            err_log.display(),
            std::fs::read_to_string(&err_log).unwrap_or_default()
        )
    };
    let every = Duration::from_millis(50);
    if port > 0 {
        proc_.wait_alive(
            "Rails to boot",
            Duration::from_secs(60),
            every,
            || {
                get(&format!("127.0.0.1:{port}"), "/up")
                    .ok()
                    .filter(|r| r.status == 200)
            },
            puma_output,
        );
    } else if let Some(path) = bind.strip_prefix("unix://") {
        proc_.wait_alive(
            "Rails to boot on its socket",
            Duration::from_secs(60),
            every,
            || std::os::unix::net::UnixStream::connect(path).ok(),
            puma_output,
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

    /// Access log lines written so far, parsed: the complete ones. The file is read while
    /// slogate may be writing a batch to it, and a read can end inside that write (seen
    /// once: a line cut at byte 230); a line counts once its newline is there, as for any
    /// program that tails the log.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("access log lines are JSON"))
            .collect()
    }

    /// Waits until `slogate_requests_total` adds up to `n` (metrics are recorded just after
    /// the response is sent).
    pub fn wait_requests(&self, n: f64) -> Metrics {
        wait_for_or(
            &format!("the request count to reach {n}"),
            Duration::from_secs(10),
            || {
                let m = self.metrics();
                (m.sum("slogate_requests_total", &[]) >= n).then_some(m)
            },
            || {
                let m = self.metrics();
                format!(
                    "counted {}, open connections {} (upstream {}), access-log lines {}: {:#?}",
                    m.sum("slogate_requests_total", &[]),
                    m.sum("slogate_connections_open", &[]),
                    m.sum("slogate_upstream_connections_open", &[]),
                    self.access_log().len(),
                    m.request_table()
                )
            },
        )
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

/// Runs `slogate args`; fails the test unless it succeeds. Its stdout.
pub fn run_slogate(args: &[&str]) -> String {
    let out = Command::new(slogate_bin())
        .args(args)
        .output()
        .expect("run slogate");
    assert!(
        out.status.success(),
        "slogate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts slogate in front of `upstream` with extra YAML appended to the generated config
/// (which sets listen, admin, upstream and the access log file).
pub fn start_slogate(upstream: &str, extra_yaml: &str) -> Slogate {
    start_slogate_with(upstream, "", extra_yaml)
}

/// Like [`start_slogate`], with `server_lines` (e.g. `"  max_body_size: 1KiB\n"`) added to
/// the generated `server:` section.
pub fn start_slogate_with(upstream: &str, server_lines: &str, extra_yaml: &str) -> Slogate {
    let s = spawn_slogate_on(free_port(), upstream, server_lines, extra_yaml);
    wait_listening(&s);
    s
}

/// Starts slogate as [`start_slogate_with`] does, on proxy port `port`, without waiting for
/// it to listen.
pub fn spawn_slogate_on(
    port: u16,
    upstream: &str,
    server_lines: &str,
    extra_yaml: &str,
) -> Slogate {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin_port = free_port();
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
    // `SLOGATE_TEST_UPSTREAM_CLIENT=hyper` runs the tests through hyper's upstream client
    // (`make test` runs the e2e tests once more that way).
    if let Ok(client) = std::env::var("SLOGATE_TEST_UPSTREAM_CLIENT") {
        yaml = yaml.replacen(
            "\nupstream:\n",
            &format!("\nupstream:\n  client: {client}\n"),
            1,
        );
    }
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
    Slogate {
        port,
        admin_port,
        dir,
        _proc: Proc {
            child,
            name: "slogate".into(),
        },
    }
}

/// Waits until `s` serves its proxy port: its admin says so (`/ready` no longer answers
/// "not listening yet", whatever the backends' health), and the port takes a connection.
/// Another process that took the port first is not mistaken for slogate.
pub fn wait_listening(s: &Slogate) {
    let admin = format!("127.0.0.1:{}", s.admin_port);
    wait_for("slogate to listen", Duration::from_secs(20), || {
        let ready = get(&admin, "/ready").ok()?;
        if ready.text() == "not listening yet\n" {
            return None;
        }
        let proxy = TcpStream::connect(("127.0.0.1", s.port)).ok()?;
        drop(proxy);
        Some(())
    });
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

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`: (cert, key) paths.
pub fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    require_tool("openssl", "openssl");
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
