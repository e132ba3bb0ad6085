//! The three views side by side: what the client saw, what slogate counted, what the mock
//! answered, and where they differ.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;
use slogate_core::Outcome;

use crate::counts::{OpKey, OutcomeCounts};
use crate::load::record::{ClientOp, ClientView};
use crate::mock::MockStats;
use crate::prom::{bucket_label, bucket_of, quantile_bucket, ProxyView};

/// The quantiles compared.
pub const QUANTILES: [(f64, &str); 3] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")];

/// Latency quantiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    fn of(h: &Histogram<u64>) -> Quantiles {
        let ms = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        Quantiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
        }
    }
}

/// One quantile: the client's value, its bucket, and the bucket the proxy puts it in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyCheck {
    /// `p50`, `p90` or `p99`.
    pub quantile: &'static str,
    /// The client's value (from the actual send), in milliseconds.
    pub client_ms: f64,
    /// The histogram bucket that value falls in.
    pub client_bucket: String,
    /// The bucket of `slogate_request_duration_seconds` holding the quantile.
    pub proxy_bucket: String,
    /// How many buckets apart they are (client minus proxy).
    pub buckets_apart: i64,
}

/// One operation in the three views.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationReport {
    /// `graphql` or `http`.
    pub kind: String,
    /// The label.
    pub operation: String,
    /// Operations the client sent under this label.
    pub requests: u64,
    /// What the client saw, classified with slogate's rules.
    pub client: OutcomeCounts,
    /// What slogate counted (`slogate_requests_total` after minus before).
    pub proxy: Option<OutcomeCounts>,
    /// What the mock answered (`/__mock/stats` after minus before).
    pub mock: Option<OutcomeCounts>,
    /// What slogate answered itself (`413` over `server.max_body_size`), as the client saw it:
    /// the mock never sees these, so they are added to its side of the comparison.
    pub answered_by_proxy: OutcomeCounts,
    /// Statuses the client saw.
    pub statuses: BTreeMap<String, u64>,
    /// Latency from the scheduled send time (free of coordinated omission).
    pub latency_ms: Quantiles,
    /// Latency from the actual send time (comparable with the proxy's histogram).
    pub service_ms: Quantiles,
    /// Service-time quantiles against the proxy's histogram.
    pub latency_checks: Vec<LatencyCheck>,
    /// `exact`, or `differs`.
    pub verdict: String,
    /// Each difference, in words.
    pub differences: Vec<String>,
}

/// The result of a load run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The scenario file.
    pub scenario: String,
    /// How the load was paced.
    pub load: String,
    /// Seconds the load ran.
    pub elapsed_seconds: f64,
    /// HTTP requests sent.
    pub http_requests: u64,
    /// HTTP requests per second achieved.
    pub achieved_rate: f64,
    /// Requests the client gave up on.
    pub client_timeouts: u64,
    /// Requests without a complete response.
    pub transport_errors: u64,
    /// Retries the mock recognised by request id (answered again, counted once).
    pub mock_duplicates: Option<u64>,
    /// Per operation.
    pub operations: Vec<OperationReport>,
    /// Every view agrees, exactly for counts and within the tolerance for latency.
    pub agree: bool,
    /// Remarks.
    pub notes: Vec<String>,
}

impl Report {
    /// Operations whose views differ.
    pub fn disagreements(&self) -> usize {
        self.operations
            .iter()
            .filter(|o| !o.differences.is_empty())
            .count()
    }

    /// Client-observed counts summed over operations.
    pub fn client_total(&self) -> OutcomeCounts {
        let mut t = OutcomeCounts::default();
        for o in &self.operations {
            t.merge(&o.client);
        }
        t
    }
}

/// Everything the report is built from.
pub struct Inputs<'a> {
    /// The scenario file.
    pub scenario: String,
    /// How the load was paced.
    pub load: String,
    /// What the client saw.
    pub client: &'a ClientView,
    /// The proxy's counts over the run and the labels it knows after it.
    pub proxy: Option<(ProxyView, BTreeSet<OpKey>)>,
    /// The mock's answers over the run.
    pub mock: Option<MockStats>,
    /// Buckets the latency quantiles may be apart.
    pub bucket_tolerance: usize,
}

/// The label slogate ends up with: a name its cardinality guard did not admit is `(other)`.
fn as_labelled(key: &OpKey, labels: Option<&BTreeSet<OpKey>>) -> OpKey {
    match labels {
        Some(l) if !key.operation.starts_with('(') && !l.contains(key) => OpKey {
            kind: key.kind.clone(),
            operation: "(other)".into(),
        },
        _ => key.clone(),
    }
}

/// Builds the report.
pub fn build(inputs: Inputs<'_>) -> Report {
    let labels = inputs.proxy.as_ref().map(|(_, l)| l);
    let mut client: BTreeMap<OpKey, ClientOp> = BTreeMap::new();
    for (k, op) in &inputs.client.ops {
        client.entry(as_labelled(k, labels)).or_default().merge(op);
    }
    let mut mock: Option<BTreeMap<OpKey, OutcomeCounts>> = None;
    if let Some(m) = &inputs.mock {
        let mut map: BTreeMap<OpKey, OutcomeCounts> = BTreeMap::new();
        for (k, c) in m.outcomes() {
            map.entry(as_labelled(&k, labels)).or_default().merge(&c);
        }
        mock = Some(map);
    }
    let proxy = inputs.proxy.as_ref().map(|(v, _)| v);
    let mut keys: BTreeSet<OpKey> = client.keys().cloned().collect();
    keys.extend(proxy.iter().flat_map(|p| p.requests.keys().cloned()));
    keys.extend(mock.iter().flat_map(|m| m.keys().cloned()));
    let empty = ClientOp::default();
    let operations: Vec<OperationReport> = keys
        .into_iter()
        .map(|key| {
            let c = client.get(&key).unwrap_or(&empty);
            let p = proxy.map(|p| p.requests.get(&key).copied().unwrap_or_default());
            let m = mock
                .as_ref()
                .map(|m| m.get(&key).copied().unwrap_or_default());
            let buckets = proxy.and_then(|p| p.buckets.get(&key));
            operation(
                key,
                c,
                p,
                m,
                buckets.map(Vec::as_slice),
                inputs.bucket_tolerance,
            )
        })
        .collect();
    let c = inputs.client;
    let elapsed = c.elapsed.as_secs_f64();
    let mut notes = Vec::new();
    if c.timeouts > 0 {
        notes.push(format!(
            "{} request(s) timed out at the client: slogate counts them canceled; the mock cannot see cancellations (raise load.timeout above proxy.read_timeout)",
            c.timeouts
        ));
    }
    if let Some(m) = inputs.mock.as_ref().filter(|m| m.duplicates > 0) {
        notes.push(format!(
            "the mock saw {} retried request(s) (same X-Request-Id: the proxy retried an idempotent request on a reused connection); answered the same way and counted once",
            m.duplicates
        ));
    }
    let refused: u64 = operations.iter().map(|o| o.answered_by_proxy.total()).sum();
    if refused > 0 {
        notes.push(format!(
            "{refused} request(s) were over slogate's server.max_body_size: slogate answered 413 itself and labelled them (invalid) without reading them; the mock never saw them, so they are added to its side"
        ));
    }
    let agree = operations.iter().all(|o| o.differences.is_empty());
    Report {
        scenario: inputs.scenario,
        load: inputs.load,
        elapsed_seconds: elapsed,
        http_requests: c.http_requests,
        achieved_rate: if elapsed > 0.0 {
            c.http_requests as f64 / elapsed
        } else {
            0.0
        },
        client_timeouts: c.timeouts,
        transport_errors: c.transport_errors,
        mock_duplicates: inputs.mock.as_ref().map(|m| m.duplicates),
        operations,
        agree,
        notes,
    }
}

fn operation(
    key: OpKey,
    c: &ClientOp,
    proxy: Option<OutcomeCounts>,
    mock: Option<OutcomeCounts>,
    buckets: Option<&[(f64, u64)]>,
    tolerance: usize,
) -> OperationReport {
    let mut differences = Vec::new();
    match (proxy, mock) {
        (Some(p), m) => {
            differences.extend(compare("client", &c.outcomes, "proxy", &p, true));
            if let Some(mut m) = m {
                m.merge(&c.answered_by_proxy);
                differences.extend(compare("mock", &m, "proxy", &p, false));
                if p.canceled > 0 {
                    differences.push(format!(
                        "canceled: proxy {}, the mock cannot see cancellations",
                        p.canceled
                    ));
                }
            }
        }
        (None, Some(mut m)) => {
            m.merge(&c.answered_by_proxy);
            differences.extend(compare("client", &c.outcomes, "mock", &m, false))
        }
        (None, None) => {}
    }
    let latency_checks = buckets
        .map(|b| latency_checks(&c.service, b))
        .unwrap_or_default();
    for check in &latency_checks {
        if check.buckets_apart.unsigned_abs() as usize > tolerance {
            differences.push(format!(
                "{}: client {:.1}ms in {}, proxy in {} ({} buckets apart)",
                check.quantile,
                check.client_ms,
                check.client_bucket,
                check.proxy_bucket,
                check.buckets_apart
            ));
        }
    }
    OperationReport {
        kind: key.kind,
        operation: key.operation,
        requests: c.outcomes.total(),
        client: c.outcomes,
        proxy,
        mock,
        answered_by_proxy: c.answered_by_proxy,
        statuses: c.statuses.clone(),
        latency_ms: Quantiles::of(&c.latency),
        service_ms: Quantiles::of(&c.service),
        latency_checks,
        verdict: if differences.is_empty() {
            "exact"
        } else {
            "differs"
        }
        .into(),
        differences,
    }
}

fn compare(
    a_name: &str,
    a: &OutcomeCounts,
    b_name: &str,
    b: &OutcomeCounts,
    with_canceled: bool,
) -> Vec<String> {
    Outcome::ALL
        .into_iter()
        .filter(|o| with_canceled || *o != Outcome::Canceled)
        .filter(|o| a.get(*o) != b.get(*o))
        .map(|o| format!("{o}: {a_name} {}, {b_name} {}", a.get(o), b.get(o)))
        .collect()
}

/// Requests that must lie above a quantile for it to be compared.
const ABOVE_QUANTILE: f64 = 2.0;

/// The client's service-time quantiles against the proxy's buckets. A quantile with fewer
/// than [`ABOVE_QUANTILE`] requests above it (the p90 of 10 requests, the p99 of 100) is
/// the slowest request or two, and one request the client's own scheduling delayed (a
/// loaded machine) would decide it: it is left out.
fn latency_checks(service: &Histogram<u64>, buckets: &[(f64, u64)]) -> Vec<LatencyCheck> {
    if service.is_empty() {
        return Vec::new();
    }
    let n = service.len() as f64;
    QUANTILES
        .iter()
        .filter(|(q, _)| n * (1.0 - q) + 1e-9 >= ABOVE_QUANTILE)
        .filter_map(|(q, name)| {
            let proxy = quantile_bucket(buckets, *q)?;
            let micros = service.value_at_quantile(*q);
            let client = bucket_of(buckets, micros as f64 / 1e6);
            Some(LatencyCheck {
                quantile: name,
                client_ms: micros as f64 / 1000.0,
                client_bucket: bucket_label(buckets, client),
                proxy_bucket: bucket_label(buckets, proxy),
                buckets_apart: client as i64 - proxy as i64,
            })
        })
        .collect()
}

fn ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The report as a table, with the differences and the verdict under it.
pub fn render(r: &Report) -> String {
    let mut rows = vec![[
        "kind",
        "operation",
        "reqs",
        "client ok/cli/sys/can",
        "proxy",
        "mock",
        "svc p50/p90/p99 ms",
        "proxy buckets p50/p90/p99",
        "p99 from schedule",
        "verdict",
    ]
    .map(String::from)
    .to_vec()];
    for o in &r.operations {
        let buckets = o
            .latency_checks
            .iter()
            .map(|c| c.proxy_bucket.as_str())
            .collect::<Vec<_>>()
            .join(" / ");
        rows.push(vec![
            o.kind.clone(),
            o.operation.clone(),
            o.requests.to_string(),
            o.client.compact(),
            o.proxy.map_or("-".into(), |p| p.compact()),
            o.mock.map_or("-".into(), |m| m.compact()),
            format!(
                "{}/{}/{}",
                ms(o.service_ms.p50),
                ms(o.service_ms.p90),
                ms(o.service_ms.p99)
            ),
            if buckets.is_empty() {
                "-".into()
            } else {
                buckets
            },
            format!("{}ms", ms(o.latency_ms.p99)),
            o.verdict.clone(),
        ]);
    }
    let mut out = format!(
        "scenario {}: {}; {} HTTP requests in {:.1}s ({:.1}/s), {} client timeouts, {} transport errors\n\n",
        r.scenario, r.load, r.http_requests, r.elapsed_seconds, r.achieved_rate, r.client_timeouts, r.transport_errors
    );
    out.push_str(&table(&rows));
    for o in r.operations.iter().filter(|o| !o.differences.is_empty()) {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            o.kind,
            o.operation,
            o.differences.join("; ")
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let total = r.client_total().total();
    if r.agree {
        let _ = writeln!(
            out,
            "verdict: the views agree exactly on {total} operations in {} series",
            r.operations.len()
        );
    } else {
        let _ = writeln!(
            out,
            "verdict: {} operation label(s) differ",
            r.disagreements()
        );
    }
    out
}

/// Left-aligned text columns, two spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` requests of 4 ms on both sides, but the client saw the slowest at 12 ms.
    fn checks(n: u64) -> Vec<LatencyCheck> {
        let mut service = Histogram::<u64>::new(3).unwrap();
        for _ in 1..n {
            service.record(4_000).unwrap();
        }
        service.record(12_000).unwrap();
        let buckets = [(0.005, n), (0.01, n), (0.025, n), (f64::INFINITY, n)];
        latency_checks(&service, &buckets)
    }

    fn compared(n: u64) -> Vec<&'static str> {
        checks(n).iter().map(|c| c.quantile).collect()
    }

    #[test]
    fn a_quantile_one_request_decides_is_not_compared() {
        assert_eq!(compared(1), Vec::<&str>::new());
        assert_eq!(compared(7), vec!["p50"]);
        assert_eq!(compared(19), vec!["p50"]);
        assert_eq!(compared(20), vec!["p50", "p90"]);
        assert_eq!(compared(200), vec!["p50", "p90", "p99"]);
        // The p50 of 4 requests is compared, and agrees.
        let c = checks(4);
        assert_eq!(c[0].buckets_apart, 0);
    }
}
