//! The proxy's view: `slogate_requests_total` and `slogate_request_duration_seconds` read
//! from the Prometheus text exposition of slogate's `/metrics`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use slogate_core::Outcome;

use crate::counts::{OpKey, OutcomeCounts};

/// Request counts and latency buckets per operation, summed over types (and services).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProxyView {
    /// Requests by outcome.
    pub requests: BTreeMap<OpKey, OutcomeCounts>,
    /// Cumulative histogram buckets: `(le, count)`, ascending, `+Inf` last.
    pub buckets: BTreeMap<OpKey, Vec<(f64, u64)>>,
}

/// One sample of the text exposition format: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (with `_bucket`, `_sum`, `_count` suffixes as written).
    pub name: String,
    /// The labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf` is infinity).
    pub value: f64,
}

impl ProxyView {
    /// Reads an exposition, keeping the samples of `service` (all services if `None`).
    pub fn parse(text: &str, service: Option<&str>) -> ProxyView {
        let mut view = ProxyView::default();
        let mut buckets: BTreeMap<OpKey, BTreeMap<u64, (f64, u64)>> = BTreeMap::new();
        for s in text.lines().filter_map(parse_sample) {
            if service.is_some_and(|svc| s.labels.get("service").map(String::as_str) != Some(svc)) {
                continue;
            }
            let (Some(kind), Some(op)) = (s.labels.get("kind"), s.labels.get("operation")) else {
                continue;
            };
            let key = OpKey {
                kind: kind.clone(),
                operation: op.clone(),
            };
            let n = s.value.max(0.0).round() as u64;
            match s.name.as_str() {
                "slogate_requests_total" => {
                    let outcome = s.labels.get("outcome").and_then(|o| Outcome::parse(o));
                    if let Some(o) = outcome {
                        view.requests.entry(key).or_default().add(o, n);
                    }
                }
                "slogate_request_duration_seconds_bucket" => {
                    let le = s.labels.get("le").and_then(|l| parse_float(l));
                    if let Some(le) = le {
                        let slot = buckets
                            .entry(key)
                            .or_default()
                            .entry(le.to_bits())
                            .or_insert((le, 0));
                        slot.1 += n;
                    }
                }
                _ => {}
            }
        }
        for (key, by_le) in buckets {
            let mut list: Vec<(f64, u64)> = by_le.into_values().collect();
            list.sort_by(|a, b| a.0.total_cmp(&b.0));
            view.buckets.insert(key, list);
        }
        view
    }

    /// What was counted between `before` and `self`.
    pub fn since(&self, before: &ProxyView) -> ProxyView {
        let requests = self
            .requests
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    c.since(&before.requests.get(k).copied().unwrap_or_default()),
                )
            })
            .filter(|(_, c)| c.total() > 0)
            .collect();
        let buckets = self
            .buckets
            .iter()
            .map(|(k, list)| {
                let old = before.buckets.get(k);
                let delta = list
                    .iter()
                    .map(|(le, n)| {
                        let prev = old
                            .and_then(|o| o.iter().find(|(l, _)| l == le))
                            .map_or(0, |(_, p)| *p);
                        (*le, n.saturating_sub(prev))
                    })
                    .collect::<Vec<_>>();
                (k.clone(), delta)
            })
            .filter(|(_, list)| list.last().is_some_and(|(_, n)| *n > 0))
            .collect();
        ProxyView { requests, buckets }
    }

    /// Every operation counted.
    pub fn total(&self) -> u64 {
        self.requests.values().map(OutcomeCounts::total).sum()
    }

    /// The labels present.
    pub fn labels(&self) -> BTreeSet<OpKey> {
        self.requests.keys().cloned().collect()
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => s.parse().ok(),
    }
}

/// Parses one line of the text exposition format; `None` for comments, blank lines and
/// anything that is not a sample.
pub fn parse_sample(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (head, value) = line.trim_end().rsplit_once(' ')?;
    let value = parse_float(value)?;
    let (name, labels) = match head.split_once('{') {
        Some((n, rest)) => (n.to_string(), parse_labels(rest.strip_suffix('}')?)),
        None => (head.to_string(), BTreeMap::new()),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    out
}

/// Index of the bucket a latency (seconds) falls in: the first `le` at or above it.
pub fn bucket_of(buckets: &[(f64, u64)], seconds: f64) -> usize {
    buckets
        .iter()
        .position(|(le, _)| seconds <= *le)
        .unwrap_or(buckets.len().saturating_sub(1))
}

/// Index of the bucket holding quantile `q` of a cumulative histogram (as
/// `histogram_quantile` would pick it), or `None` when empty.
pub fn quantile_bucket(buckets: &[(f64, u64)], q: f64) -> Option<usize> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    buckets.iter().position(|(_, n)| *n >= rank)
}

/// `5–10ms`, `≤5ms`, `>10s`: how a bucket reads in a table.
pub fn bucket_label(buckets: &[(f64, u64)], i: usize) -> String {
    let upper = buckets.get(i).map_or(f64::INFINITY, |b| b.0);
    let lower = i.checked_sub(1).and_then(|j| buckets.get(j)).map(|b| b.0);
    match (lower, upper.is_finite()) {
        (None, _) => format!("≤{}", seconds(upper)),
        (Some(l), false) => format!(">{}", seconds(l)),
        (Some(l), true) => format!("{}–{}", seconds(l), seconds(upper)),
    }
}

/// `250ms`, `2.5s`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{}ms", (s * 1000.0 * 1000.0).round() / 1000.0)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP slogate_requests_total Requests
slogate_requests_total{kind="graphql",operation="GetCourse",operation_type="query",outcome="success",service="rails"} 7
slogate_requests_total{kind="graphql",operation="GetCourse",operation_type="unknown",outcome="success",service="rails"} 1
slogate_requests_total{kind="http",operation="GET /a/:id",operation_type="http",outcome="system_error",service="rails"} 2
slogate_request_duration_seconds_bucket{kind="graphql",operation="GetCourse",operation_type="query",outcome="success",service="rails",le="0.01"} 3
slogate_request_duration_seconds_bucket{kind="graphql",operation="GetCourse",operation_type="query",outcome="success",service="rails",le="0.025"} 7
slogate_request_duration_seconds_bucket{kind="graphql",operation="GetCourse",operation_type="query",outcome="success",service="rails",le="+Inf"} 7
"#;

    #[test]
    fn reads_counts_and_buckets() {
        let v = ProxyView::parse(TEXT, None);
        let key = OpKey::graphql("GetCourse");
        assert_eq!(v.requests[&key].success, 8);
        assert_eq!(v.requests[&OpKey::http("GET /a/:id")].system_error, 2);
        let b = &v.buckets[&key];
        assert_eq!(b, &vec![(0.01, 3), (0.025, 7), (f64::INFINITY, 7)]);
        assert_eq!(quantile_bucket(b, 0.5), Some(1));
        assert_eq!(quantile_bucket(b, 0.1), Some(0));
        assert_eq!(bucket_of(b, 0.02), 1);
        assert_eq!(bucket_label(b, 1), "10ms–25ms");
        assert_eq!(bucket_label(b, 2), ">25ms");
        assert_eq!(ProxyView::parse(TEXT, Some("other")).total(), 0);
        let none = ProxyView::default();
        assert_eq!(v.since(&none), v);
        assert_eq!(v.since(&v).total(), 0);
    }
}
