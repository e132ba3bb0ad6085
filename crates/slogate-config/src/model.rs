//! The validated, immutable configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use slogate_core::request::ExtractorOptions;
use slogate_core::response::{ClassificationPolicy, DEFAULT_CLIENT_CODES, DEFAULT_SYSTEM_CODES};
use slogate_core::route::{RouteNamer, RouteTemplate};
use slogate_core::Outcome;

use crate::manifest::{load_manifest, load_name_list, ManifestOperation};
use crate::raw::RawConfig;
use crate::{ConfigError, Issue};

/// Where a listener or backend lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    /// `unix:/path`.
    Unix(PathBuf),
}

impl Address {
    /// Parses `host:port`, `[v6]:port` or `unix:/path`.
    pub fn parse(s: &str) -> Result<Address, String> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{s:?}: unix: needs a socket path"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("{s:?} is not host:port or unix:/path"));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{s:?} is not host:port or unix:/path"));
        }
        Ok(Address::Tcp(s.to_string()))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// `server:` validated.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Proxy listeners.
    pub listen: Vec<Address>,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Grace period of a graceful upgrade or shutdown.
    pub grace_period: Duration,
    /// Time in-flight requests get after the grace period.
    pub graceful_shutdown_timeout: Duration,
    /// The graceful-upgrade socket.
    pub upgrade_socket: String,
    /// The pid file.
    pub pid_file: String,
}

/// `upstream:` validated.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// The `service` label.
    pub name: String,
    /// Backends.
    pub backends: Vec<Address>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout (between reads).
    pub read_timeout: Duration,
    /// Write timeout (between writes).
    pub write_timeout: Duration,
    /// Idle pooled connection lifetime.
    pub idle_timeout: Duration,
}

/// `graphql:` validated.
#[derive(Clone, Debug)]
pub struct GraphqlSettings {
    /// GraphQL endpoint paths.
    pub paths: Vec<String>,
    /// Extraction bounds and caches.
    pub extractor: ExtractorOptions,
    /// Operations known from a manifest.
    pub manifest: Vec<ManifestOperation>,
}

/// `metrics:` validated.
#[derive(Clone, Debug)]
pub struct MetricsSettings {
    /// Histogram buckets (seconds), strictly increasing.
    pub buckets: Vec<f64>,
    /// Cap of operation label values per service and kind.
    pub max_operations: usize,
    /// Cap of error-code label values per service.
    pub max_error_codes: usize,
    /// The only GraphQL operation names allowed as labels, if set.
    pub allowlist: Option<Vec<String>>,
}

/// Where access log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to.
    File(PathBuf),
}

/// `access_log:` validated.
#[derive(Clone, Debug)]
pub struct AccessLogSettings {
    /// Destination.
    pub target: LogTarget,
    /// Whether the query string is logged.
    pub include_query: bool,
    /// Lines buffered before dropping.
    pub buffer_lines: usize,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The proxy process.
    pub server: ServerSettings,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// The application.
    pub upstream: UpstreamSettings,
    /// GraphQL endpoints and extraction.
    pub graphql: GraphqlSettings,
    /// Response classification rules.
    pub policy: ClassificationPolicy,
    /// Header carrying an error code (lowercase), if configured.
    pub error_code_header: Option<String>,
    /// HTTP route naming.
    pub routes: RouteNamer,
    /// Metric options.
    pub metrics: MetricsSettings,
    /// Access log.
    pub access_log: AccessLogSettings,
}

/// Collects issues while validating.
struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            key: key.into(),
            message: message.into(),
        });
    }

    fn outcome(&mut self, key: &str, value: &str) -> Outcome {
        match Outcome::parse(value) {
            Some(o) if o != Outcome::Canceled => o,
            _ => {
                self.push(
                    key,
                    format!(
                        "{value:?} is not an outcome; use success, client_error or system_error"
                    ),
                );
                Outcome::SystemError
            }
        }
    }

    fn positive(&mut self, key: &str, d: Duration) -> Duration {
        if d.is_zero() {
            self.push(key, "must be longer than 0");
        }
        d
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Checks every field of `raw` and builds the model; `base` resolves relative paths (the
/// directory of the configuration file).
pub fn validate(file: &str, raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
    let mut c = Checker { issues: Vec::new() };
    let server = validate_server(&mut c, &raw);
    let admin_listen = match raw.admin.listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            c.push(
                "admin.listen",
                format!("{:?} is not ip:port", raw.admin.listen),
            );
            SocketAddr::from(([127, 0, 0, 1], 9090))
        }
    };
    let upstream = validate_upstream(&mut c, &raw);
    let graphql = validate_graphql(&mut c, &raw, base);
    let (policy, error_code_header) = validate_classification(&mut c, &raw);
    let routes = validate_http(&mut c, &raw, &graphql.paths);
    let metrics = validate_metrics(&mut c, &raw, base, &graphql.manifest);
    let access_log = validate_access_log(&mut c, &raw, base);
    if !c.issues.is_empty() {
        return Err(ConfigError {
            file: file.to_string(),
            issues: c.issues,
        });
    }
    Ok(Config {
        server,
        admin_listen,
        upstream,
        graphql,
        policy,
        error_code_header,
        routes,
        metrics,
        access_log,
    })
}

fn validate_server(c: &mut Checker, raw: &RawConfig) -> ServerSettings {
    let s = &raw.server;
    if s.listen.is_empty() {
        c.push("server.listen", "needs at least one address");
    }
    let listen = s
        .listen
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match Address::parse(l) {
            Ok(a) => Some(a),
            Err(e) => {
                c.push(format!("server.listen[{i}]"), e);
                None
            }
        })
        .collect();
    let threads = if s.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        s.threads
    };
    ServerSettings {
        listen,
        threads,
        grace_period: s.grace_period.0,
        graceful_shutdown_timeout: s.graceful_shutdown_timeout.0,
        upgrade_socket: s.upgrade_socket.clone(),
        pid_file: s.pid_file.clone(),
    }
}

fn validate_upstream(c: &mut Checker, raw: &RawConfig) -> UpstreamSettings {
    let u = &raw.upstream;
    if u.name.is_empty() || !u.name.bytes().all(|b| b.is_ascii_graphic()) {
        c.push(
            "upstream.name",
            format!(
                "{:?} must be a non-empty word (it is the `service` label)",
                u.name
            ),
        );
    }
    if u.backends.is_empty() {
        c.push("upstream.backends", "needs at least one backend");
    }
    let backends = u
        .backends
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match Address::parse(b) {
            Ok(a) => Some(a),
            Err(e) => {
                c.push(format!("upstream.backends[{i}]"), e);
                None
            }
        })
        .collect();
    UpstreamSettings {
        name: u.name.clone(),
        backends,
        connect_timeout: c.positive("upstream.connect_timeout", u.connect_timeout.0),
        read_timeout: c.positive("upstream.read_timeout", u.read_timeout.0),
        write_timeout: c.positive("upstream.write_timeout", u.write_timeout.0),
        idle_timeout: c.positive("upstream.idle_timeout", u.idle_timeout.0),
    }
}

fn validate_graphql(c: &mut Checker, raw: &RawConfig, base: &Path) -> GraphqlSettings {
    let g = &raw.graphql;
    for (i, p) in g.paths.iter().enumerate() {
        if !p.starts_with('/') {
            c.push(
                format!("graphql.paths[{i}]"),
                format!("{p:?} must start with '/'"),
            );
        }
    }
    if g.max_inspect_bytes.0 == 0 {
        c.push("graphql.max_inspect_bytes", "must be at least 1 byte");
    }
    if g.max_batch == 0 {
        c.push("graphql.max_batch", "must be at least 1");
    }
    let manifest = match &g.manifest {
        Some(path) => load_manifest(&resolve(base, path)).unwrap_or_else(|e| {
            c.push("graphql.manifest", e);
            Vec::new()
        }),
        None => Vec::new(),
    };
    GraphqlSettings {
        paths: g.paths.clone(),
        extractor: ExtractorOptions {
            max_inspect_bytes: g.max_inspect_bytes.as_usize(),
            max_batch: g.max_batch,
            document_cache_bytes: g.document_cache.as_usize(),
            persisted_queries: g.persisted_queries.max(manifest.len()),
        },
        manifest,
    }
}

fn code_list(
    c: &mut Checker,
    key: &str,
    replace: &Option<Vec<String>>,
    extra: &[String],
    defaults: &[&str],
) -> HashSet<String> {
    let mut set: HashSet<String> = match replace {
        Some(list) => list.iter().cloned().collect(),
        None => defaults.iter().map(|s| s.to_string()).collect(),
    };
    set.extend(extra.iter().cloned());
    for code in &set {
        if code.is_empty() || code.len() > slogate_core::response::MAX_CODE_LEN {
            c.push(
                key,
                format!(
                    "{code:?} must be 1 to {} characters",
                    slogate_core::response::MAX_CODE_LEN
                ),
            );
        }
    }
    set
}

fn validate_classification(
    c: &mut Checker,
    raw: &RawConfig,
) -> (ClassificationPolicy, Option<String>) {
    let k = &raw.classification;
    let client_codes = code_list(
        c,
        "classification.client_codes",
        &k.client_codes,
        &k.extra_client_codes,
        DEFAULT_CLIENT_CODES,
    );
    let system_codes = code_list(
        c,
        "classification.system_codes",
        &k.system_codes,
        &k.extra_system_codes,
        DEFAULT_SYSTEM_CODES,
    );
    let mut both: Vec<&String> = client_codes.intersection(&system_codes).collect();
    both.sort();
    if let Some(code) = both.first() {
        c.push(
            "classification.system_codes",
            format!("{code:?} is also a client code; a code can only be one"),
        );
    }
    let mut status_overrides = std::collections::BTreeMap::new();
    for (status, outcome) in &k.status_overrides {
        let key = format!("classification.status_overrides.{status}");
        if !(100..=599).contains(status) {
            c.push(&key, "is not an HTTP status (100-599)");
        }
        status_overrides.insert(*status, c.outcome(&key, outcome));
    }
    let header = k.error_code_header.as_ref().map(|h| {
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            c.push(
                "classification.error_code_header",
                format!("{h:?} is not a header name"),
            );
        }
        h.to_ascii_lowercase()
    });
    let policy = ClassificationPolicy {
        client_codes,
        system_codes,
        no_data: c.outcome("classification.no_data", &k.no_data),
        unknown_code: c.outcome("classification.unknown_code", &k.unknown_code),
        non_json: c.outcome("classification.non_json", &k.non_json),
        status_overrides,
        max_inspect_bytes: k.max_response_inspect_bytes.0,
    };
    (policy, header)
}

fn validate_http(c: &mut Checker, raw: &RawConfig, graphql_paths: &[String]) -> RouteNamer {
    let templates = raw
        .http
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match RouteTemplate::parse(r) {
            Ok(t) => Some(t),
            Err(e) => {
                c.push(format!("http.routes[{i}]"), e.to_string());
                None
            }
        })
        .collect();
    for (i, p) in raw.http.exclude.iter().enumerate() {
        if !p.starts_with('/') {
            c.push(
                format!("http.exclude[{i}]"),
                format!("{p:?} must start with '/'"),
            );
        } else if graphql_paths.contains(p) {
            c.push(
                format!("http.exclude[{i}]"),
                format!("{p:?} is a GraphQL endpoint; excluding it would hide every operation"),
            );
        }
    }
    RouteNamer::new(templates, raw.http.exclude.iter().cloned())
}

fn validate_metrics(
    c: &mut Checker,
    raw: &RawConfig,
    base: &Path,
    manifest: &[ManifestOperation],
) -> MetricsSettings {
    let m = &raw.metrics;
    if m.buckets.is_empty() {
        c.push("metrics.buckets", "needs at least one bucket");
    }
    for (i, b) in m.buckets.iter().enumerate() {
        if !b.is_finite() || *b <= 0.0 {
            c.push(
                format!("metrics.buckets[{i}]"),
                format!("{b} must be a positive number of seconds"),
            );
        } else if i > 0 && *b <= m.buckets[i - 1] {
            c.push(
                format!("metrics.buckets[{i}]"),
                format!(
                    "{b} must be greater than the bucket before it ({})",
                    m.buckets[i - 1]
                ),
            );
        }
    }
    if m.max_operations == 0 {
        c.push("metrics.max_operations", "must be at least 1");
    }
    if m.max_error_codes == 0 {
        c.push("metrics.max_error_codes", "must be at least 1");
    }
    let mut allowlist: Option<Vec<String>> = None;
    if let Some(path) = &m.operation_allowlist {
        match load_name_list(&resolve(base, path)) {
            Ok(names) => allowlist = Some(names),
            Err(e) => c.push("metrics.operation_allowlist", e),
        }
    }
    if m.allowlist_from_manifest {
        if raw.graphql.manifest.is_none() {
            c.push("metrics.allowlist_from_manifest", "needs graphql.manifest");
        }
        let names = allowlist.get_or_insert_with(Vec::new);
        names.extend(manifest.iter().map(|op| op.name.clone()));
    }
    MetricsSettings {
        buckets: m.buckets.clone(),
        max_operations: m.max_operations,
        max_error_codes: m.max_error_codes,
        allowlist,
    }
}

fn validate_access_log(c: &mut Checker, raw: &RawConfig, base: &Path) -> AccessLogSettings {
    let a = &raw.access_log;
    let target = match a.target.as_str() {
        "off" | "" => LogTarget::Off,
        "stdout" | "-" => LogTarget::Stdout,
        "stderr" => LogTarget::Stderr,
        path => LogTarget::File(resolve(base, path)),
    };
    if a.buffer_lines == 0 {
        c.push("access_log.buffer_lines", "must be at least 1");
    }
    AccessLogSettings {
        target,
        include_query: a.include_query,
        buffer_lines: a.buffer_lines,
    }
}
