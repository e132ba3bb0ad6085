//! The validated, immutable configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use slogate_core::request::ExtractorOptions;
use slogate_core::response::{ClassificationPolicy, DEFAULT_CLIENT_CODES, DEFAULT_SYSTEM_CODES};
use slogate_core::route::{RouteNamer, RouteTemplate};
use slogate_core::Outcome;
use slogate_diagnostics::Checker;

use crate::cidr::Cidr;
use crate::manifest::{load_manifest, load_name_list, ManifestOperation};
use crate::raw::RawConfig;
use crate::ConfigError;

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
    /// Largest request body accepted (`None`: no limit).
    pub max_body_size: Option<u64>,
    /// Time between two reads of a request body.
    pub client_body_timeout: Duration,
    /// Idle client keepalive lifetime.
    pub keepalive_timeout: Duration,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// TLS termination, if configured.
    pub tls: Option<TlsSettings>,
    /// Client connections open at once, over every worker.
    pub max_connections: usize,
    /// Time allowed to receive a request head.
    pub client_header_timeout: Duration,
}

/// `server.tls:` validated.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// TLS listeners.
    pub listen: Vec<String>,
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
    /// HTTP/2 via ALPN.
    pub http2: bool,
    /// Plain listeners redirect to HTTPS.
    pub redirect_http: bool,
    /// Strict-Transport-Security value.
    pub hsts: Option<String>,
}

/// `upstream.health_check:` validated.
#[derive(Clone, Debug)]
pub struct HealthCheckSettings {
    /// Path requested.
    pub path: String,
    /// `Host` sent, if configured.
    pub host: Option<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time allowed per check.
    pub timeout: Duration,
    /// Failures to take a backend out.
    pub fall: u32,
    /// Successes to put it back.
    pub rise: u32,
}

/// `static:` validated.
#[derive(Clone, Debug)]
pub struct StaticSettings {
    /// The directory served, if any.
    pub root: Option<PathBuf>,
    /// Prefixes served as immutable.
    pub immutable: Vec<String>,
    /// Serve precompressed siblings.
    pub precompressed: bool,
    /// Honour X-Accel-Redirect / X-Sendfile.
    pub sendfile: bool,
    /// X-Accel-Redirect URL prefix → directory, longest prefix first.
    pub internal: Vec<(String, PathBuf)>,
}

/// A compression algorithm offered to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionAlgorithm {
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
    /// brotli.
    Brotli,
}

/// `compression:` validated.
#[derive(Clone, Debug)]
pub struct CompressionSettings {
    /// On or off.
    pub enabled: bool,
    /// Algorithms offered, with their level.
    pub algorithms: Vec<(CompressionAlgorithm, u32)>,
    /// Smallest response compressed.
    pub min_size: u64,
    /// Content types compressed (lowercase, without parameters).
    pub types: Vec<String>,
}

/// `pages:` validated.
#[derive(Clone, Debug)]
pub struct PagesSettings {
    /// Serve static error pages for errors slogate generates.
    pub error_pages: bool,
    /// The maintenance switch file.
    pub maintenance_file: Option<PathBuf>,
    /// The maintenance page, if it can be found.
    pub maintenance_page: Option<PathBuf>,
    /// Paths still proxied during maintenance.
    pub maintenance_allow: Vec<String>,
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
    /// Active health checks, if enabled.
    pub health_check: Option<HealthCheckSettings>,
    /// Answer buffering, if enabled.
    pub buffering: Option<BufferingSettings>,
    /// The HTTP/1.1 client that talks to the app.
    pub client: UpstreamClient,
}

/// `upstream.client:` the HTTP/1.1 client that talks to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamClient {
    /// hyper's client connection, driven by its own task.
    Hyper,
    /// slogate's own: the request's task writes the request and reads the answer.
    Slogate,
}

/// `upstream.buffering:` validated.
#[derive(Clone, Debug)]
pub struct BufferingSettings {
    /// Memory held per answer.
    pub memory: usize,
    /// Largest temporary file per answer (0: none).
    pub max_temp_file_size: u64,
    /// Where temporary files are made.
    pub temp_path: PathBuf,
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

/// `admin.bearer_token_file` and `admin.allow` validated.
#[derive(Clone, Default)]
pub struct AdminAccess {
    /// The token admin requests must carry, if any.
    pub bearer_token: Option<String>,
    /// Networks allowed; empty = all.
    pub allow: Vec<Cidr>,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log line.
        f.debug_struct("AdminAccess")
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow", &self.allow)
            .finish()
    }
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The proxy process.
    pub server: ServerSettings,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Who may use the admin endpoints.
    pub admin_access: AdminAccess,
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
    /// Static files and X-Accel-Redirect.
    pub static_files: StaticSettings,
    /// Compression of dynamic responses.
    pub compression: CompressionSettings,
    /// Error and maintenance pages.
    pub pages: PagesSettings,
}

/// slogate-config's own checks on top of the shared issue collector.
trait ConfigChecks {
    fn outcome(&mut self, key: &str, value: &str) -> Outcome;
    fn positive(&mut self, key: &str, d: Duration) -> Duration;
}

impl ConfigChecks for Checker {
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
    let mut c = Checker::default();
    let server = validate_server(&mut c, &raw, base);
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
    let admin_access = validate_admin_access(&mut c, &raw, base);
    let upstream = validate_upstream(&mut c, &raw);
    let graphql = validate_graphql(&mut c, &raw, base);
    let (policy, error_code_header) = validate_classification(&mut c, &raw);
    let routes = validate_http(&mut c, &raw, &graphql.paths);
    let metrics = validate_metrics(&mut c, &raw, base, &graphql.manifest);
    let access_log = validate_access_log(&mut c, &raw, base);
    let static_files = validate_static(&mut c, &raw, base);
    let compression = validate_compression(&mut c, &raw);
    let pages = validate_pages(&mut c, &raw, base, &static_files);
    c.finish(file)?;
    Ok(Config {
        server,
        admin_listen,
        admin_access,
        upstream,
        graphql,
        policy,
        error_code_header,
        routes,
        metrics,
        access_log,
        static_files,
        compression,
        pages,
    })
}

fn validate_server(c: &mut Checker, raw: &RawConfig, base: &Path) -> ServerSettings {
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
    let trusted_proxies = cidrs(c, "server.trusted_proxies", &s.trusted_proxies);
    let tls = s.tls.as_ref().map(|t| validate_tls(c, t, base));
    if s.max_connections == 0 {
        c.push("server.max_connections", "must be at least 1");
    }
    ServerSettings {
        max_connections: s.max_connections.max(1),
        client_header_timeout: c
            .positive("server.client_header_timeout", s.client_header_timeout.0),
        listen,
        threads,
        grace_period: s.grace_period.0,
        graceful_shutdown_timeout: s.graceful_shutdown_timeout.0,
        upgrade_socket: s.upgrade_socket.clone(),
        pid_file: s.pid_file.clone(),
        max_body_size: (s.max_body_size.0 > 0).then_some(s.max_body_size.0),
        client_body_timeout: c.positive("server.client_body_timeout", s.client_body_timeout.0),
        keepalive_timeout: s.keepalive_timeout.0,
        trusted_proxies,
        tls,
    }
}

/// A list of CIDRs at `key`; each one that does not parse is an issue at `key[i]`.
fn cidrs(c: &mut Checker, key: &str, list: &[String]) -> Vec<Cidr> {
    list.iter()
        .enumerate()
        .filter_map(|(i, t)| match Cidr::parse(t) {
            Ok(cidr) => Some(cidr),
            Err(e) => {
                c.push(format!("{key}[{i}]"), e);
                None
            }
        })
        .collect()
}

fn validate_admin_access(c: &mut Checker, raw: &RawConfig, base: &Path) -> AdminAccess {
    let a = &raw.admin;
    let bearer_token = a.bearer_token_file.as_ref().and_then(|f| {
        let path = resolve(base, f);
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => {
                c.push(
                    "admin.bearer_token_file",
                    format!("{} is empty", path.display()),
                );
                None
            }
            Err(e) => {
                c.push(
                    "admin.bearer_token_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    });
    let allow = cidrs(c, "admin.allow", &a.allow);
    AdminAccess {
        bearer_token,
        allow,
    }
}

fn readable_file(c: &mut Checker, key: &str, base: &Path, p: &str) -> PathBuf {
    let path = resolve(base, p);
    if let Err(e) = std::fs::File::open(&path) {
        c.push(key, format!("cannot read {}: {e}", path.display()));
    }
    path
}

fn validate_tls(c: &mut Checker, t: &crate::raw::RawTls, base: &Path) -> TlsSettings {
    if t.listen.is_empty() {
        c.push("server.tls.listen", "needs at least one address");
    }
    for (i, l) in t.listen.iter().enumerate() {
        if !matches!(Address::parse(l), Ok(Address::Tcp(_))) {
            c.push(
                format!("server.tls.listen[{i}]"),
                format!("{l:?} is not host:port"),
            );
        }
    }
    if let Some(h) = &t.hsts {
        if !h.trim_start().starts_with("max-age=") {
            c.push(
                "server.tls.hsts",
                format!(
                    "{h:?} must start with max-age= (e.g. \"max-age=31536000; includeSubDomains\")"
                ),
            );
        }
    }
    TlsSettings {
        listen: t.listen.clone(),
        cert: readable_file(c, "server.tls.cert", base, &t.cert),
        key: readable_file(c, "server.tls.key", base, &t.key),
        http2: t.http2,
        redirect_http: t.redirect_http,
        hsts: t.hsts.clone(),
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
    let h = &u.health_check;
    let health_check = h.enabled.then(|| {
        if !h.path.starts_with('/') {
            c.push(
                "upstream.health_check.path",
                format!("{:?} must start with '/'", h.path),
            );
        }
        if h.fall == 0 {
            c.push("upstream.health_check.fall", "must be at least 1");
        }
        if h.rise == 0 {
            c.push("upstream.health_check.rise", "must be at least 1");
        }
        HealthCheckSettings {
            path: h.path.clone(),
            host: h.host.clone(),
            interval: c.positive("upstream.health_check.interval", h.interval.0),
            timeout: c.positive("upstream.health_check.timeout", h.timeout.0),
            fall: h.fall,
            rise: h.rise,
        }
    });
    let b = &u.buffering;
    let buffering = b.enabled.then(|| {
        let temp_path = b
            .temp_path
            .as_ref()
            .map_or_else(std::env::temp_dir, PathBuf::from);
        if !temp_path.is_dir() {
            c.push(
                "upstream.buffering.temp_path",
                format!("{} is not a directory", temp_path.display()),
            );
        }
        BufferingSettings {
            memory: usize::try_from(b.memory.0.max(4096)).unwrap_or(usize::MAX),
            max_temp_file_size: b.max_temp_file_size.0,
            temp_path,
        }
    });
    let client = match u.client.as_str() {
        "hyper" => UpstreamClient::Hyper,
        "slogate" => UpstreamClient::Slogate,
        other => {
            c.push(
                "upstream.client",
                format!("unknown client {other:?}: hyper or slogate"),
            );
            UpstreamClient::Slogate
        }
    };
    UpstreamSettings {
        name: u.name.clone(),
        client,
        health_check,
        buffering,
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

fn directory(c: &mut Checker, key: &str, base: &Path, p: &str) -> PathBuf {
    let path = resolve(base, p);
    if !path.is_dir() {
        c.push(key, format!("{} is not a directory", path.display()));
    }
    path
}

fn validate_static(c: &mut Checker, raw: &RawConfig, base: &Path) -> StaticSettings {
    let s = &raw.static_files;
    let root = s
        .root
        .as_ref()
        .map(|r| directory(c, "static.root", base, r));
    for (i, p) in s.immutable.iter().enumerate() {
        if !p.starts_with('/') {
            c.push(
                format!("static.immutable[{i}]"),
                format!("{p:?} must start with '/'"),
            );
        }
    }
    let mut internal: Vec<(String, PathBuf)> = s
        .internal
        .iter()
        .map(|(prefix, dir)| {
            let key = format!("static.internal.{prefix:?}");
            if !prefix.starts_with('/') {
                c.push(&key, format!("{prefix:?} must start with '/'"));
            }
            (prefix.clone(), directory(c, &key, base, dir))
        })
        .collect();
    internal.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    StaticSettings {
        root,
        immutable: s.immutable.clone(),
        precompressed: s.precompressed,
        sendfile: s.sendfile,
        internal,
    }
}

fn validate_compression(c: &mut Checker, raw: &RawConfig) -> CompressionSettings {
    let k = &raw.compression;
    let mut algorithms = Vec::new();
    for (i, a) in k.algorithms.iter().enumerate() {
        let key = format!("compression.algorithms[{i}]");
        let (alg, level, range, level_key) = match a.as_str() {
            "br" | "brotli" => (
                CompressionAlgorithm::Brotli,
                k.brotli_level,
                0..=11,
                "compression.brotli_level",
            ),
            "gzip" => (
                CompressionAlgorithm::Gzip,
                k.gzip_level,
                1..=9,
                "compression.gzip_level",
            ),
            "zstd" => (
                CompressionAlgorithm::Zstd,
                k.zstd_level,
                1..=19,
                "compression.zstd_level",
            ),
            other => {
                c.push(&key, format!("{other:?} is not br, gzip or zstd"));
                continue;
            }
        };
        if !range.contains(&level) {
            c.push(
                level_key,
                format!("{level} is outside {}..={}", range.start(), range.end()),
            );
        }
        algorithms.push((alg, level));
    }
    let types = k
        .types
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| t != "text/event-stream")
        .collect();
    CompressionSettings {
        enabled: k.enabled && !algorithms.is_empty(),
        algorithms,
        min_size: k.min_size.0,
        types,
    }
}

fn validate_pages(
    c: &mut Checker,
    raw: &RawConfig,
    base: &Path,
    static_files: &StaticSettings,
) -> PagesSettings {
    let p = &raw.pages;
    let maintenance_page = {
        let page = Path::new(&p.maintenance_page);
        let path = if page.is_absolute() {
            Some(page.to_path_buf())
        } else {
            static_files.root.as_ref().map(|r| r.join(page))
        };
        path.filter(|p| p.is_file())
    };
    if p.maintenance_file.is_some()
        && maintenance_page.is_none()
        && !p.maintenance_page.is_empty()
        && Path::new(&p.maintenance_page).is_absolute()
    {
        c.push(
            "pages.maintenance_page",
            format!("{} does not exist", p.maintenance_page),
        );
    }
    for (i, a) in p.maintenance_allow.iter().enumerate() {
        if !a.starts_with('/') {
            c.push(
                format!("pages.maintenance_allow[{i}]"),
                format!("{a:?} must start with '/'"),
            );
        }
    }
    PagesSettings {
        error_pages: p.error_pages,
        maintenance_file: p.maintenance_file.as_ref().map(|f| resolve(base, f)),
        maintenance_page,
        maintenance_allow: p.maintenance_allow.clone(),
    }
}
