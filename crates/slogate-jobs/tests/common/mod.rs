//! Helpers for the integration tests: the process under test, a real
//! redis-server, scraping and waiting with deadlines.
//!
//! redis-server, redis-cli, ruby and sidekiq are required: without them the
//! tests fail and say what to install.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const INSTALL_HINT: &str =
    "install them with: apt-get install redis-server redis-tools ruby ruby-sidekiq";

/// Panics (fails the test) unless `program` runs.
pub fn require(program: &str, version_flag: &str) {
    let ok = Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{program}` is required by slogate-jobs' integration tests and was not found; {INSTALL_HINT}"
    );
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with
/// what `describe` says about the last state.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                describe()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the child when dropped (also when a test panics).
pub struct Guarded {
    pub child: Child,
    pub name: String,
}

impl Guarded {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. "TERM", "TSTP") to the child.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) {
        if !self.is_running() {
            return;
        }
        self.signal("TERM");
        let name = self.name.clone();
        wait_for(
            &format!("{name} to exit after SIGTERM"),
            timeout,
            || (!self.is_running()).then_some(()),
            String::new,
        );
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server on an ephemeral port, in a temp dir, saving nothing.
pub struct Redis {
    pub port: u16,
    pub process: Guarded,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Redis {
        require("redis-server", "--version");
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis {
            port,
            process: Guarded {
                child,
                name: "redis-server".into(),
            },
            _dir: dir,
        };
        wait_for(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || redis.ping().then_some(()),
            String::new,
        );
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Runs a command with redis-cli; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        require("redis-cli", "--version");
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The process under test: `slogate-jobs --config <yaml> --admin <port>`.
pub struct Slogate {
    pub process: Guarded,
    pub admin: String,
    pub stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Slogate {
    pub fn start(config_yaml: &str) -> Slogate {
        Slogate::start_with(config_yaml, &[], Stdio::null())
    }

    pub fn start_with(config_yaml: &str, args: &[&str], stdin: Stdio) -> Slogate {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("jobs.yaml");
        std::fs::write(&config, config_yaml).expect("write config");
        let admin = format!("127.0.0.1:{}", free_port());
        let stderr = dir.path().join("slogate.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_slogate-jobs"))
            .arg("--config")
            .arg(&config)
            .args(["--admin", &admin])
            .args(args)
            .env("SLOGATE_LOG", "info")
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start slogate-jobs");
        let mut slogate = Slogate {
            process: Guarded {
                child,
                name: "slogate-jobs".into(),
            },
            admin,
            stderr,
            _dir: dir,
        };
        wait_for(
            "slogate-jobs /healthz",
            Duration::from_secs(20),
            || (slogate.get("/healthz").as_deref() == Some("ok\n")).then_some(()),
            || slogate.stderr_text(),
        );
        assert!(slogate.process.is_running());
        slogate
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The body of `GET path`, if the listener answered 200.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(&self.admin).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    }

    pub fn scrape(&self) -> Scrape {
        Scrape::parse(&self.get("/metrics").expect("GET /metrics"))
    }

    /// Waits until `check` holds on a scrape; returns that scrape.
    pub fn wait_metrics(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        wait_for(
            what,
            timeout,
            || {
                let s = self.get("/metrics").map(|t| Scrape::parse(&t))?;
                check(&s).then_some(s)
            },
            || {
                format!(
                    "last scrape:\n{}\nslogate stderr:\n{}",
                    self.get("/metrics").unwrap_or_default(),
                    tail(&self.stderr_text(), 3000)
                )
            },
        )
    }

    /// (current, peak) resident set size of the process, in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .expect("read /proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                .expect("VmRSS/VmHWM in /proc/<pid>/status")
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// logrotate's `copytruncate`: copy the log to `copy`, then truncate it in place.
#[allow(dead_code)] // not every test binary rotates
pub fn copytruncate(log: &Path, copy: &Path) {
    std::fs::copy(log, copy).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
}

pub fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

/// A parsed Prometheus text exposition: series (name and sorted labels) to value.
#[derive(Debug, Default)]
pub struct Scrape {
    series: BTreeMap<String, f64>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut series = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (key, value) = line.rsplit_once(' ').expect("series value");
            series.insert(key.to_string(), value.parse().expect("a number"));
        }
        Scrape { series }
    }

    /// The value of `name` with exactly `labels` (any order), if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut sorted: Vec<_> = labels.to_vec();
        sorted.sort();
        let rendered: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let key = if rendered.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", rendered.join(","))
        };
        // The encoder sorts labels but puts `le` last.
        if let Some(v) = self.series.get(&key) {
            return Some(*v);
        }
        let le = labels.iter().find(|(k, _)| *k == "le")?;
        let mut rest: Vec<_> = labels.iter().filter(|(k, _)| *k != "le").cloned().collect();
        rest.sort();
        let mut parts: Vec<String> = rest.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        parts.push(format!("le=\"{}\"", le.1));
        self.series
            .get(&format!("{name}{{{}}}", parts.join(",")))
            .copied()
    }

    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Sum over every series of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| {
                k.split('{').next() == Some(name)
                    && labels
                        .iter()
                        .all(|(l, v)| k.contains(&format!("{l}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// Renders a bucket boundary as the Prometheus encoder does (`1` not `1.0`).
pub fn le(boundary: f64) -> String {
    format!("{boundary}")
}

/// Asserts that the `count` observations of histogram `name` with `labels`
/// all lie in `[low, high]` seconds, as far as `buckets` can tell: none at or
/// below the largest boundary under `low`, all at the smallest boundary at or
/// above `high`; and their mean lies in `[low, high]`.
pub fn assert_histogram_within(
    scrape: &Scrape,
    name: &str,
    labels: &[(&str, &str)],
    buckets: &[f64],
    count: f64,
    low: f64,
    high: f64,
) {
    let with_le = |b: f64| {
        let le = le(b);
        let mut l: Vec<(&str, &str)> = labels.to_vec();
        l.push(("le", le.as_str()));
        scrape.value(&format!("{name}_bucket"), &l)
    };
    assert_eq!(
        scrape.value(&format!("{name}_count"), labels),
        count,
        "{name} {labels:?} count"
    );
    if let Some(below) = buckets.iter().rev().find(|b| **b < low) {
        assert_eq!(
            with_le(*below),
            0.0,
            "{name} {labels:?}: observations at or below {below}s, expected all >= {low:.3}s"
        );
    }
    if let Some(above) = buckets.iter().find(|b| **b >= high) {
        assert_eq!(
            with_le(*above),
            count,
            "{name} {labels:?}: observations above {above}s, expected all <= {high:.3}s"
        );
    }
    let sum = scrape.value(&format!("{name}_sum"), labels);
    assert!(
        sum >= count * low - 1e-9 && sum <= count * high + 1e-9,
        "{name} {labels:?}: mean {} outside [{low:.3}, {high:.3}]",
        sum / count
    );
}
