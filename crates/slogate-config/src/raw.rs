//! The configuration file as written: serde structs with defaults, before validation.
//!
//! Every section and field has a default, so an empty file (or no file) is a working
//! configuration: slogate on `0.0.0.0:8080` in front of Puma on `127.0.0.1:3000`.
//! Unknown keys are errors.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, HumanDuration};

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// The proxy's listeners and process settings.
    pub server: RawServer,
    /// The admin listener (metrics, health).
    pub admin: RawAdmin,
    /// The application behind slogate.
    pub upstream: RawUpstream,
    /// Which requests are GraphQL and how much of them to read.
    pub graphql: RawGraphql,
    /// How responses become outcomes.
    pub classification: RawClassification,
    /// Naming of plain HTTP requests.
    pub http: RawHttp,
    /// Metric options: buckets and cardinality bounds.
    pub metrics: RawMetrics,
    /// The JSON access log.
    pub access_log: RawAccessLog,
    /// Files served from the app's `public/` directory, and X-Accel-Redirect / X-Sendfile.
    #[serde(rename = "static")]
    pub static_files: RawStatic,
    /// Compression of dynamic responses.
    pub compression: RawCompression,
    /// Error and maintenance pages.
    pub pages: RawPages,
}

/// `static:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawStatic {
    /// The directory served (Rails' `public/`); unset serves nothing (every request goes to
    /// the app). Requests for a file that exists are answered by slogate (`try_files $uri @app`).
    pub root: Option<String>,
    /// Path prefixes of fingerprinted files, served with
    /// `Cache-Control: public, max-age=31536000, immutable`.
    pub immutable: Vec<String>,
    /// Serve `file.br` / `file.gz` siblings when the client accepts them (nginx `gzip_static`).
    pub precompressed: bool,
    /// Honour `X-Accel-Redirect` / `X-Sendfile` from the app (Rails `send_file`).
    pub sendfile: bool,
    /// URL prefix to directory mappings for X-Accel-Redirect (nginx `internal` locations),
    /// e.g. `{"/protected/": "/var/app/files/"}`. X-Sendfile paths must lie under one of the
    /// directories too.
    pub internal: BTreeMap<String, String>,
}

impl Default for RawStatic {
    fn default() -> Self {
        RawStatic {
            root: None,
            immutable: vec!["/assets/".into(), "/packs/".into()],
            precompressed: true,
            sendfile: true,
            internal: BTreeMap::new(),
        }
    }
}

/// `compression:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCompression {
    /// Compress responses the app sent uncompressed.
    pub enabled: bool,
    /// Algorithms offered, in order of preference when the client accepts several: `zstd`,
    /// `br`, `gzip`.
    pub algorithms: Vec<String>,
    /// Responses smaller than this are sent as they are (nginx `gzip_min_length`).
    pub min_size: ByteSize,
    /// Content types compressed (nginx `gzip_types`). `text/event-stream` never is.
    pub types: Vec<String>,
    /// gzip level (1-9).
    pub gzip_level: u32,
    /// zstd level (1-19).
    pub zstd_level: u32,
    /// brotli quality (0-11).
    pub brotli_level: u32,
}

impl Default for RawCompression {
    fn default() -> Self {
        RawCompression {
            enabled: true,
            algorithms: vec!["zstd".into(), "gzip".into()],
            min_size: ByteSize(1024),
            types: [
                "text/html",
                "text/plain",
                "text/css",
                "text/javascript",
                "text/xml",
                "application/json",
                "application/graphql-response+json",
                "application/javascript",
                "application/xml",
                "application/rss+xml",
                "application/atom+xml",
                "image/svg+xml",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            gzip_level: 5,
            zstd_level: 3,
            brotli_level: 4,
        }
    }
}

/// `pages:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPages {
    /// Serve `<static.root>/502.html` (and 500/503/504) for errors slogate generates.
    pub error_pages: bool,
    /// While this file exists, every request gets 503 with the maintenance page (nginx
    /// `if (-f ...) { return 503; }`). The admin endpoint `POST /maintenance` switches it too.
    pub maintenance_file: Option<String>,
    /// The maintenance page, relative to `static.root` unless absolute.
    pub maintenance_page: String,
    /// Paths still proxied during maintenance (health checks).
    pub maintenance_allow: Vec<String>,
}

impl Default for RawPages {
    fn default() -> Self {
        RawPages {
            error_pages: true,
            maintenance_file: None,
            maintenance_page: "maintenance.html".into(),
            maintenance_allow: vec!["/up".into()],
        }
    }
}

/// `server:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    /// Addresses the proxy listens on (`host:port`, or `unix:/path`).
    pub listen: Vec<String>,
    /// Worker threads; 0 means one per CPU core.
    pub threads: usize,
    /// How long an old process keeps serving after a graceful upgrade or shutdown starts.
    pub grace_period: HumanDuration,
    /// How long in-flight requests get to finish once the grace period is over.
    pub graceful_shutdown_timeout: HumanDuration,
    /// Where a graceful upgrade hands over the listening sockets.
    pub upgrade_socket: String,
    /// The process id file.
    pub pid_file: String,
    /// Largest request body accepted; larger ones get 413 without reaching the app
    /// (nginx `client_max_body_size`, default 1m). 0 means no limit.
    pub max_body_size: ByteSize,
    /// Time allowed between two reads of a request body (nginx `client_body_timeout`).
    pub client_body_timeout: HumanDuration,
    /// How long an idle client keepalive connection is kept (nginx `keepalive_timeout`).
    pub keepalive_timeout: HumanDuration,
    /// Peers (CIDRs) whose X-Forwarded-* headers are believed: a load balancer in front.
    /// From anyone else those headers are replaced (nginx `set_real_ip_from`).
    pub trusted_proxies: Vec<String>,
    /// TLS termination.
    pub tls: Option<RawTls>,
    /// Client connections open at once, over every worker (nginx `worker_connections`,
    /// HAProxy `maxconn`). At the limit slogate stops accepting; new connections wait in
    /// the kernel's listen queue until one closes, and a warning and
    /// `slogate_connection_limit_reached_total` say so.
    pub max_connections: usize,
    /// Time allowed to receive a request head, also the first one of a new connection
    /// (nginx `client_header_timeout`). An idle keep-alive connection waits at most the
    /// shorter of this and `keepalive_timeout`.
    pub client_header_timeout: HumanDuration,
}

/// `server.tls:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// TLS listeners (`host:port`).
    pub listen: Vec<String>,
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
    /// Offer HTTP/2 through ALPN.
    #[serde(default = "yes")]
    pub http2: bool,
    /// Plain-HTTP listeners answer 301 to https:// instead of proxying.
    #[serde(default)]
    pub redirect_http: bool,
    /// `Strict-Transport-Security` value added to HTTPS responses (e.g.
    /// `max-age=31536000; includeSubDomains`); unset sends none.
    #[serde(default)]
    pub hsts: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: vec!["0.0.0.0:8080".into()],
            threads: 0,
            grace_period: HumanDuration(Duration::from_secs(5)),
            graceful_shutdown_timeout: HumanDuration(Duration::from_secs(10)),
            upgrade_socket: "/tmp/slogate_upgrade.sock".into(),
            pid_file: "/tmp/slogate.pid".into(),
            max_body_size: ByteSize(1 << 20),
            client_body_timeout: HumanDuration(Duration::from_secs(60)),
            keepalive_timeout: HumanDuration(Duration::from_secs(75)),
            trusted_proxies: Vec::new(),
            tls: None,
            max_connections: 16_384,
            client_header_timeout: HumanDuration(Duration::from_secs(60)),
        }
    }
}

/// `admin:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    /// Address of the admin listener; loopback by default so metrics are not public.
    pub listen: String,
    /// A file holding a bearer token every admin request must carry
    /// (`Authorization: Bearer <token>`); otherwise 401. Prometheus: `authorization:
    /// credentials_file`.
    pub bearer_token_file: Option<String>,
    /// Networks (CIDRs) allowed to reach the admin endpoints; anyone else gets 403. Empty:
    /// everyone who can reach the listener.
    pub allow: Vec<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: "127.0.0.1:9090".into(),
            bearer_token_file: None,
            allow: Vec::new(),
        }
    }
}

/// `upstream:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawUpstream {
    /// The service name: the `service` label of every metric.
    pub name: String,
    /// Backends: `host:port` or `unix:/path/to/puma.sock`.
    pub backends: Vec<String>,
    /// Time allowed to connect to a backend (nginx `proxy_connect_timeout`).
    pub connect_timeout: HumanDuration,
    /// Time allowed between two reads from a backend (nginx `proxy_read_timeout`).
    pub read_timeout: HumanDuration,
    /// Time allowed between two writes to a backend (nginx `proxy_send_timeout`).
    pub write_timeout: HumanDuration,
    /// How long an idle pooled connection is kept (nginx `keepalive_timeout` upstream). Keep it
    /// below Puma's `persistent_timeout` (20s) so slogate, not Puma, closes idle connections.
    pub idle_timeout: HumanDuration,
    /// Active health checks.
    pub health_check: RawHealthCheck,
    /// Buffering of the app's answers (nginx `proxy_buffering`), so a slow client never
    /// holds an app thread.
    pub buffering: RawBuffering,
    /// The HTTP/1.1 client that talks to the app: `slogate` (slogate's own, which writes
    /// and reads the socket in the request's task; WebSocket upgrades go through hyper's) or
    /// `hyper` (hyper's connection and its dispatcher task).
    pub client: String,
}

/// `upstream.buffering:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawBuffering {
    /// Read the app's answer as fast as the app sends it (`proxy_buffering on`). Event
    /// streams, upgrades and answers with `X-Accel-Buffering: no` are never buffered.
    pub enabled: bool,
    /// Memory held per answer (nginx `proxy_buffers`, e.g. `8 8k`).
    pub memory: ByteSize,
    /// Largest temporary file per answer, once memory is full (nginx
    /// `proxy_max_temp_file_size`); 0 keeps answers in memory only. Past it, the app is
    /// read only as fast as the client takes the answer.
    pub max_temp_file_size: ByteSize,
    /// Where the temporary files are made (unlinked at once); default: the system's.
    pub temp_path: Option<String>,
}

impl Default for RawBuffering {
    fn default() -> Self {
        RawBuffering {
            enabled: true,
            memory: ByteSize(64 * 1024),
            max_temp_file_size: ByteSize(1 << 30),
            temp_path: None,
        }
    }
}

/// `upstream.health_check:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHealthCheck {
    /// Check backends at all; without checks every backend is always tried.
    pub enabled: bool,
    /// The path requested (Rails 7.1's health route is `/up`). Any answer below 500 means
    /// the app is up (a 404 from an app without the route, a 403 from host authorization);
    /// refused, timed out, garbage and 5xx are failures.
    pub path: String,
    /// The `Host` sent; unset sends the backend's address (`127.0.0.1:3000`), or
    /// `localhost` for a Unix socket.
    pub host: Option<String>,
    /// Time between checks.
    pub interval: HumanDuration,
    /// Time allowed for one check.
    pub timeout: HumanDuration,
    /// Consecutive failures before a backend is taken out.
    pub fall: u32,
    /// Consecutive successes before it is put back.
    pub rise: u32,
}

impl Default for RawHealthCheck {
    fn default() -> Self {
        RawHealthCheck {
            enabled: true,
            path: "/up".into(),
            host: None,
            interval: HumanDuration(Duration::from_secs(2)),
            timeout: HumanDuration(Duration::from_secs(1)),
            fall: 2,
            rise: 2,
        }
    }
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            name: "rails".into(),
            backends: vec!["127.0.0.1:3000".into()],
            connect_timeout: HumanDuration(Duration::from_secs(5)),
            read_timeout: HumanDuration(Duration::from_secs(60)),
            write_timeout: HumanDuration(Duration::from_secs(60)),
            idle_timeout: HumanDuration(Duration::from_secs(15)),
            health_check: RawHealthCheck::default(),
            buffering: RawBuffering::default(),
            client: "slogate".into(),
        }
    }
}

/// `graphql:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGraphql {
    /// Request paths that are GraphQL endpoints.
    pub paths: Vec<String>,
    /// Request body bytes read at most to name operations; the rest streams through unread.
    pub max_inspect_bytes: ByteSize,
    /// Operations counted at most in one batch.
    pub max_batch: usize,
    /// Memory for remembering parsed documents.
    pub document_cache: ByteSize,
    /// Persisted-query hashes remembered.
    pub persisted_queries: usize,
    /// A persisted-operations manifest (Apollo's `persisted-query-manifest.json`, or a list of
    /// names): its operations are known by hash from the start, and, with
    /// `metrics.allowlist_from_manifest`, only its names become labels.
    pub manifest: Option<String>,
}

impl Default for RawGraphql {
    fn default() -> Self {
        RawGraphql {
            paths: vec!["/graphql".into()],
            max_inspect_bytes: ByteSize(1 << 20),
            max_batch: 100,
            document_cache: ByteSize(32 << 20),
            persisted_queries: 10_000,
            manifest: None,
        }
    }
}

/// `classification:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawClassification {
    /// `extensions.code` values that are the client's fault (replaces the default list).
    pub client_codes: Option<Vec<String>>,
    /// Codes added to the client list.
    pub extra_client_codes: Vec<String>,
    /// `extensions.code` values that are the system's fault (replaces the default list).
    pub system_codes: Option<Vec<String>>,
    /// Codes added to the system list.
    pub extra_system_codes: Vec<String>,
    /// Outcome of field errors whose code is in neither list, or absent.
    pub unknown_code: String,
    /// Outcome of a GraphQL response without `data` (parse, validation, variable errors).
    pub no_data: String,
    /// Outcome of a 2xx GraphQL response whose body is not JSON.
    pub non_json: String,
    /// Outcome by status, overriding 4xx = client_error, 5xx = system_error.
    pub status_overrides: BTreeMap<u16, String>,
    /// A response header carrying an error code, read with the same lists
    /// (the old convention, e.g. `X-GraphQL-Error-Code`).
    pub error_code_header: Option<String>,
    /// Decoded response bytes read at most per response.
    pub max_response_inspect_bytes: ByteSize,
}

impl Default for RawClassification {
    fn default() -> Self {
        RawClassification {
            client_codes: None,
            extra_client_codes: Vec::new(),
            system_codes: None,
            extra_system_codes: Vec::new(),
            unknown_code: "system_error".into(),
            no_data: "client_error".into(),
            non_json: "system_error".into(),
            status_overrides: BTreeMap::new(),
            error_code_header: None,
            max_response_inspect_bytes: ByteSize(256 << 20),
        }
    }
}

/// `http:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHttp {
    /// Route templates tried in order: `/api/v1/courses/:id`, `GET /files/*path`.
    pub routes: Vec<String>,
    /// Paths left out of metrics and the access log (health checks).
    pub exclude: Vec<String>,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            routes: Vec::new(),
            exclude: vec!["/up".into(), "/health".into(), "/healthz".into()],
        }
    }
}

/// `metrics:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// Latency histogram buckets in seconds, increasing. SLO thresholds must be one of them.
    pub buckets: Vec<f64>,
    /// Distinct operation label values per service and kind; beyond, `(other)`.
    pub max_operations: usize,
    /// Distinct error-code label values per service; beyond, `(other)`.
    pub max_error_codes: usize,
    /// A file listing the only GraphQL operation names allowed as labels (one per line, a
    /// JSON array, or a persisted-query manifest); others become `(other)`.
    pub operation_allowlist: Option<String>,
    /// Use `graphql.manifest`'s operation names as the allowlist.
    pub allowlist_from_manifest: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            buckets: slogate_core::DEFAULT_BUCKETS.to_vec(),
            max_operations: 1000,
            max_error_codes: 100,
            operation_allowlist: None,
            allowlist_from_manifest: false,
        }
    }
}

/// `access_log:`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAccessLog {
    /// `stdout`, `stderr`, `off`, or a file path (appended to; rotate it with copytruncate).
    pub target: String,
    /// Log the query string with the path (off by default: it may carry tokens or PII).
    pub include_query: bool,
    /// Lines held in memory when the writer falls behind; beyond, lines are dropped and
    /// counted in `slogate_access_log_dropped_total` rather than slowing requests.
    pub buffer_lines: usize,
}

impl Default for RawAccessLog {
    fn default() -> Self {
        RawAccessLog {
            target: "stdout".into(),
            include_query: false,
            buffer_lines: 65_536,
        }
    }
}
