//! A real Prometheus server for a test, on an ephemeral port.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, get, tool_path, Proc};

/// A Prometheus server, killed when dropped.
pub struct Prometheus {
    pub port: u16,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
    pub proc_: Proc,
}

impl Prometheus {
    /// Starts `prometheus` with `config` (written to `dir/prometheus.yml`), its data in `data`
    /// and its output in `dir/prometheus.log`. Does not wait: see [`Prometheus::wait_ready`].
    pub fn start(dir: &Path, config: &str, data: &Path) -> Prometheus {
        let bin = tool_path("prometheus", "prometheus");
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("prometheus log");
        let proc_ = Proc::spawn(
            "prometheus",
            Command::new(bin)
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("prometheus log"))
                .stderr(log_file),
        );
        Prometheus {
            port,
            url: format!("http://127.0.0.1:{port}"),
            log,
            proc_,
        }
    }

    /// Waits until `/-/ready` answers 200; fails with the log if it exits or takes longer
    /// than `timeout`.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let addr = format!("127.0.0.1:{}", self.port);
        self.wait_for(
            "prometheus to be ready",
            timeout,
            Duration::from_millis(50),
            || (get(&addr, "/-/ready").ok()?.status == 200).then_some(()),
        );
    }

    /// Polls `check` every `every` until it returns `Some`; fails the test, with the end of
    /// the log, when Prometheus exits or `timeout` passes.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        every: Duration,
        check: impl FnMut() -> Option<T>,
    ) -> T {
        let log = self.log.clone();
        self.proc_
            .wait_alive(what, timeout, every, check, move || log_tail(&log))
    }

    /// The last 20 lines of its log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// `GET path_and_query` on the HTTP API, as JSON; fails the test when it does not answer
    /// JSON.
    pub fn api(&self, path_and_query: &str) -> serde_json::Value {
        let r = get(&format!("127.0.0.1:{}", self.port), path_and_query).expect("prometheus API");
        serde_json::from_str(&r.text()).expect("API JSON")
    }

    /// The first value of an instant query, if it has one.
    pub fn query(&self, q: &str) -> Option<f64> {
        let r = get(
            &format!("127.0.0.1:{}", self.port),
            &format!("/api/v1/query?query={}", url_encode(q)),
        )
        .ok()?;
        let v: serde_json::Value = serde_json::from_str(&r.text()).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "prometheus log:\n{}",
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

/// Percent-encodes everything but `A-Z a-z 0-9 - _ .` (a PromQL query in a URL).
pub fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
