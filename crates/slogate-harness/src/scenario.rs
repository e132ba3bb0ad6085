//! Scenarios: YAML files that say how the mock upstream answers each operation and what traffic
//! the load tester sends. Parsed with unknown keys refused, then validated; every mistake names
//! the file, the key and the problem.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slogate_core::request::is_graphql_name;
use slogate_core::response::ClassificationPolicy;
use slogate_core::{OperationType, Outcome};
use slogate_diagnostics::{Checker, FileError, HumanDuration as Dur};

use crate::latency::Latency;

/// A scenario that cannot be used: the file, the key and what is wrong (the [`FileError`]
/// every file slogate reads reports). Maps to exit code 2.
pub type ScenarioError = FileError;

fn one() -> f64 {
    1.0
}

fn default_chunks() -> u32 {
    5
}

fn default_graphql_path() -> String {
    "/graphql".to_string()
}

/// How the load is paced.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// Requests leave on a fixed schedule whatever happened to earlier ones.
    #[default]
    Open,
    /// N connections each send their next request when the previous one finished.
    Closed,
}

/// How a GraphQL operation is sent.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// `POST` with a JSON body (`operationName` first, as Apollo Client sends it).
    #[default]
    Post,
    /// `GET` with `query`, `operationName` and `variables` in the URL.
    Get,
    /// Automatic persisted query: the hash alone first, the document after a
    /// `PERSISTED_QUERY_NOT_FOUND`.
    Persisted,
    /// A JSON body cut short: nobody can read it.
    Malformed,
}

/// When the mock compresses its answers.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GzipMode {
    /// Never.
    #[default]
    Never,
    /// When the request says `Accept-Encoding: gzip` (Rack::Deflater).
    WhenAccepted,
    /// Always, even to clients that did not ask.
    Always,
}

/// The body of a status answer.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusBody {
    /// An HTML error page (Rails' `public/500.html`).
    #[default]
    Html,
    /// `{"errors":[{"message": ...}]}`.
    Json,
    /// No body.
    Empty,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawOpType {
    #[default]
    Query,
    Mutation,
    Subscription,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    load: RawLoad,
    #[serde(default)]
    proxy: RawProxy,
    #[serde(default = "default_graphql_path")]
    graphql_path: String,
    #[serde(default)]
    operations: Vec<RawOperation>,
    #[serde(default)]
    batches: Vec<RawBatch>,
    #[serde(default)]
    rest: Vec<RawRest>,
    #[serde(default)]
    default_latency: Option<RawLatency>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLoad {
    mode: LoadMode,
    rate: Option<f64>,
    connections: Option<usize>,
    duration: Option<Dur>,
    requests: Option<u64>,
    timeout: Option<Dur>,
    accept_gzip: Option<bool>,
    max_in_flight: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawProxy {
    read_timeout: Option<Dur>,
}

/// `{fixed: 20ms}`, `{uniform: {min, max}}` or `{lognormal: {p50, p99, max}}`: exactly one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    #[serde(default)]
    fixed: Option<Dur>,
    #[serde(default)]
    uniform: Option<RawUniform>,
    #[serde(default)]
    lognormal: Option<RawLognormal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUniform {
    min: Dur,
    max: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLognormal {
    p50: Dur,
    p99: Dur,
    #[serde(default)]
    max: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeight {
    #[serde(default = "one")]
    weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoded {
    #[serde(default = "one")]
    weight: f64,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    #[serde(default = "one")]
    weight: f64,
    status: u16,
    #[serde(default)]
    body: StatusBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlow {
    #[serde(default = "one")]
    weight: f64,
    #[serde(default = "default_chunks")]
    chunks: u32,
    interval: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHang {
    #[serde(default = "one")]
    weight: f64,
    #[serde(default)]
    duration: Option<Dur>,
}

/// One answer: a map with exactly one of these keys (`- success: {weight: 90}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    #[serde(default)]
    success: Option<RawWeight>,
    #[serde(default)]
    field_error: Option<RawCoded>,
    #[serde(default)]
    request_error: Option<RawCoded>,
    #[serde(default)]
    status: Option<RawStatus>,
    #[serde(default)]
    not_json: Option<RawWeight>,
    #[serde(default)]
    slow_body: Option<RawSlow>,
    #[serde(default)]
    reset: Option<RawWeight>,
    #[serde(default)]
    truncated: Option<RawWeight>,
    #[serde(default)]
    hang: Option<RawHang>,
}

impl RawAnswer {
    /// Every kind given, with its weight (exactly one is expected).
    fn kinds(self) -> Vec<(f64, AnswerKind)> {
        let mut out = Vec::new();
        if let Some(w) = self.success {
            out.push((w.weight, AnswerKind::Success));
        }
        if let Some(c) = self.field_error {
            out.push((c.weight, AnswerKind::FieldError { code: c.code }));
        }
        if let Some(c) = self.request_error {
            out.push((c.weight, AnswerKind::RequestError { code: c.code }));
        }
        if let Some(st) = self.status {
            let kind = AnswerKind::Status {
                status: st.status,
                body: st.body,
            };
            out.push((st.weight, kind));
        }
        if let Some(w) = self.not_json {
            out.push((w.weight, AnswerKind::NotJson));
        }
        if let Some(sl) = self.slow_body {
            let kind = AnswerKind::SlowBody {
                chunks: sl.chunks,
                interval: sl.interval.0,
            };
            out.push((sl.weight, kind));
        }
        if let Some(w) = self.reset {
            out.push((w.weight, AnswerKind::Reset));
        }
        if let Some(w) = self.truncated {
            out.push((w.weight, AnswerKind::Truncated));
        }
        if let Some(h) = self.hang {
            let duration = h.duration.map_or(DEFAULT_HANG, |d| d.0);
            out.push((h.weight, AnswerKind::Hang { duration }));
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    name: String,
    #[serde(default, rename = "type")]
    op_type: RawOpType,
    #[serde(default = "one")]
    weight: f64,
    #[serde(default)]
    send: SendMode,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    random_names: Option<u32>,
    #[serde(default)]
    pad_kb: u32,
    #[serde(default)]
    nest_depth: u32,
    #[serde(default)]
    latency: Option<RawLatency>,
    #[serde(default)]
    gzip: GzipMode,
    #[serde(default)]
    body_kb: u32,
    #[serde(default)]
    answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    operations: Vec<String>,
    #[serde(default = "one")]
    weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    ids: Option<[u64; 2]>,
    #[serde(default = "one")]
    weight: f64,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    latency: Option<RawLatency>,
    #[serde(default)]
    gzip: GzipMode,
    #[serde(default)]
    body_kb: u32,
    #[serde(default)]
    answers: Vec<RawAnswer>,
}

/// What the mock does with one request of an operation.
#[derive(Clone, Debug, PartialEq)]
pub enum AnswerKind {
    /// `200` with `data`.
    Success,
    /// `200` with `data` and one error carrying this `extensions.code` (none if `None`).
    FieldError {
        /// The error's code.
        code: Option<String>,
    },
    /// `200` with `errors` and no `data` (a request error).
    RequestError {
        /// The error's code.
        code: Option<String>,
    },
    /// A `4xx`/`5xx` status.
    Status {
        /// The status.
        status: u16,
        /// Its body.
        body: StatusBody,
    },
    /// `200` with an HTML body on the GraphQL endpoint.
    NotJson,
    /// A success whose body is trickled in chunks.
    SlowBody {
        /// Number of chunks.
        chunks: u32,
        /// Pause between two chunks.
        interval: Duration,
    },
    /// The connection is reset before any response byte.
    Reset,
    /// Headers and half the body, then a reset.
    Truncated,
    /// No answer for this long (past the proxy's read timeout).
    Hang {
        /// How long the mock waits before answering after all.
        duration: Duration,
    },
}

impl AnswerKind {
    /// The label under which the mock counts this answer, e.g. `field_error:NOT_FOUND`.
    pub fn label(&self) -> String {
        let code = |c: &Option<String>| c.as_deref().unwrap_or("(none)").to_string();
        match self {
            AnswerKind::Success => "success".into(),
            AnswerKind::FieldError { code: c } => format!("field_error:{}", code(c)),
            AnswerKind::RequestError { code: c } => format!("request_error:{}", code(c)),
            AnswerKind::Status { status, .. } => format!("status:{status}"),
            AnswerKind::NotJson => "not_json".into(),
            AnswerKind::SlowBody { .. } => "slow_body".into(),
            AnswerKind::Reset => "reset".into(),
            AnswerKind::Truncated => "truncated".into(),
            AnswerKind::Hang { .. } => "hang".into(),
        }
    }

    /// The outcome this answer must end up as, under `policy`, for a GraphQL operation
    /// (`graphql`) or an HTTP route. Resets, truncations and hangs are system errors: the
    /// proxy answers `502`/`504` or cuts the body, and the client must outwait the proxy.
    pub fn outcome(&self, policy: &ClassificationPolicy, graphql: bool) -> Outcome {
        match self {
            AnswerKind::Success | AnswerKind::SlowBody { .. } => Outcome::Success,
            AnswerKind::Status { status, .. } => {
                policy.status_outcome(*status).unwrap_or(Outcome::Success)
            }
            AnswerKind::Reset | AnswerKind::Truncated | AnswerKind::Hang { .. } => {
                Outcome::SystemError
            }
            _ if !graphql => Outcome::Success,
            AnswerKind::NotJson => policy.non_json,
            AnswerKind::FieldError { code } => match code.as_deref() {
                Some(c) if policy.system_codes.contains(c) => Outcome::SystemError,
                Some(c) if policy.client_codes.contains(c) => Outcome::ClientError,
                _ => policy.unknown_code,
            },
            AnswerKind::RequestError { code } => match code.as_deref() {
                Some(c) if policy.system_codes.contains(c) => Outcome::SystemError,
                _ => policy.no_data,
            },
        }
    }

    /// Whether the answer decides the whole HTTP response (in a batch, for every element).
    pub fn is_response_level(&self) -> bool {
        matches!(
            self,
            AnswerKind::Status { .. }
                | AnswerKind::NotJson
                | AnswerKind::Reset
                | AnswerKind::Truncated
                | AnswerKind::Hang { .. }
        )
    }
}

/// One weighted answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// Relative weight.
    pub weight: f64,
    /// What happens.
    pub kind: AnswerKind,
}

/// How the mock behaves for one operation or route.
#[derive(Clone, Debug)]
pub struct Behavior {
    /// Time before the answer starts.
    pub latency: Latency,
    /// Compression of answers.
    pub gzip: GzipMode,
    /// Padding of a success body, in KiB.
    pub body_kb: u32,
    /// The mix of answers.
    pub answers: Vec<Answer>,
}

impl Behavior {
    fn weights(&self) -> Vec<f64> {
        self.answers.iter().map(|a| a.weight).collect()
    }

    /// Draws one answer.
    pub fn pick(&self, rng: &mut crate::rng::Rng) -> &AnswerKind {
        let i = rng.pick(&self.weights());
        &self.answers[i].kind
    }
}

/// A GraphQL operation: how the client sends it and how the mock answers it.
#[derive(Clone, Debug)]
pub struct OperationSpec {
    /// The operation name (the prefix of the names when `random_names` is set).
    pub name: String,
    /// Its type.
    pub op_type: OperationType,
    /// Share of the load.
    pub weight: f64,
    /// How it is sent.
    pub send: SendMode,
    /// The document.
    pub document: String,
    /// Variables sent with it.
    pub variables: Option<serde_json::Value>,
    /// Send `NAME_k` with `k` drawn from this many values (label cardinality attack).
    pub random_names: Option<u32>,
    /// KiB of comment appended to the document.
    pub pad_kb: u32,
    /// Depth of nested arrays put in the variables.
    pub nest_depth: u32,
    /// The mock's behaviour.
    pub behavior: Behavior,
}

impl OperationSpec {
    /// Whether a name the mock read belongs to this operation.
    pub fn matches(&self, name: &str) -> bool {
        match self.random_names {
            None => name == self.name,
            Some(_) => name
                .strip_prefix(self.name.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        }
    }
}

/// A batch: several operations in one JSON array.
#[derive(Clone, Debug)]
pub struct BatchSpec {
    /// Indexes into [`Scenario::operations`].
    pub operations: Vec<usize>,
    /// Share of the load.
    pub weight: f64,
}

/// A REST route.
#[derive(Clone, Debug)]
pub struct RestSpec {
    /// The label slogate is expected to give it (`GET /api/v1/courses/:id`).
    pub name: String,
    /// The method.
    pub method: String,
    /// The path template; `{param}` segments match anything and are filled with an id.
    pub path: String,
    /// Ids drawn for `{param}` segments (inclusive).
    pub ids: (u64, u64),
    /// Share of the load.
    pub weight: f64,
    /// JSON body sent with it.
    pub body: Option<serde_json::Value>,
    /// The mock's behaviour.
    pub behavior: Behavior,
}

impl RestSpec {
    /// Whether a request path matches the template.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

/// How the load is generated.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Open or closed loop.
    pub mode: LoadMode,
    /// Requests per second (open loop).
    pub rate: f64,
    /// Concurrent connections (closed loop).
    pub connections: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub requests: Option<u64>,
    /// The client gives up on a request after this long (`canceled`).
    pub timeout: Duration,
    /// Send `Accept-Encoding: gzip`.
    pub accept_gzip: bool,
    /// Requests in flight at most (open loop); past it, requests wait, and the wait counts
    /// in their latency.
    pub max_in_flight: usize,
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from (for messages).
    pub file: String,
    /// What it shows.
    pub description: String,
    /// Seed of the load mix and of the mock's draws.
    pub seed: u64,
    /// The load.
    pub load: LoadPlan,
    /// The proxy's upstream read timeout this scenario assumes (`upstream.read_timeout`).
    pub proxy_read_timeout: Duration,
    /// The GraphQL endpoint.
    pub graphql_path: String,
    /// GraphQL operations.
    pub operations: Vec<OperationSpec>,
    /// Batches.
    pub batches: Vec<BatchSpec>,
    /// REST routes.
    pub rest: Vec<RestSpec>,
    /// Latency of what matches no operation or route (unknown operations, unreadable
    /// requests, unknown routes).
    pub default_latency: Latency,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let (file, text) = slogate_diagnostics::read_file(path)?;
        Scenario::parse(&file, &text)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = slogate_diagnostics::parse_yaml(file, text)?;
        validate(file, raw)
    }

    /// Checks the scenario against a proxy whose upstream read timeout is `read_timeout`
    /// (from `--proxy-config`), replacing the one the file assumes.
    pub fn with_read_timeout(mut self, read_timeout: Duration) -> Result<Scenario, ScenarioError> {
        self.proxy_read_timeout = read_timeout;
        let mut c = Checker::default();
        check_load(&mut c, &self.load);
        check_timeouts(&mut c, &self);
        c.finish(&self.file)?;
        Ok(self)
    }

    /// The operation a name read from a request belongs to.
    pub fn operation(&self, name: &str) -> Option<&OperationSpec> {
        self.operations.iter().find(|o| o.matches(name))
    }

    /// The route a request matches.
    pub fn route(&self, method: &str, path: &str) -> Option<&RestSpec> {
        self.rest.iter().find(|r| r.matches(method, path))
    }
}

/// The scenario's own check on top of the shared issue collector.
trait ScenarioChecks {
    fn weight(&mut self, key: &str, w: f64) -> f64;
}

impl ScenarioChecks for Checker {
    fn weight(&mut self, key: &str, w: f64) -> f64 {
        if !w.is_finite() || w < 0.0 {
            self.push(key, format!("{w} must be a number >= 0"));
            return 0.0;
        }
        w
    }
}

/// How long a hang lasts when the scenario does not say: far past any sane proxy timeout.
const DEFAULT_HANG: Duration = Duration::from_secs(600);

fn validate(file: &str, raw: RawScenario) -> Result<Scenario, ScenarioError> {
    let mut c = Checker::default();
    let load = validate_load(&mut c, &raw.load);
    let proxy_read_timeout = raw
        .proxy
        .read_timeout
        .map_or(Duration::from_secs(60), |d| d.0);
    if proxy_read_timeout.is_zero() {
        c.push("proxy.read_timeout", "must be longer than 0");
    }
    if !raw.graphql_path.starts_with('/') {
        c.push(
            "graphql_path",
            format!("{:?} must start with '/'", raw.graphql_path),
        );
    }
    let operations: Vec<OperationSpec> = raw
        .operations
        .into_iter()
        .enumerate()
        .map(|(i, op)| validate_operation(&mut c, &format!("operations[{i}]"), op))
        .collect();
    check_unique_names(&mut c, &operations);
    let batches = raw
        .batches
        .into_iter()
        .enumerate()
        .map(|(i, b)| validate_batch(&mut c, &format!("batches[{i}]"), b, &operations))
        .collect();
    let rest = raw
        .rest
        .into_iter()
        .enumerate()
        .map(|(i, r)| validate_rest(&mut c, &format!("rest[{i}]"), r))
        .collect();
    let default_latency = validate_latency(&mut c, "default_latency", raw.default_latency.as_ref());
    let scenario = Scenario {
        file: file.to_string(),
        description: raw.description,
        seed: raw.seed,
        load,
        proxy_read_timeout,
        graphql_path: raw.graphql_path,
        operations,
        batches,
        rest,
        default_latency,
    };
    let total: f64 = scenario.operations.iter().map(|o| o.weight).sum::<f64>()
        + scenario.batches.iter().map(|b| b.weight).sum::<f64>()
        + scenario.rest.iter().map(|r| r.weight).sum::<f64>();
    if total <= 0.0 && c.is_empty() {
        c.push(
            "operations",
            "nothing to send: give at least one operation, batch or route a weight above 0",
        );
    }
    check_timeouts(&mut c, &scenario);
    c.finish(file)?;
    Ok(scenario)
}

fn validate_load(c: &mut Checker, raw: &RawLoad) -> LoadPlan {
    let rate = raw.rate.unwrap_or(20.0);
    if raw.mode == LoadMode::Open && !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
        c.push(
            "load.rate",
            format!("{rate} must be a rate in requests per second above 0"),
        );
    }
    let connections = raw.connections.unwrap_or(4);
    if connections == 0 || connections > 10_000 {
        c.push("load.connections", "must be between 1 and 10000");
    }
    let duration = raw.duration.map(|d| d.0);
    let duration = match (duration, raw.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    if duration.is_some_and(|d| d.is_zero()) {
        c.push("load.duration", "must be longer than 0");
    }
    if raw.requests == Some(0) {
        c.push("load.requests", "must be at least 1");
    }
    let timeout = raw.timeout.map_or(Duration::from_secs(30), |d| d.0);
    if timeout.is_zero() {
        c.push("load.timeout", "must be longer than 0");
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(1024);
    if max_in_flight == 0 {
        c.push("load.max_in_flight", "must be at least 1");
    }
    LoadPlan {
        mode: raw.mode,
        rate,
        connections,
        duration,
        requests: raw.requests,
        timeout,
        accept_gzip: raw.accept_gzip.unwrap_or(true),
        max_in_flight,
    }
}

fn validate_latency(c: &mut Checker, key: &str, raw: Option<&RawLatency>) -> Latency {
    let Some(raw) = raw else {
        return Latency::Fixed(Duration::ZERO);
    };
    let given = [
        raw.fixed.is_some(),
        raw.uniform.is_some(),
        raw.lognormal.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        c.push(key, "give exactly one of fixed, uniform or lognormal");
    }
    if let Some(d) = raw.fixed {
        return Latency::Fixed(d.0);
    }
    if let Some(u) = &raw.uniform {
        if u.min.0 > u.max.0 {
            c.push(format!("{key}.uniform"), "min must not exceed max");
        }
        return Latency::Uniform {
            min: u.min.0,
            max: u.max.0.max(u.min.0),
        };
    }
    let Some(l) = &raw.lognormal else {
        return Latency::Fixed(Duration::ZERO);
    };
    if l.p50.0.is_zero() || l.p99.0 <= l.p50.0 {
        c.push(
            format!("{key}.lognormal"),
            "p50 must be above 0 and p99 above p50",
        );
        return Latency::Fixed(l.p50.0);
    }
    let cap = l.max.map_or(l.p99.0 * 4, |m| m.0);
    if cap < l.p99.0 {
        c.push(format!("{key}.lognormal.max"), "must not be below p99");
    }
    Latency::lognormal(l.p50.0, l.p99.0, cap)
}

fn validate_answer(c: &mut Checker, key: &str, raw: RawAnswer, graphql: bool) -> Answer {
    let mut kinds = raw.kinds();
    if kinds.len() != 1 {
        c.push(
            key,
            "give exactly one of success, field_error, request_error, status, not_json, slow_body, reset, truncated, hang",
        );
    }
    if kinds.is_empty() {
        kinds.push((1.0, AnswerKind::Success));
    }
    let (weight, kind) = kinds.swap_remove(0);
    let name = kind.label();
    let name = name.split(':').next().unwrap_or("").to_string();
    match &kind {
        AnswerKind::Status { status, .. } if !(400..=599).contains(status) => c.push(
            format!("{key}.status.status"),
            format!("{status} must be a 4xx or 5xx status"),
        ),
        AnswerKind::SlowBody { chunks, .. } if !(1..=10_000).contains(chunks) => c.push(
            format!("{key}.slow_body.chunks"),
            "must be between 1 and 10000",
        ),
        AnswerKind::FieldError { .. } | AnswerKind::RequestError { .. } | AnswerKind::NotJson
            if !graphql =>
        {
            c.push(
                key,
                format!("{name} only makes sense for a GraphQL operation"),
            )
        }
        _ => {}
    }
    if !weight.is_finite() || weight <= 0.0 {
        c.push(
            format!("{key}.{name}.weight"),
            format!("{weight} must be a number above 0"),
        );
    }
    Answer { weight, kind }
}

fn validate_behavior(
    c: &mut Checker,
    key: &str,
    latency: Option<&RawLatency>,
    gzip: GzipMode,
    body_kb: u32,
    answers: Vec<RawAnswer>,
    graphql: bool,
) -> Behavior {
    let latency = validate_latency(c, &format!("{key}.latency"), latency);
    let mut answers: Vec<Answer> = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| validate_answer(c, &format!("{key}.answers[{i}]"), a, graphql))
        .collect();
    if answers.is_empty() {
        answers.push(Answer {
            weight: 1.0,
            kind: AnswerKind::Success,
        });
    }
    if body_kb > 64 * 1024 {
        c.push(format!("{key}.body_kb"), "must be at most 65536 (64 MiB)");
    }
    Behavior {
        latency,
        gzip,
        body_kb,
        answers,
    }
}

fn default_document(name: &str, op_type: OperationType) -> String {
    let mut field: String = name.chars().take(1).flat_map(char::to_lowercase).collect();
    field.extend(name.chars().skip(1));
    format!("{} {name} {{ {field} {{ id }} }}", op_type.as_str())
}

fn validate_operation(c: &mut Checker, key: &str, raw: RawOperation) -> OperationSpec {
    if !is_graphql_name(&raw.name) || raw.name.len() > 100 {
        c.push(
            format!("{key}.name"),
            format!(
                "{:?} is not a GraphQL name ([_A-Za-z][_0-9A-Za-z]*, at most 100 characters)",
                raw.name
            ),
        );
    }
    let op_type = match raw.op_type {
        RawOpType::Query => OperationType::Query,
        RawOpType::Mutation => OperationType::Mutation,
        RawOpType::Subscription => OperationType::Subscription,
    };
    if raw.send == SendMode::Get && op_type != OperationType::Query {
        c.push(format!("{key}.send"), "only queries can be sent with GET");
    }
    if raw.send == SendMode::Malformed && !raw.answers.is_empty() {
        c.push(
            format!("{key}.answers"),
            "a malformed request never reaches an operation: the mock answers 400; remove answers",
        );
    }
    if raw.random_names == Some(0) {
        c.push(format!("{key}.random_names"), "must be at least 1");
    }
    if raw.random_names.is_some() && raw.send == SendMode::Persisted {
        c.push(
            format!("{key}.random_names"),
            "cannot be combined with send: persisted",
        );
    }
    if raw.pad_kb > 64 * 1024 {
        c.push(format!("{key}.pad_kb"), "must be at most 65536 (64 MiB)");
    }
    if raw.nest_depth > 1_000_000 {
        c.push(format!("{key}.nest_depth"), "must be at most 1000000");
    }
    let weight = c.weight(&format!("{key}.weight"), raw.weight);
    let behavior = validate_behavior(
        c,
        key,
        raw.latency.as_ref(),
        raw.gzip,
        raw.body_kb,
        raw.answers,
        true,
    );
    OperationSpec {
        document: raw
            .document
            .unwrap_or_else(|| default_document(&raw.name, op_type)),
        name: raw.name,
        op_type,
        weight,
        send: raw.send,
        variables: raw.variables,
        random_names: raw.random_names,
        pad_kb: raw.pad_kb,
        nest_depth: raw.nest_depth,
        behavior,
    }
}

fn check_unique_names(c: &mut Checker, operations: &[OperationSpec]) {
    let mut seen = HashSet::new();
    for (i, op) in operations.iter().enumerate() {
        if !seen.insert(op.name.as_str()) {
            c.push(
                format!("operations[{i}].name"),
                format!("{:?} is already used by an earlier operation", op.name),
            );
        }
    }
}

fn validate_batch(
    c: &mut Checker,
    key: &str,
    raw: RawBatch,
    operations: &[OperationSpec],
) -> BatchSpec {
    if raw.operations.is_empty() {
        c.push(format!("{key}.operations"), "needs at least one operation");
    }
    let mut indexes = Vec::new();
    for (i, name) in raw.operations.iter().enumerate() {
        let k = format!("{key}.operations[{i}]");
        match operations.iter().position(|o| &o.name == name) {
            Some(j) if operations[j].random_names.is_some() => c.push(
                k,
                format!("{name:?} has random names; batches need fixed ones"),
            ),
            Some(j) if operations[j].send == SendMode::Malformed => {
                c.push(k, format!("{name:?} is malformed; it cannot be batched"))
            }
            Some(j) => indexes.push(j),
            None => c.push(k, format!("{name:?} is not one of the operations")),
        }
    }
    BatchSpec {
        operations: indexes,
        weight: c.weight(&format!("{key}.weight"), raw.weight),
    }
}

fn validate_rest(c: &mut Checker, key: &str, raw: RawRest) -> RestSpec {
    let method = raw
        .method
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        c.push(
            format!("{key}.method"),
            format!("{method:?} is not an HTTP method"),
        );
    }
    if !raw.path.starts_with('/') || raw.path.contains('?') {
        c.push(
            format!("{key}.path"),
            format!(
                "{:?} must start with '/' and have no query string",
                raw.path
            ),
        );
    }
    let ids = raw.ids.unwrap_or([1, 1000]);
    if ids[0] > ids[1] {
        c.push(
            format!("{key}.ids"),
            "the first id must not exceed the second",
        );
    }
    let template: Vec<String> = raw
        .path
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                ":id".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    let name = raw
        .name
        .unwrap_or_else(|| format!("{method} {}", template.join("/")));
    let weight = c.weight(&format!("{key}.weight"), raw.weight);
    let behavior = validate_behavior(
        c,
        key,
        raw.latency.as_ref(),
        raw.gzip,
        raw.body_kb,
        raw.answers,
        false,
    );
    RestSpec {
        name,
        method,
        path: raw.path,
        ids: (ids[0], ids[1].max(ids[0])),
        weight,
        body: raw.body,
        behavior,
    }
}

/// The load plan after command-line replacements.
fn check_load(c: &mut Checker, l: &LoadPlan) {
    if l.mode == LoadMode::Open && !(l.rate.is_finite() && l.rate > 0.0 && l.rate <= 1_000_000.0) {
        c.push(
            "load.rate",
            format!("{} must be a rate in requests per second above 0", l.rate),
        );
    }
    if l.duration.is_none() && l.requests.is_none() {
        c.push("load", "needs a duration or a number of requests");
    }
    if l.duration.is_some_and(|d| d.is_zero()) {
        c.push("load.duration", "must be longer than 0");
    }
    if l.requests == Some(0) {
        c.push("load.requests", "must be at least 1");
    }
}

/// The three views only agree when the proxy gives up before the client and every answer
/// finishes before the proxy gives up.
fn check_timeouts(c: &mut Checker, s: &Scenario) {
    let read = s.proxy_read_timeout;
    let client = s.load.timeout;
    if s.default_latency.max() >= read.min(client) {
        c.push(
            "default_latency",
            "must stay below proxy.read_timeout and load.timeout",
        );
    }
    let behaviors = s
        .operations
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("operations[{i}]"), &o.behavior))
        .chain(
            s.rest
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("rest[{i}]"), &r.behavior)),
        );
    for (key, b) in behaviors {
        let longest = b.latency.max();
        if longest >= read {
            c.push(
                format!("{key}.latency"),
                format!(
                    "can reach {longest:?}, not below proxy.read_timeout ({read:?}): the proxy would answer 504; set a lower max"
                ),
            );
        }
        for (i, a) in b.answers.iter().enumerate() {
            let k = format!("{key}.answers[{i}]");
            match &a.kind {
                AnswerKind::SlowBody { interval, .. } if *interval >= read => c.push(
                    format!("{k}.slow_body.interval"),
                    format!("{interval:?} is not below proxy.read_timeout ({read:?}): the proxy would cut the body"),
                ),
                AnswerKind::Hang { duration } if *duration <= read => c.push(
                    format!("{k}.hang.duration"),
                    format!("{duration:?} must exceed proxy.read_timeout ({read:?}), or it is just a slow answer"),
                ),
                AnswerKind::Hang { .. } if client <= read + Duration::from_secs(1) => c.push(
                    "load.timeout",
                    format!(
                        "{client:?} must exceed proxy.read_timeout ({read:?}) by more than 1s: a hang must end as the proxy's 504 (system_error), not as a client cancel"
                    ),
                ),
                _ => {}
            }
        }
        let slowest = b
            .answers
            .iter()
            .map(|a| match &a.kind {
                AnswerKind::SlowBody { chunks, interval } => *interval * *chunks,
                _ => Duration::ZERO,
            })
            .max()
            .unwrap_or_default();
        if longest + slowest >= client {
            c.push(
                format!("{key}.latency"),
                format!(
                    "answers can take {:?}, not below load.timeout ({client:?}): the client would cancel",
                    longest + slowest
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Scenario::parse("s.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = err("operations:\n  - name: A\n    answers:\n      - success: { weigth: 2 }\n");
        assert!(
            e.starts_with("s.yaml: operations[0].answers[0].success.weigth: unknown field `weigth`, expected `weight`"),
            "{e}"
        );
        let e = err("operations:\n  - name: A\n    answers:\n      - sucess: {}\n");
        assert!(
            e.starts_with("s.yaml: operations[0].answers[0].sucess: unknown field `sucess`, expected one of `success`"),
            "{e}"
        );
        let e = err("load:\n  rate: 10\n  pace: 3\n");
        assert!(
            e.starts_with("s.yaml: load.pace: unknown field `pace`"),
            "{e}"
        );
        let e = err("operations:\n  - name: A\n    latency: { fixed: soon }\n");
        assert!(e.contains("operations[0].latency.fixed"), "{e}");
        assert!(e.contains("\"soon\" is not a duration"), "{e}");
    }

    #[test]
    fn validation_names_key_and_problem() {
        let e = err(
            "proxy:\n  read_timeout: 1s\nload:\n  timeout: 1500ms\noperations:\n  - name: 2bad\n  - name: A\n    answers:\n      - hang: { duration: 500ms }\n      - status: { status: 200 }\nrest:\n  - path: /x\n    answers:\n      - field_error: {}\n",
        );
        assert!(
            e.contains("s.yaml: operations[0].name: \"2bad\" is not a GraphQL name"),
            "{e}"
        );
        assert!(
            e.contains("operations[1].answers[1].status.status: 200 must be a 4xx or 5xx status"),
            "{e}"
        );
        assert!(
            e.contains("rest[0].answers[0]: field_error only makes sense for a GraphQL operation"),
            "{e}"
        );
        assert!(
            e.contains(
                "operations[1].answers[0].hang.duration: 500ms must exceed proxy.read_timeout (1s)"
            ),
            "{e}"
        );
        let e = err("proxy:\n  read_timeout: 1s\nload:\n  timeout: 1500ms\noperations:\n  - name: A\n    answers:\n      - hang: {}\n");
        assert!(
            e.contains("load.timeout: 1.5s must exceed proxy.read_timeout (1s)"),
            "{e}"
        );
    }

    #[test]
    fn outcomes_follow_the_policy() {
        let p = ClassificationPolicy::default();
        let field = |c: Option<&str>| AnswerKind::FieldError {
            code: c.map(String::from),
        };
        assert_eq!(
            field(Some("NOT_FOUND")).outcome(&p, true),
            Outcome::ClientError
        );
        assert_eq!(
            field(Some("INTERNAL_SERVER_ERROR")).outcome(&p, true),
            Outcome::SystemError
        );
        assert_eq!(field(None).outcome(&p, true), Outcome::SystemError);
        let request = AnswerKind::RequestError { code: None };
        assert_eq!(request.outcome(&p, true), Outcome::ClientError);
        assert_eq!(AnswerKind::NotJson.outcome(&p, true), Outcome::SystemError);
        assert_eq!(AnswerKind::Reset.outcome(&p, false), Outcome::SystemError);
        let status = AnswerKind::Status {
            status: 429,
            body: StatusBody::Json,
        };
        assert_eq!(status.outcome(&p, false), Outcome::ClientError);
    }

    #[test]
    fn routes_and_random_names_match() {
        let s = Scenario::parse(
            "s.yaml",
            "operations:\n  - name: Rnd\n    random_names: 10\nrest:\n  - path: /api/v1/courses/{id}\n",
        )
        .unwrap();
        assert_eq!(s.rest[0].name, "GET /api/v1/courses/:id");
        assert!(s.route("GET", "/api/v1/courses/12").is_some());
        assert!(s.route("GET", "/api/v1/courses").is_none());
        assert!(s.route("POST", "/api/v1/courses/12").is_none());
        assert!(s.operation("Rnd_12").is_some());
        assert!(s.operation("Rnd_").is_none());
        assert!(s.operation("Rnd").is_none());
    }

    #[test]
    fn shipped_scenarios_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proxy-config/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 4);
    }
}
