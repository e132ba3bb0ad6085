//! The scenario file as serde reads it: unknown keys refused, nothing checked yet.

use serde::Deserialize;
use slogate_diagnostics::HumanDuration as Dur;

use super::model::{GzipMode, LoadMode, SendMode, StatusBody};

pub(super) fn one() -> f64 {
    1.0
}

pub(super) fn default_chunks() -> u32 {
    5
}

pub(super) fn default_graphql_path() -> String {
    "/graphql".to_string()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawOpType {
    #[default]
    Query,
    Mutation,
    Subscription,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) seed: u64,
    #[serde(default)]
    pub(super) load: RawLoad,
    #[serde(default)]
    pub(super) proxy: RawProxy,
    #[serde(default = "default_graphql_path")]
    pub(super) graphql_path: String,
    #[serde(default)]
    pub(super) operations: Vec<RawOperation>,
    #[serde(default)]
    pub(super) batches: Vec<RawBatch>,
    #[serde(default)]
    pub(super) rest: Vec<RawRest>,
    #[serde(default)]
    pub(super) default_latency: Option<RawLatency>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLoad {
    pub(super) mode: LoadMode,
    pub(super) rate: Option<f64>,
    pub(super) connections: Option<usize>,
    pub(super) duration: Option<Dur>,
    pub(super) requests: Option<u64>,
    pub(super) timeout: Option<Dur>,
    pub(super) accept_gzip: Option<bool>,
    pub(super) max_in_flight: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawProxy {
    pub(super) read_timeout: Option<Dur>,
}

/// `{fixed: 20ms}`, `{uniform: {min, max}}` or `{lognormal: {p50, p99, max}}`: exactly one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLatency {
    #[serde(default)]
    pub(super) fixed: Option<Dur>,
    #[serde(default)]
    pub(super) uniform: Option<RawUniform>,
    #[serde(default)]
    pub(super) lognormal: Option<RawLognormal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUniform {
    pub(super) min: Dur,
    pub(super) max: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLognormal {
    pub(super) p50: Dur,
    pub(super) p99: Dur,
    #[serde(default)]
    pub(super) max: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeight {
    #[serde(default = "one")]
    pub(super) weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCoded {
    #[serde(default = "one")]
    pub(super) weight: f64,
    #[serde(default)]
    pub(super) code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatus {
    #[serde(default = "one")]
    pub(super) weight: f64,
    pub(super) status: u16,
    #[serde(default)]
    pub(super) body: StatusBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlow {
    #[serde(default = "one")]
    pub(super) weight: f64,
    #[serde(default = "default_chunks")]
    pub(super) chunks: u32,
    pub(super) interval: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHang {
    #[serde(default = "one")]
    pub(super) weight: f64,
    #[serde(default)]
    pub(super) duration: Option<Dur>,
}

/// One answer: a map with exactly one of these keys (`- success: {weight: 90}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnswer {
    #[serde(default)]
    pub(super) success: Option<RawWeight>,
    #[serde(default)]
    pub(super) field_error: Option<RawCoded>,
    #[serde(default)]
    pub(super) request_error: Option<RawCoded>,
    #[serde(default)]
    pub(super) status: Option<RawStatus>,
    #[serde(default)]
    pub(super) not_json: Option<RawWeight>,
    #[serde(default)]
    pub(super) slow_body: Option<RawSlow>,
    #[serde(default)]
    pub(super) reset: Option<RawWeight>,
    #[serde(default)]
    pub(super) truncated: Option<RawWeight>,
    #[serde(default)]
    pub(super) hang: Option<RawHang>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperation {
    pub(super) name: String,
    #[serde(default, rename = "type")]
    pub(super) op_type: RawOpType,
    #[serde(default = "one")]
    pub(super) weight: f64,
    #[serde(default)]
    pub(super) send: SendMode,
    #[serde(default)]
    pub(super) document: Option<String>,
    #[serde(default)]
    pub(super) variables: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) random_names: Option<u32>,
    #[serde(default)]
    pub(super) pad_kb: u32,
    #[serde(default)]
    pub(super) nest_depth: u32,
    #[serde(default)]
    pub(super) latency: Option<RawLatency>,
    #[serde(default)]
    pub(super) gzip: GzipMode,
    #[serde(default)]
    pub(super) body_kb: u32,
    #[serde(default)]
    pub(super) answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBatch {
    pub(super) operations: Vec<String>,
    #[serde(default = "one")]
    pub(super) weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRest {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) method: Option<String>,
    pub(super) path: String,
    #[serde(default)]
    pub(super) ids: Option<[u64; 2]>,
    #[serde(default = "one")]
    pub(super) weight: f64,
    #[serde(default)]
    pub(super) body: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) latency: Option<RawLatency>,
    #[serde(default)]
    pub(super) gzip: GzipMode,
    #[serde(default)]
    pub(super) body_kb: u32,
    #[serde(default)]
    pub(super) answers: Vec<RawAnswer>,
}
