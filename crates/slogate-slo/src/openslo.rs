//! OpenSLO v1 input: `SLO` documents with ratio indicators (inline or via an
//! `SLI` document in the same file) whose metric sources are Prometheus
//! queries. Queries use `{{.window}}` for the range, as in Sloth.
//!
//! slogate reads these metadata annotations: `slogate/owner`, `slogate/cuj`
//! and `slogate/runbook`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;
use slogate_diagnostics::{path_issue, Checker, Issue, Scope};

use crate::decimal::Decimal;
use crate::model::{Indicator, Period, RatioEvents, Slo, SpecFormat};
use crate::promql::WINDOW_PLACEHOLDERS;
use crate::spec::{check_service, check_slug, parse_period, parse_target, DEFAULT_ABSENT_FOR};

const API_VERSION: &str = "openslo/v1";

/// Whether a YAML document declares an OpenSLO `apiVersion`.
pub(crate) fn is_openslo(doc: &Value) -> bool {
    doc.get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("openslo/"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Metadata {
    name: String,
    #[allow(dead_code)] // accepted for OpenSLO compatibility; not used
    display_name: Option<String>,
    #[allow(dead_code)] // accepted for OpenSLO compatibility; not used
    labels: Option<Value>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SloSpec {
    description: Option<String>,
    service: String,
    indicator: Option<InlineIndicator>,
    indicator_ref: Option<String>,
    time_window: Vec<TimeWindow>,
    budgeting_method: String,
    objectives: Vec<Objective>,
    #[allow(dead_code)] // accepted for OpenSLO compatibility; not used
    alert_policies: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InlineIndicator {
    #[allow(dead_code)] // accepted for OpenSLO compatibility; not used
    metadata: Metadata,
    spec: SliSpec,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SliSpec {
    #[allow(dead_code)] // accepted for OpenSLO compatibility; not used
    description: Option<String>,
    threshold_metric: Option<Value>,
    ratio_metric: Option<RatioMetric>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RatioMetric {
    counter: Option<bool>,
    good: Option<MetricHolder>,
    bad: Option<MetricHolder>,
    total: Option<MetricHolder>,
    raw_type: Option<String>,
    raw: Option<Value>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetricHolder {
    metric_source: MetricSource,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetricSource {
    metric_source_ref: Option<String>,
    #[serde(rename = "type")]
    source_type: Option<String>,
    spec: QuerySpec,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuerySpec {
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TimeWindow {
    duration: String,
    is_rolling: Option<bool>,
    calendar: Option<Calendar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Calendar {
    #[allow(dead_code)]
    start_time: Option<String>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Objective {
    display_name: Option<String>,
    op: Option<String>,
    value: Option<Value>,
    target: Option<Value>,
    target_percent: Option<Value>,
    time_slice_target: Option<Value>,
    time_slice_window: Option<String>,
    indicator: Option<Value>,
    indicator_ref: Option<String>,
    #[allow(dead_code)] // accepted for OpenSLO compatibility; not used
    composite_weight: Option<Value>,
}

/// Parses every document; SLI documents serve `indicatorRef`s.
pub(crate) fn parse(docs: &[Value], issues: &mut Checker) -> Vec<Slo> {
    let mut parsed = Vec::new();
    for (index, value) in docs.iter().enumerate() {
        let position = format!("documents[{index}]");
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("?");
        let context = match value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) => format!("{position} {kind} {name:?}"),
            None => position.clone(),
        };
        let mut doc_issues = issues.scope(context.clone());
        match serde_path_to_error::deserialize::<_, Document>(value.clone()) {
            Ok(doc) if doc.api_version != API_VERSION => doc_issues.push(
                "apiVersion",
                format!(
                    "{:?} is not supported; slogate reads {API_VERSION}",
                    doc.api_version
                ),
            ),
            Ok(doc) => parsed.push((position, context, doc)),
            Err(err) => {
                let Issue {
                    key: field,
                    message,
                } = path_issue(&err);
                doc_issues.push(field, message);
            }
        }
    }
    let slis = collect_slis(&parsed, issues);
    let mut slos = Vec::new();
    for (position, context, doc) in &parsed {
        let mut doc_issues = issues.scope(context.clone());
        match doc.kind.as_str() {
            "SLO" => slos.extend(convert_slo(position, doc, &slis, &mut doc_issues)),
            "SLI" | "Service" => {}
            other => doc_issues.push(
                "kind",
                format!("{other:?} is not supported; slogate reads SLO and SLI documents (Service documents are ignored)"),
            ),
        }
    }
    if slos.is_empty() && issues.is_empty() {
        issues.push("", "no OpenSLO SLO document found");
    }
    slos
}

fn collect_slis(
    parsed: &[(String, String, Document)],
    issues: &mut Checker,
) -> BTreeMap<String, SliSpec> {
    let mut slis = BTreeMap::new();
    for (_, context, doc) in parsed.iter().filter(|(_, _, d)| d.kind == "SLI") {
        match serde_path_to_error::deserialize::<_, SliSpec>(doc.spec.clone()) {
            Ok(spec) => {
                slis.insert(doc.metadata.name.clone(), spec);
            }
            Err(err) => {
                let Issue {
                    key: field,
                    message,
                } = path_issue(&err);
                issues
                    .scope(context.clone())
                    .push(prefixed("spec", &field), message);
            }
        }
    }
    slis
}

fn prefixed(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

fn convert_slo(
    position: &str,
    doc: &Document,
    slis: &BTreeMap<String, SliSpec>,
    issues: &mut Scope<'_>,
) -> Vec<Slo> {
    let before = issues.count();
    let spec: SloSpec = match serde_path_to_error::deserialize(doc.spec.clone()) {
        Ok(spec) => spec,
        Err(err) => {
            let Issue {
                key: field,
                message,
            } = path_issue(&err);
            issues.push(prefixed("spec", &field), message);
            return Vec::new();
        }
    };
    if let Err(message) = check_slug(&doc.metadata.name) {
        issues.push("metadata.name", message);
    }
    if let Err(message) = check_service(&spec.service) {
        issues.push("spec.service", message);
    }
    if spec.budgeting_method != "Occurrences" {
        issues.push(
            "spec.budgetingMethod",
            format!(
                "{:?} is not supported; slogate counts events (Occurrences)",
                spec.budgeting_method
            ),
        );
    }
    let period = convert_time_window(&spec.time_window, issues);
    let indicator =
        resolve_indicator(&spec, slis, issues).and_then(|sli| convert_ratio(&sli, issues));
    let objectives = convert_objectives(&spec.objectives, issues);
    if issues.count() > before {
        return Vec::new();
    }
    let (Some(period), Some(indicator)) = (period, indicator) else {
        return Vec::new();
    };
    let annotations = &doc.metadata.annotations;
    let many = objectives.len() > 1;
    objectives
        .into_iter()
        .enumerate()
        .map(|(i, (label, target))| Slo {
            name: if many {
                format!(
                    "{}-{}",
                    doc.metadata.name,
                    label.unwrap_or_else(|| i.to_string())
                )
            } else {
                doc.metadata.name.clone()
            },
            spec_name: doc.metadata.name.clone(),
            position: position.to_string(),
            service: spec.service.clone(),
            description: spec.description.clone().unwrap_or_default(),
            owner: annotations.get("slogate/owner").cloned(),
            cuj: annotations.get("slogate/cuj").cloned(),
            runbook: annotations.get("slogate/runbook").cloned(),
            period,
            target,
            indicator: indicator.clone(),
            labels: BTreeMap::new(),
            absent_for: DEFAULT_ABSENT_FOR,
            format: SpecFormat::OpenSlo,
        })
        .collect()
}

fn convert_time_window(windows: &[TimeWindow], issues: &mut Scope<'_>) -> Option<Period> {
    let [window] = windows else {
        issues.push("spec.timeWindow", "give exactly one time window");
        return None;
    };
    let field = "spec.timeWindow[0]";
    match (
        &window.calendar,
        window.is_rolling.unwrap_or(window.calendar.is_none()),
    ) {
        (Some(calendar), false) => {
            if window.duration != "1M" {
                issues.push(
                    format!("{field}.duration"),
                    format!(
                        "{:?}: calendar windows must be 1M (a month)",
                        window.duration
                    ),
                );
                return None;
            }
            if calendar
                .time_zone
                .as_deref()
                .is_some_and(|tz| tz != "UTC" && tz != "Etc/UTC")
            {
                issues.push(
                    format!("{field}.calendar.timeZone"),
                    "only UTC calendar months are supported",
                );
                return None;
            }
            Some(Period::CalendarMonth)
        }
        (None, true) => match parse_period(&window.duration) {
            Ok(Period::Rolling(d)) => Some(Period::Rolling(d)),
            Ok(Period::CalendarMonth) | Err(_) => {
                issues.push(
                    format!("{field}.duration"),
                    format!(
                        "{:?} is not a rolling window such as 28d or 30d",
                        window.duration
                    ),
                );
                None
            }
        },
        _ => {
            issues.push(field, "a window is either rolling (isRolling: true) or a calendar month (calendar:, isRolling: false)");
            None
        }
    }
}

fn resolve_indicator(
    spec: &SloSpec,
    slis: &BTreeMap<String, SliSpec>,
    issues: &mut Scope<'_>,
) -> Option<SliSpec> {
    match (&spec.indicator, &spec.indicator_ref) {
        (Some(inline), None) => Some(inline.spec.clone()),
        (None, Some(name)) => {
            let found = slis.get(name).cloned();
            if found.is_none() {
                issues.push(
                    "spec.indicatorRef",
                    format!("no SLI document named {name:?} in this file"),
                );
            }
            found
        }
        _ => {
            issues.push("spec", "give exactly one of `indicator` or `indicatorRef`");
            None
        }
    }
}

fn convert_ratio(sli: &SliSpec, issues: &mut Scope<'_>) -> Option<Indicator> {
    let field = "spec.indicator.spec";
    if sli.threshold_metric.is_some() {
        issues.push(
            format!("{field}.thresholdMetric"),
            "only ratioMetric indicators are supported",
        );
        return None;
    }
    let Some(ratio) = &sli.ratio_metric else {
        issues.push(
            format!("{field}.ratioMetric"),
            "missing: slogate needs a ratio indicator (good/total or bad/total)",
        );
        return None;
    };
    let field = format!("{field}.ratioMetric");
    if ratio.raw.is_some() || ratio.raw_type.is_some() {
        issues.push(
            format!("{field}.raw"),
            "raw ratios are not supported; give good/total or bad/total queries",
        );
        return None;
    }
    if ratio.counter == Some(false) {
        issues.push(
            format!("{field}.counter"),
            "only counter-based ratios are supported (counter: true)",
        );
        return None;
    }
    let total = query(ratio.total.as_ref(), &format!("{field}.total"), issues);
    let events = match (&ratio.good, &ratio.bad) {
        (Some(good), None) => {
            query(Some(good), &format!("{field}.good"), issues).map(RatioEvents::Good)
        }
        (None, Some(bad)) => {
            query(Some(bad), &format!("{field}.bad"), issues).map(RatioEvents::Bad)
        }
        _ => {
            issues.push(field, "give exactly one of `good` or `bad`, and `total`");
            None
        }
    };
    Some(Indicator::Ratio {
        events: events?,
        total: total?,
    })
}

fn query(holder: Option<&MetricHolder>, field: &str, issues: &mut Scope<'_>) -> Option<String> {
    let Some(holder) = holder else {
        issues.push(field, "missing");
        return None;
    };
    let source = &holder.metric_source;
    if source.metric_source_ref.is_some() {
        issues.push(
            format!("{field}.metricSource.metricSourceRef"),
            "data source references are not supported; give the query inline",
        );
        return None;
    }
    if let Some(t) = &source.source_type {
        if !t.eq_ignore_ascii_case("prometheus") {
            issues.push(
                format!("{field}.metricSource.type"),
                format!("{t:?} is not supported; slogate generates Prometheus rules"),
            );
            return None;
        }
    }
    let query_field = format!("{field}.metricSource.spec.query");
    let Some(q) = source.spec.query.clone().filter(|q| !q.trim().is_empty()) else {
        issues.push(query_field, "missing: a PromQL query");
        return None;
    };
    if !WINDOW_PLACEHOLDERS.iter().any(|p| q.contains(p)) {
        issues.push(
            query_field,
            "the query needs a `[{{.window}}]` range, e.g. sum(rate(x_total[{{.window}}])), so slogate can evaluate it over each window",
        );
        return None;
    }
    Some(q.trim().to_string())
}

fn convert_objectives(
    objectives: &[Objective],
    issues: &mut Scope<'_>,
) -> Vec<(Option<String>, Decimal)> {
    if objectives.is_empty() {
        issues.push("spec.objectives", "declare at least one objective");
    }
    let mut out = Vec::new();
    for (i, o) in objectives.iter().enumerate() {
        let field = format!("spec.objectives[{i}]");
        if o.op.is_some() || o.value.is_some() {
            issues.push(
                field.clone(),
                "`op`/`value` apply to threshold indicators, which slogate does not support",
            );
            continue;
        }
        if o.time_slice_target.is_some() || o.time_slice_window.is_some() {
            issues.push(
                field.clone(),
                "time slices are not supported; slogate counts events",
            );
            continue;
        }
        if o.indicator.is_some() || o.indicator_ref.is_some() {
            issues.push(
                field.clone(),
                "per-objective indicators are not supported; set the indicator on the SLO",
            );
            continue;
        }
        let target = match (&o.target, &o.target_percent) {
            (Some(ratio), None) => ratio_as_percent(ratio).or_else(|| {
                issues.push(
                    format!("{field}.target"),
                    "must be a ratio strictly between 0 and 1, e.g. 0.999",
                );
                None
            }),
            (None, Some(percent)) => parse_target(
                issues,
                &format!("{field}.targetPercent"),
                Some(percent.clone()),
            ),
            _ => {
                issues.push(
                    field.clone(),
                    "give exactly one of `target` (0..1) or `targetPercent` (0..100)",
                );
                None
            }
        };
        let label = o
            .display_name
            .as_ref()
            .map(|n| slugify(n))
            .filter(|s| !s.is_empty());
        if let Some(target) = target {
            out.push((label, target));
        }
    }
    out
}

fn ratio_as_percent(value: &Value) -> Option<Decimal> {
    let ratio = match value {
        Value::Number(n) => n.as_f64().and_then(Decimal::from_f64)?,
        Value::String(s) => Decimal::parse(s.trim())?,
        _ => return None,
    };
    let percent = ratio.ratio_to_percent()?;
    (!percent.is_zero() && percent < Decimal::new(100, 0)).then_some(percent)
}

fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}
