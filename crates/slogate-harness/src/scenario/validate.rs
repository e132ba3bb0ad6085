//! From the raw structs to the model: every value checked, every mistake reported.

use std::collections::HashSet;
use std::time::Duration;

use slogate_core::request::is_graphql_name;
use slogate_core::OperationType;
use slogate_diagnostics::Checker;

use super::model::*;
use super::raw::*;
use super::ScenarioError;
use crate::latency::Latency;

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
pub(super) const DEFAULT_HANG: Duration = Duration::from_secs(600);

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

pub(super) fn validate(file: &str, raw: RawScenario) -> Result<Scenario, ScenarioError> {
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
        open_connections: match raw.mode {
            LoadMode::Open => raw.connections,
            LoadMode::Closed => None,
        },
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
pub(super) fn check_load(c: &mut Checker, l: &LoadPlan) {
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
pub(super) fn check_timeouts(c: &mut Checker, s: &Scenario) {
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
