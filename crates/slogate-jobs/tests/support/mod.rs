//! Helpers for the integration tests: the process under test, a real
//! redis-server, scraping and waiting with deadlines. What every test crate
//! shares is in crates/slogate-test-support.
//!
//! redis-server, redis-cli, ruby and sidekiq are required: without them the
//! tests fail and say what to install.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use slogate_test_support::{
    free_port, require_tool, status_kib, wait_for, wait_for_or, Metrics, Proc,
};

/// A parsed Prometheus text exposition (every line that is not a comment must be a sample).
pub type Scrape = Metrics;

/// A redis-server on an ephemeral port, in a temp dir, saving nothing.
pub struct Redis {
    pub port: u16,
    pub process: Proc,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Redis {
        require_tool("redis-server", "redis-server");
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
            process: Proc {
                child,
                name: "redis-server".into(),
            },
            _dir: dir,
        };
        wait_for(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || redis.ping().then_some(()),
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
        require_tool("redis-cli", "redis-tools");
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
    pub process: Proc,
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
            process: Proc {
                child,
                name: "slogate-jobs".into(),
            },
            admin,
            stderr,
            _dir: dir,
        };
        wait_for_or(
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
        let r = slogate_test_support::get(&self.admin, path).ok()?;
        (r.status == 200).then(|| r.text())
    }

    pub fn scrape(&self) -> Scrape {
        Scrape::parse_strict(&self.get("/metrics").expect("GET /metrics"))
    }

    /// Waits until `check` holds on a scrape; returns that scrape.
    pub fn wait_metrics(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        wait_for_or(
            what,
            timeout,
            || {
                let s = self.get("/metrics").map(|t| Scrape::parse_strict(&t))?;
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
        let field = |name: &str| {
            status_kib(self.process.pid(), name).expect("VmRSS/VmHWM in /proc/<pid>/status")
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
