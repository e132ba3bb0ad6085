//! `slogate jobs` configuration: YAML, every key optional, unknown keys refused.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use slogate_diagnostics::{Checker, FileError};

use crate::classify::SIDEKIQ_SHUTDOWN;
use crate::lines::DEFAULT_MAX_LINE_BYTES;
use crate::metrics::DEFAULT_JOB_BUCKETS;

/// The admin listener's default address.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9092";
/// The path that means standard input.
pub const STDIN: &str = "-";

/// The whole configuration. See `proxy-config/jobs.yaml` for a commented example.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// The `service` label of every metric (match the SLO spec's `service`).
    pub service: String,
    /// Sidekiq JSON log files to follow; `-` is standard input.
    pub logs: Vec<String>,
    /// Read files that already exist from their start instead of their end.
    pub from_start: bool,
    /// The admin listener (`/metrics`, `/healthz`).
    pub admin: String,
    /// Lines longer than this (bytes) are skipped without being buffered.
    pub max_line_bytes: usize,
    /// How often a file is checked for new lines and rotation when idle.
    #[serde(deserialize_with = "slogate_diagnostics::duration")]
    pub file_poll_interval: Duration,
    /// Queue health from Sidekiq's Redis.
    pub redis: RedisConfig,
    /// Which failures are not the system's fault.
    pub outcomes: OutcomesConfig,
    /// Latency histogram bucket boundaries in seconds (job SLO thresholds
    /// must be one of them).
    pub buckets: Vec<f64>,
    /// Bounds on label values.
    pub cardinality: CardinalityConfig,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            service: "rails".into(),
            logs: Vec::new(),
            from_start: false,
            admin: DEFAULT_ADMIN.into(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            file_poll_interval: Duration::from_millis(250),
            redis: RedisConfig::default(),
            outcomes: OutcomesConfig::default(),
            buckets: DEFAULT_JOB_BUCKETS.to_vec(),
            cardinality: CardinalityConfig::default(),
        }
    }
}

/// The Redis poller.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Poll Redis at all.
    pub enabled: bool,
    /// Sidekiq's Redis; default: as Sidekiq finds it (`$REDIS_PROVIDER`
    /// names the variable holding the URL, else `$REDIS_URL`, else
    /// `redis://localhost:6379`).
    pub url: Option<String>,
    /// Time between polls.
    #[serde(deserialize_with = "slogate_diagnostics::duration")]
    pub poll_interval: Duration,
    /// Connect and response timeout.
    #[serde(deserialize_with = "slogate_diagnostics::duration")]
    pub timeout: Duration,
    /// Queues reported even when absent from Sidekiq's `queues` set.
    pub queues: Vec<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            enabled: true,
            url: None,
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            queues: Vec::new(),
        }
    }
}

/// Outcome rules for `fail` lines.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutcomesConfig {
    /// Failures counted as `client_error`.
    pub client_error: ClientErrorConfig,
    /// Failures counted as `canceled`.
    pub canceled: CanceledConfig,
}

/// Failures that are not the system's fault.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClientErrorConfig {
    /// Job classes whose every failure is a client error.
    pub job_classes: Vec<String>,
    /// Exception classes (exact names, e.g. `ActiveRecord::RecordNotFound`);
    /// needs slogate's middleware, which logs `error_class`.
    pub error_classes: Vec<String>,
}

/// Failures that are interruptions, not errors.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CanceledConfig {
    /// Exception classes; default `Sidekiq::Shutdown` (the job is re-queued).
    pub error_classes: Vec<String>,
}

impl Default for CanceledConfig {
    fn default() -> Self {
        CanceledConfig {
            error_classes: vec![SIDEKIQ_SHUTDOWN.into()],
        }
    }
}

/// Bounds on label values (the same guard as the proxy's operations).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CardinalityConfig {
    /// Distinct `job_class` values before `(other)`.
    pub max_job_classes: usize,
    /// Distinct `queue` values before `(other)`.
    pub max_queues: usize,
    /// If set, only these job classes get their own series.
    pub job_classes: Option<Vec<String>>,
}

impl Default for CardinalityConfig {
    fn default() -> Self {
        CardinalityConfig {
            max_job_classes: 1000,
            max_queues: 100,
            job_classes: None,
        }
    }
}

/// An invalid configuration: the file, and every mistake found in it (the [`FileError`]
/// every file slogate reads reports).
///
/// The CLI maps this to exit code 2; find it with
/// `anyhow::Error::downcast_ref::<ConfigError>()`.
pub type ConfigError = FileError;

/// Reads and validates a config file.
pub fn load_config(path: &Path) -> Result<JobsConfig, ConfigError> {
    let (file, text) = slogate_diagnostics::read_file(path)?;
    let config = parse_config(&file, &text)?;
    config.validate(&file)?;
    Ok(config)
}

/// Parses YAML (without validating values). An empty document is the defaults.
pub fn parse_config(file: &str, text: &str) -> Result<JobsConfig, ConfigError> {
    slogate_diagnostics::parse_yaml(file, text)
}

impl JobsConfig {
    /// Checks values serde cannot: every issue is reported, not just the first.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let mut issues = Checker::default();
        self.validate_general(&mut issues);
        self.validate_redis(&mut issues);
        validate_buckets(&self.buckets, &mut issues);
        self.validate_lists(&mut issues);
        issues.finish(file)
    }

    /// The admin address, once validated.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.parse().ok()
    }

    fn validate_general(&self, issues: &mut Checker) {
        if self.service.trim().is_empty() || self.service.chars().any(char::is_control) {
            issues.push("service", "must be a non-empty name, e.g. rails");
        }
        if self.admin_addr().is_none() {
            issues.push(
                "admin",
                format!(
                    "{:?} is not an IP address and port such as 127.0.0.1:9092",
                    self.admin
                ),
            );
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_line_bytes) {
            issues.push(
                "max_line_bytes",
                format!(
                    "{} is out of range: use 1024 to 67108864 (bytes)",
                    self.max_line_bytes
                ),
            );
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&self.file_poll_interval)
        {
            issues.push("file_poll_interval", "must be between 10ms and 60s");
        }
        let mut seen = HashSet::new();
        for (i, log) in self.logs.iter().enumerate() {
            if log.trim().is_empty() {
                issues.push(
                    format!("logs[{i}]"),
                    "empty path (use - for standard input)",
                );
            } else if !seen.insert(log) {
                issues.push(
                    format!("logs[{i}]"),
                    format!("{log:?} is listed twice; its lines would count twice"),
                );
            }
        }
    }

    fn validate_redis(&self, issues: &mut Checker) {
        let redis = &self.redis;
        if redis.poll_interval < Duration::from_millis(100) {
            issues.push("redis.poll_interval", "must be at least 100ms");
        }
        if redis.timeout.is_zero() {
            issues.push("redis.timeout", "must be more than 0s");
        }
        if let Some(url) = &redis.url {
            if let Err(e) = redis::Client::open(url.as_str()) {
                issues.push("redis.url", format!("{url:?} is not a Redis URL: {e}"));
            }
        }
        for (i, q) in redis.queues.iter().enumerate() {
            if q.is_empty() || q.chars().any(char::is_whitespace) {
                issues.push(
                    format!("redis.queues[{i}]"),
                    format!("{q:?} is not a queue name"),
                );
            }
        }
    }

    fn validate_lists(&self, issues: &mut Checker) {
        let lists = [
            (
                "outcomes.client_error.job_classes",
                &self.outcomes.client_error.job_classes,
            ),
            (
                "outcomes.client_error.error_classes",
                &self.outcomes.client_error.error_classes,
            ),
            (
                "outcomes.canceled.error_classes",
                &self.outcomes.canceled.error_classes,
            ),
        ];
        for (key, list) in lists {
            for (i, class) in list.iter().enumerate() {
                if !is_ruby_class_name(class) {
                    issues.push(format!("{key}[{i}]"), format!("{class:?} is not a Ruby class name such as ActiveRecord::RecordNotFound"));
                }
            }
        }
        let c = &self.cardinality;
        if c.max_job_classes == 0 {
            issues.push("cardinality.max_job_classes", "must be at least 1");
        }
        if c.max_queues == 0 {
            issues.push("cardinality.max_queues", "must be at least 1");
        }
        if c.job_classes.as_ref().is_some_and(Vec::is_empty) {
            issues.push(
                "cardinality.job_classes",
                "an empty allowlist would put every job in (other); remove the key instead",
            );
        }
    }
}

fn validate_buckets(buckets: &[f64], issues: &mut Checker) {
    if buckets.is_empty() {
        issues.push("buckets", "must list at least one boundary");
    }
    for (i, b) in buckets.iter().enumerate() {
        if !b.is_finite() || *b <= 0.0 {
            issues.push(
                format!("buckets[{i}]"),
                format!("{b} is not a positive number of seconds"),
            );
        } else if i > 0 && buckets[i - 1] >= *b {
            issues.push(
                format!("buckets[{i}]"),
                format!("{b} does not follow {} in increasing order", buckets[i - 1]),
            );
        }
    }
}

fn is_ruby_class_name(name: &str) -> bool {
    !name.is_empty()
        && name.split("::").all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> String {
        match parse_config("jobs.yaml", text).and_then(|c| c.validate("jobs.yaml").map(|()| c)) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse_config("f", "").unwrap(), JobsConfig::default());
        assert_eq!(
            parse_config("f", "# nothing\n\n").unwrap(),
            JobsConfig::default()
        );
        JobsConfig::default().validate("f").unwrap();
    }

    #[test]
    fn the_example_file_is_valid_and_complete() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proxy-config/jobs.yaml");
        let config = load_config(&path).unwrap();
        assert_eq!(config.service, "rails");
        assert!(!config.logs.is_empty());
        assert!(config
            .outcomes
            .client_error
            .error_classes
            .contains(&"ActiveRecord::RecordNotFound".to_string()));
        assert_eq!(config.buckets, DEFAULT_JOB_BUCKETS);
    }

    #[test]
    fn parses_durations_and_nested_keys() {
        let c = parse_config(
            "f",
            "redis:\n  poll_interval: 2s\n  timeout: 500ms\nfile_poll_interval: 100ms\n",
        )
        .unwrap();
        assert_eq!(c.redis.poll_interval, Duration::from_secs(2));
        assert_eq!(c.redis.timeout, Duration::from_millis(500));
        assert_eq!(c.file_poll_interval, Duration::from_millis(100));
    }

    #[test]
    fn unknown_keys_name_the_file_and_the_key() {
        let e = errors("redis:\n  poll_intervall: 2s\n");
        assert!(
            e.starts_with("jobs.yaml: redis.poll_intervall: unknown field `poll_intervall`"),
            "{e}"
        );
        let e = errors("servce: rails\n");
        assert!(
            e.starts_with("jobs.yaml: servce: unknown field `servce`"),
            "{e}"
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let e = errors("redis:\n  poll_interval: soon\n");
        assert!(
            e.starts_with("jobs.yaml: redis.poll_interval: \"soon\" is not a duration"),
            "{e}"
        );
        let e = errors("logs: log/sidekiq.log\n");
        assert!(e.starts_with("jobs.yaml: logs: invalid type"), "{e}");
        let e = errors("buckets: [0.1, fast]\n");
        assert!(e.starts_with("jobs.yaml: buckets[1]: invalid type"), "{e}");
    }

    #[test]
    fn yaml_syntax_errors_name_the_file() {
        let e = errors("logs: [a\n");
        assert!(e.starts_with("jobs.yaml: "), "{e}");
    }

    #[test]
    fn every_invalid_value_is_reported() {
        let e = errors(
            "service: ''\nadmin: localhost\nlogs: [a, a, '']\nmax_line_bytes: 10\nbuckets: [1, 0.5, -1]\n\
             redis: {url: 'http://x', queues: ['a b'], poll_interval: 1ms, timeout: 0s}\n\
             outcomes: {client_error: {error_classes: ['not a class']}}\ncardinality: {max_queues: 0, job_classes: []}\n",
        );
        for want in [
            "jobs.yaml: service: must be a non-empty name",
            "jobs.yaml: admin: \"localhost\" is not an IP address and port",
            "jobs.yaml: logs[1]: \"a\" is listed twice",
            "jobs.yaml: logs[2]: empty path",
            "jobs.yaml: max_line_bytes: 10 is out of range",
            "jobs.yaml: buckets[1]: 0.5 does not follow 1 in increasing order",
            "jobs.yaml: buckets[2]: -1 is not a positive number of seconds",
            "jobs.yaml: redis.url: \"http://x\" is not a Redis URL",
            "jobs.yaml: redis.queues[0]: \"a b\" is not a queue name",
            "jobs.yaml: redis.poll_interval: must be at least 100ms",
            "jobs.yaml: redis.timeout: must be more than 0s",
            "jobs.yaml: outcomes.client_error.error_classes[0]: \"not a class\" is not a Ruby class name",
            "jobs.yaml: cardinality.max_queues: must be at least 1",
            "jobs.yaml: cardinality.job_classes: an empty allowlist",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let e = load_config(Path::new("/nonexistent/jobs.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/jobs.yaml: cannot read:"),
            "{e}"
        );
    }
}
