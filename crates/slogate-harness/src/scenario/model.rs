//! The validated scenario: what the mock and the load tester read.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use slogate_core::response::ClassificationPolicy;
use slogate_core::{OperationType, Outcome};

use crate::latency::Latency;

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
    /// Open loop over exactly this many connections, each sending its share of the rate
    /// (wrk2's model: a fixed client population); `None` opens a connection per request in
    /// flight. Set by `connections` in an open-loop scenario.
    pub open_connections: Option<usize>,
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
    /// The operation a name read from a request belongs to.
    pub fn operation(&self, name: &str) -> Option<&OperationSpec> {
        self.operations.iter().find(|o| o.matches(name))
    }

    /// The route a request matches.
    pub fn route(&self, method: &str, path: &str) -> Option<&RestSpec> {
        self.rest.iter().find(|r| r.matches(method, path))
    }
}
