//! Reading and validating spec files (slogate's own format; OpenSLO documents
//! are handed to the private `openslo` module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_yaml_ng::Value;
use slogate_core::request::is_graphql_name;
use slogate_core::route::{RouteTemplate, KNOWN_METHODS};
use slogate_core::{sentinel, OperationType};
use slogate_diagnostics::{path_issue, Checker, Scope};

use crate::decimal::Decimal;
use crate::duration::{parse_threshold, PromDuration};
use crate::error::SpecError;
use crate::model::{
    Indicator, JobHistogram, Operation, Period, Selection, Slo, Source, Spec, SpecFormat,
};
use crate::openslo;

/// The histogram buckets the proxy uses unless its config says otherwise.
pub use slogate_core::DEFAULT_BUCKETS;

/// The histogram buckets `slogate jobs` uses unless its config says otherwise: the request
/// buckets, then minutes to an hour (jobs take longer than requests).
pub use slogate_core::DEFAULT_JOB_BUCKETS;

/// How long an SLO's metrics may be missing before `SLOMetricsAbsent` fires.
pub const DEFAULT_ABSENT_FOR: PromDuration = PromDuration::from_secs(600);

/// Label names slogate sets itself; a spec may not override them.
const RESERVED_LABELS: [&str; 10] = [
    "sloth_id",
    "sloth_service",
    "sloth_slo",
    "sloth_window",
    "sloth_severity",
    "sloth_spec",
    "sloth_mode",
    "severity",
    "tier",
    "category",
];

/// Reads and validates a spec file.
///
/// `buckets` are the latency histogram's bucket boundaries in seconds (see
/// [`DEFAULT_BUCKETS`]); every latency threshold must be one of them.
pub fn load_spec(path: impl AsRef<Path>, buckets: &[f64]) -> Result<Spec, SpecError> {
    load_spec_with_job_buckets(path, buckets, &DEFAULT_JOB_BUCKETS)
}

/// Like [`load_spec`], with the job histogram's buckets (`slogate jobs`' `buckets`), against
/// which job latency thresholds are checked.
pub fn load_spec_with_job_buckets(
    path: impl AsRef<Path>,
    buckets: &[f64],
    job_buckets: &[f64],
) -> Result<Spec, SpecError> {
    let (source, text) = slogate_diagnostics::read_file(path.as_ref())?;
    parse_spec_with_job_buckets(&source, &text, buckets, job_buckets)
}

/// Validates spec text; `source` names the file in messages.
pub fn parse_spec(source: &str, text: &str, buckets: &[f64]) -> Result<Spec, SpecError> {
    parse_spec_with_job_buckets(source, text, buckets, &DEFAULT_JOB_BUCKETS)
}

/// Like [`parse_spec`], with the job histogram's buckets.
pub fn parse_spec_with_job_buckets(
    source: &str,
    text: &str,
    buckets: &[f64],
    job_buckets: &[f64],
) -> Result<Spec, SpecError> {
    let buckets = Buckets {
        requests: bucket_decimals(source, buckets)?,
        jobs: bucket_decimals(source, job_buckets)?,
    };
    let docs = slogate_diagnostics::yaml_documents(source, text)?;
    let mut issues = Checker::default();
    let slos = if docs.iter().any(openslo::is_openslo) {
        openslo::parse(&docs, &mut issues)
    } else {
        match docs.as_slice() {
            [doc] => parse_native(doc, &buckets, &mut issues),
            [] => {
                issues.push("", "the file is empty; expected a `slos:` list");
                Vec::new()
            }
            _ => {
                issues.push(
                    "",
                    "several YAML documents, none of them OpenSLO (apiVersion: openslo/v1); \
                     a slogate spec is one document with a `slos:` list",
                );
                Vec::new()
            }
        }
    };
    if issues.is_empty() {
        check_unique_ids(&slos, &mut issues);
    }
    issues.finish(source)?;
    Ok(Spec {
        source: source.to_string(),
        slos,
    })
}

/// Bucket boundaries of the request and job histograms.
struct Buckets {
    requests: Vec<Decimal>,
    jobs: Vec<Decimal>,
}

fn bucket_decimals(source: &str, buckets: &[f64]) -> Result<Vec<Decimal>, SpecError> {
    buckets
        .iter()
        .map(|&b| {
            Decimal::from_f64(b)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    SpecError::single(
                        source,
                        "",
                        format!("bucket boundary {b} is not a positive number"),
                    )
                })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    service: Option<String>,
    slos: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: Option<String>,
    description: Option<String>,
    owner: Option<String>,
    cuj: Option<String>,
    service: Option<String>,
    period: Option<String>,
    runbook: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    operations: Option<Vec<RawOperation>>,
    availability: Option<RawAvailability>,
    latency: Option<RawLatency>,
    alerting: Option<RawAlerting>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    graphql: Option<String>,
    #[serde(rename = "type")]
    operation_type: Option<String>,
    http: Option<String>,
    job: Option<String>,
    queue: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAvailability {
    target: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    threshold: Option<Value>,
    target: Option<Value>,
    histogram: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    absent_for: Option<String>,
}

fn parse_native(doc: &Value, buckets: &Buckets, issues: &mut Checker) -> Vec<Slo> {
    let file: RawFile = match serde_path_to_error::deserialize(doc.clone()) {
        Ok(file) => file,
        Err(err) => {
            let issue = path_issue(&err);
            issues.push(issue.key, issue.message);
            return Vec::new();
        }
    };
    let default_service = file.service.as_deref();
    if let Some(service) = default_service {
        if let Err(message) = check_service(service) {
            issues.push("service", message);
        }
    }
    let Some(raw_slos) = file.slos else {
        issues.push("slos", "missing: list the SLOs under `slos:`");
        return Vec::new();
    };
    if raw_slos.is_empty() {
        issues.push("slos", "empty: declare at least one SLO");
    }
    let mut slos = Vec::new();
    for (index, value) in raw_slos.iter().enumerate() {
        let position = format!("slos[{index}]");
        let context = match value.get("name").and_then(Value::as_str) {
            Some(name) => format!("{position} {name:?}"),
            None => position.clone(),
        };
        let mut slo_issues = issues.scope(context);
        match serde_path_to_error::deserialize::<_, RawSlo>(value.clone()) {
            Ok(raw) => slos.extend(validate_slo(
                raw,
                &position,
                default_service,
                buckets,
                &mut slo_issues,
            )),
            Err(err) => {
                let issue = path_issue(&err);
                slo_issues.push(issue.key, issue.message);
            }
        }
    }
    slos
}

/// The fields every objective of an SLO shares.
struct Common {
    name: String,
    description: String,
    owner: Option<String>,
    cuj: Option<String>,
    service: String,
    period: Period,
    runbook: Option<String>,
    labels: BTreeMap<String, String>,
    absent_for: PromDuration,
}

/// An objective before it becomes an [`Slo`]: kind, target, and for
/// latency the threshold and job histogram.
type RawObjective = (&'static str, Decimal, Option<(Decimal, JobHistogram)>);

/// Validates one SLO; returns its objectives, or nothing when it has issues.
fn validate_slo(
    raw: RawSlo,
    position: &str,
    default_service: Option<&str>,
    buckets: &Buckets,
    issues: &mut Scope<'_>,
) -> Vec<Slo> {
    let before = issues.count();
    let common = validate_common(&raw, default_service, issues);
    let operations = validate_operations(raw.operations, issues);
    let source = operations.as_ref().map(|(source, _)| *source);
    let objectives = validate_objectives(raw.availability, raw.latency, source, buckets, issues);
    match (common, operations) {
        (Some(common), Some((source, operations))) if issues.count() == before => objectives
            .into_iter()
            .map(|objective| build_slo(&common, position, source, &operations, objective))
            .collect(),
        _ => Vec::new(),
    }
}

fn validate_common(
    raw: &RawSlo,
    default_service: Option<&str>,
    issues: &mut Scope<'_>,
) -> Option<Common> {
    let name = required(
        issues,
        "name",
        &raw.name,
        "give the SLO a name, e.g. checkout",
    );
    if let Some(Err(message)) = name.as_deref().map(check_slug) {
        issues.push("name", message);
    }
    let description = required(
        issues,
        "description",
        &raw.description,
        "say what the SLO promises",
    );
    let owner = required(
        issues,
        "owner",
        &raw.owner,
        "name the team that owns the SLO",
    );
    let cuj = required(
        issues,
        "cuj",
        &raw.cuj,
        "name the critical user journey the SLO protects",
    );
    let service = raw
        .service
        .as_deref()
        .or(default_service)
        .map(str::to_string);
    match (&raw.service, &service) {
        (Some(own), _) => {
            if let Err(message) = check_service(own) {
                issues.push("service", message);
            }
        }
        (None, None) => issues.push(
            "service",
            "missing: set `service:` on the SLO or at the top of the file",
        ),
        (None, Some(_)) => {}
    }
    let period = required(
        issues,
        "period",
        &raw.period,
        "use 28d, 30d or calendar_month",
    )
    .and_then(|p| parse_period(&p).map_err(|m| issues.push("period", m)).ok());
    if let Some(runbook) = &raw.runbook {
        if !(runbook.starts_with("https://") || runbook.starts_with("http://")) {
            issues.push("runbook", format!("{runbook:?} is not an http(s) link"));
        }
    }
    check_labels(&raw.labels, issues);
    let absent_for = parse_absent_for(raw.alerting.as_ref(), issues);
    Some(Common {
        name: name?,
        description: description?,
        owner,
        cuj,
        service: service?,
        period: period?,
        runbook: raw.runbook.clone(),
        labels: raw.labels.clone(),
        absent_for: absent_for?,
    })
}

fn parse_absent_for(
    alerting: Option<&RawAlerting>,
    issues: &mut Scope<'_>,
) -> Option<PromDuration> {
    let Some(text) = alerting.and_then(|a| a.absent_for.as_deref()) else {
        return Some(DEFAULT_ABSENT_FOR);
    };
    let parsed = PromDuration::parse(text);
    if parsed.is_none() {
        issues.push(
            "alerting.absent_for",
            format!("{text:?} is not a duration such as 10m or 1h"),
        );
    }
    parsed
}

fn validate_objectives(
    availability: Option<RawAvailability>,
    latency: Option<RawLatency>,
    source: Option<Source>,
    buckets: &Buckets,
    issues: &mut Scope<'_>,
) -> Vec<RawObjective> {
    let mut objectives = Vec::new();
    if availability.is_none() && latency.is_none() {
        issues.push(
            "",
            "declare an `availability:` objective, a `latency:` objective, or both",
        );
    }
    if let Some(availability) = availability {
        if let Some(target) = parse_target(issues, "availability.target", availability.target) {
            objectives.push(("availability", target, None));
        }
    }
    if let Some(latency) = latency {
        let target = parse_target(issues, "latency.target", latency.target);
        let (list, flag) = match source {
            Some(Source::Jobs(_)) => (&buckets.jobs, "--job-buckets to match the jobs config"),
            _ => (&buckets.requests, "--buckets to match the proxy config"),
        };
        let threshold = parse_latency_threshold(issues, latency.threshold, list, flag);
        let histogram = parse_histogram(issues, latency.histogram.as_deref(), source);
        if let (Some(target), Some(threshold), Some(histogram)) = (target, threshold, histogram) {
            objectives.push(("latency", target, Some((threshold, histogram))));
        }
    }
    objectives
}

fn build_slo(
    common: &Common,
    position: &str,
    source: Source,
    operations: &[Operation],
    objective: RawObjective,
) -> Slo {
    let (kind, target, latency) = objective;
    let indicator = match latency {
        None => Indicator::Availability(Selection {
            source,
            operations: operations.to_vec(),
        }),
        Some((threshold, histogram)) => Indicator::Latency {
            selection: Selection {
                source: match source {
                    Source::Jobs(_) => Source::Jobs(histogram),
                    Source::Requests => Source::Requests,
                },
                operations: operations.to_vec(),
            },
            threshold,
        },
    };
    Slo {
        name: format!("{}-{kind}", common.name),
        spec_name: common.name.clone(),
        position: position.to_string(),
        service: common.service.clone(),
        description: common.description.clone(),
        owner: common.owner.clone(),
        cuj: common.cuj.clone(),
        runbook: common.runbook.clone(),
        period: common.period,
        target,
        indicator,
        labels: common.labels.clone(),
        absent_for: common.absent_for,
        format: SpecFormat::Slogate,
    }
}

fn required(
    issues: &mut Scope<'_>,
    field: &str,
    value: &Option<String>,
    hint: &str,
) -> Option<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(v.clone()),
        Some(_) => {
            issues.push(field, format!("is empty: {hint}"));
            None
        }
        None => {
            issues.push(field, format!("missing: {hint}"));
            None
        }
    }
}

/// `[a-z0-9]` and inner `-`, at most 63 characters.
pub(crate) fn check_slug(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid SLO name: use lowercase letters, digits and inner dashes (at most 63), e.g. checkout"
        ))
    }
}

/// A service name must be usable as a label value and inside `sloth_id`.
pub(crate) fn check_service(service: &str) -> Result<(), String> {
    let ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && service.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{service:?} is not a valid service name: use letters, digits, '-', '_' and '.' (the proxy's `service` label)"
        ))
    }
}

/// Parses `28d`, `30d`, `calendar_month`, or a custom test period.
pub(crate) fn parse_period(text: &str) -> Result<Period, String> {
    if text == "calendar_month" {
        return Ok(Period::CalendarMonth);
    }
    match PromDuration::parse(text) {
        Some(d) if d.as_secs() >= 60 && d.as_secs() <= 90 * 86_400 => Ok(Period::Rolling(d)),
        _ => Err(format!(
            "{text:?} is not a period: use 28d, 30d or calendar_month (a short duration such as 1h is accepted for tests)"
        )),
    }
}

fn check_labels(labels: &BTreeMap<String, String>, issues: &mut Scope<'_>) {
    for (key, value) in labels {
        let field = format!("labels.{key}");
        let valid_name =
            key.bytes().enumerate().all(|(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            }) && !key.is_empty();
        if !valid_name || key.starts_with("__") {
            issues.push(field, format!("{key:?} is not a Prometheus label name"));
        } else if RESERVED_LABELS.contains(&key.as_str()) || key == "owner" {
            issues.push(
                field,
                format!("{key:?} is set by slogate; pick another label name"),
            );
        } else if value.contains('\n') {
            issues.push(field, "label values must be one line");
        }
    }
}

fn validate_operations(
    raw: Option<Vec<RawOperation>>,
    issues: &mut Scope<'_>,
) -> Option<(Source, Vec<Operation>)> {
    let Some(raw) = raw else {
        issues.push(
            "operations",
            "missing: list the GraphQL operations, HTTP routes or job classes the SLO covers",
        );
        return None;
    };
    if raw.is_empty() {
        issues.push("operations", "empty: list at least one operation");
        return None;
    }
    let before = issues.count();
    let mut ops = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, op) in raw.into_iter().enumerate() {
        let field = format!("operations[{i}]");
        if let Some(op) = validate_operation(op, &field, issues) {
            if !seen.insert(op.clone()) {
                issues.push(field, format!("{op} is listed twice"));
            } else {
                ops.push(op);
            }
        }
    }
    let jobs = ops
        .iter()
        .filter(|o| matches!(o, Operation::Job { .. }))
        .count();
    if jobs > 0 && jobs < ops.len() {
        issues.push(
            "operations",
            "mixes job classes with GraphQL/HTTP operations; they are different metrics, so split them into two SLOs",
        );
    }
    if issues.count() > before {
        return None;
    }
    let source = if jobs > 0 {
        Source::Jobs(JobHistogram::Duration)
    } else {
        Source::Requests
    };
    Some((source, ops))
}

fn validate_operation(op: RawOperation, field: &str, issues: &mut Scope<'_>) -> Option<Operation> {
    let kinds = [op.graphql.is_some(), op.http.is_some(), op.job.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        issues.push(field, "name exactly one of `graphql:`, `http:` or `job:`");
        return None;
    }
    if op.operation_type.is_some() && op.graphql.is_none() {
        issues.push(
            format!("{field}.type"),
            "`type` only applies to `graphql:` operations",
        );
        return None;
    }
    if op.queue.is_some() && op.job.is_none() {
        issues.push(
            format!("{field}.queue"),
            "`queue` only applies to `job:` entries",
        );
        return None;
    }
    if let Some(name) = op.graphql {
        return validate_graphql(name, op.operation_type, field, issues);
    }
    if let Some(route) = op.http {
        return match check_route(&route) {
            Ok(()) => Some(Operation::Http { route }),
            Err(message) => {
                issues.push(format!("{field}.http"), message);
                None
            }
        };
    }
    let class = op.job?;
    let class_ok = class.split("::").all(|part| {
        part.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !class_ok {
        issues.push(
            format!("{field}.job"),
            format!("{class:?} is not a job class name such as ChargeCardJob or Billing::SyncJob"),
        );
        return None;
    }
    if let Some(queue) = &op.queue {
        if queue.is_empty() || queue.chars().any(|c| c.is_whitespace() || c == '"') {
            issues.push(
                format!("{field}.queue"),
                format!("{queue:?} is not a queue name"),
            );
            return None;
        }
    }
    Some(Operation::Job {
        class,
        queue: op.queue,
    })
}

fn validate_graphql(
    name: String,
    operation_type: Option<String>,
    field: &str,
    issues: &mut Scope<'_>,
) -> Option<Operation> {
    if !sentinel::OPERATIONS.contains(&name.as_str()) && !is_graphql_name(&name) {
        issues.push(
            format!("{field}.graphql"),
            format!(
                "{name:?} is not a GraphQL operation name (letters, digits, '_') nor one of {}",
                sentinel::OPERATIONS.join(", ")
            ),
        );
        return None;
    }
    if let Some(t) = &operation_type {
        if !OperationType::GRAPHQL.iter().any(|g| g.as_str() == t) {
            let types: Vec<&str> = OperationType::GRAPHQL.map(OperationType::as_str).to_vec();
            issues.push(
                format!("{field}.type"),
                format!("{t:?} is not one of {}", types.join(", ")),
            );
            return None;
        }
    }
    Some(Operation::GraphQl {
        name,
        operation_type,
    })
}

/// An `http:` operation is a label as slogate's route namer writes it: a method it keeps
/// and a route template.
fn check_route(route: &str) -> Result<(), String> {
    let hint = "an HTTP operation is `METHOD /route/template`, e.g. `GET /api/v1/courses/:id`";
    let Some((method, path)) = route.split_once(' ') else {
        return Err(format!("{route:?}: {hint}"));
    };
    if !KNOWN_METHODS.contains(&method) {
        return Err(format!("{route:?}: unknown method {method:?}; {hint}"));
    }
    if !path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '?')
    {
        return Err(format!(
            "{route:?}: the path must start with '/' and hold no spaces or query string; {hint}"
        ));
    }
    RouteTemplate::parse(route)
        .map(drop)
        .map_err(|e| format!("{route:?}: {e}; {hint}"))
}

/// Parses a target percentage: a number or text (`99.9`, `"99.9%"`),
/// strictly between 0 and 100.
pub(crate) fn parse_target(
    issues: &mut Scope<'_>,
    field: &str,
    value: Option<Value>,
) -> Option<Decimal> {
    let hint = "a percentage strictly between 0 and 100, e.g. 99.9";
    let Some(value) = value else {
        issues.push(field, format!("missing: {hint}"));
        return None;
    };
    let parsed = match &value {
        Value::Number(n) => n.as_f64().and_then(Decimal::from_f64),
        Value::String(s) => Decimal::parse(s.trim().trim_end_matches('%').trim()),
        _ => None,
    };
    match parsed {
        Some(t) if !t.is_zero() && t < Decimal::new(100, 0) && t.scale() <= 8 => Some(t),
        _ => {
            issues.push(field, format!("{} is not {hint}", show_value(&value)));
            None
        }
    }
}

fn parse_latency_threshold(
    issues: &mut Scope<'_>,
    value: Option<Value>,
    buckets: &[Decimal],
    flag: &str,
) -> Option<Decimal> {
    let field = "latency.threshold";
    let Some(value) = value else {
        issues.push(
            field,
            "missing: a duration that is a histogram bucket boundary, e.g. 300ms",
        );
        return None;
    };
    let parsed = match &value {
        Value::Number(n) => n.as_f64().and_then(Decimal::from_f64),
        Value::String(s) => parse_threshold(s),
        _ => None,
    };
    let Some(threshold) = parsed.filter(|t| !t.is_zero()) else {
        issues.push(
            field,
            format!(
                "{} is not a duration such as 300ms or 0.3s",
                show_value(&value)
            ),
        );
        return None;
    };
    if !buckets.contains(&threshold) {
        let list: Vec<String> = buckets.iter().map(ToString::to_string).collect();
        issues.push(
            field,
            format!(
                "{threshold}s is not a histogram bucket boundary; buckets are {} (seconds; pass {flag})",
                list.join(", ")
            ),
        );
        return None;
    }
    Some(threshold)
}

fn parse_histogram(
    issues: &mut Scope<'_>,
    value: Option<&str>,
    source: Option<Source>,
) -> Option<JobHistogram> {
    match (value, source) {
        (None, _) | (Some("duration"), Some(Source::Jobs(_))) => Some(JobHistogram::Duration),
        (Some("execution"), Some(Source::Jobs(_))) => Some(JobHistogram::Execution),
        (Some(_), None) => None,
        (Some(h), Some(Source::Jobs(_))) => {
            issues.push(
                "latency.histogram",
                format!("{h:?} is not `duration` (enqueue to completion) or `execution`"),
            );
            None
        }
        (Some(_), Some(Source::Requests)) => {
            issues.push(
                "latency.histogram",
                "only job SLOs choose a histogram (`duration` or `execution`)",
            );
            None
        }
    }
}

fn show_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "the value".to_string()),
    }
}

fn check_unique_ids(slos: &[Slo], issues: &mut Checker) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for slo in slos {
        if let Some(first) = seen.insert(slo.id(), &slo.position) {
            if first != slo.position && reported.insert(slo.position.clone()) {
                let context = format!("{} {:?}", slo.position, slo.spec_name);
                issues.scope(context).push(
                    "name",
                    format!(
                        "{:?} is already used by {first} for service {:?}",
                        slo.spec_name, slo.service
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_operations_are_route_labels_as_the_proxy_writes_them() {
        assert_eq!(check_route("GET /api/v1/courses/:id"), Ok(()));
        assert_eq!(check_route("TRACE /files/*path"), Ok(()));
        let e = check_route("FETCH /x").unwrap_err();
        assert!(e.contains("unknown method \"FETCH\""), "{e}");
        let e = check_route("GET /x?a=1").unwrap_err();
        assert!(e.contains("no spaces or query string"), "{e}");
        let e = check_route("GET /files/*path/more").unwrap_err();
        assert!(e.contains("'*' must be the last segment"), "{e}");
    }
}
