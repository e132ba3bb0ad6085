//! `slo report`: asks Prometheus's HTTP API how every SLO is doing.
//!
//! The report evaluates the same PromQL the recording rules use, straight
//! from the raw slogate metrics, so it works before the rules are deployed
//! and can show calendar months to date.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Period, Slo, Spec};
use crate::promql::RangeFn;
use crate::rules::{burn_alerts, Severity, ALERT_WINDOWS};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Connection refused, DNS failure, timeout...
    #[error("cannot reach Prometheus at {url}: {message}")]
    Unreachable {
        /// The Prometheus base URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Prometheus answered with an error.
    #[error("Prometheus at {url} refused the query ({message}); query: {query}")]
    Query {
        /// The Prometheus base URL.
        url: String,
        /// Prometheus's error text.
        message: String,
        /// The PromQL sent.
        query: String,
    },
    /// The answer was not what Prometheus's API returns.
    #[error("unexpected answer from {url} (is it Prometheus?): {message}")]
    Protocol {
        /// The Prometheus base URL.
        url: String,
        /// What was wrong with it.
        message: String,
    },
    /// No SLO had any data.
    #[error(
        "Prometheus at {url} has no data for any SLO in {spec}: is it scraping slogate, \
         and do the service and operation names match what the proxy reports? \
         (first query tried: {query})"
    )]
    NoData {
        /// The Prometheus base URL.
        url: String,
        /// The spec file.
        spec: String,
        /// A query that returned nothing.
        query: String,
    },
    /// HTTPS without the `tls` feature.
    #[error("{url}: https needs slogate built with the slogate-slo `tls` feature")]
    NoTls {
        /// The Prometheus base URL.
        url: String,
    },
}

/// A small blocking Prometheus HTTP API client.
#[derive(Debug)]
pub struct Prometheus {
    base: String,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<ApiData>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    value: (f64, String),
}

impl Prometheus {
    /// A client for the Prometheus at `url` (e.g. `http://localhost:9090`).
    pub fn new(url: &str, timeout: Duration) -> Result<Prometheus, ReportError> {
        let base = url.trim_end_matches('/').to_string();
        if base.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(ReportError::NoTls { url: base });
        }
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ReportError::Unreachable {
                message: "the URL must start with http:// or https://".into(),
                url: base,
            });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Prometheus { base, agent })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Evaluates an instant query at `time` (Unix seconds) and sums the
    /// resulting vector; `None` when it is empty.
    pub fn query_value(&self, query: &str, time: f64) -> Result<Option<f64>, ReportError> {
        let endpoint = format!("{}/api/v1/query", self.base);
        let request = self
            .agent
            .get(&endpoint)
            .query("query", query)
            .query("time", format!("{time:.3}"));
        let data = self.api_data(request, query)?;
        let protocol = |message: String| ReportError::Protocol {
            url: self.base.clone(),
            message,
        };
        match data.result_type.as_str() {
            "vector" => {
                let samples: Vec<VectorSample> = serde_json::from_value(data.result)
                    .map_err(|e| protocol(format!("bad vector: {e}")))?;
                Ok(sum_samples(&samples))
            }
            "scalar" => {
                let sample: (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| protocol(format!("bad scalar: {e}")))?;
                Ok(parse_value(&sample.1))
            }
            other => Err(protocol(format!("unexpected result type {other}"))),
        }
    }
}

/// One series of a range query: its labels and (time, value) points.
#[derive(Clone, Debug, Deserialize)]
pub struct RangeSeries {
    /// The series' labels.
    pub metric: std::collections::BTreeMap<String, String>,
    /// (Unix seconds, value text) pairs.
    pub values: Vec<(f64, String)>,
}

impl RangeSeries {
    /// The points with a numeric (non-NaN) value.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.values
            .iter()
            .filter_map(|(t, v)| parse_value(v).map(|v| (*t, v)))
            .collect()
    }
}

impl Prometheus {
    /// Sends an API request and returns its `data`, or what went wrong.
    fn api_data(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        query: &str,
    ) -> Result<ApiData, ReportError> {
        let unreachable = |e: ureq::Error| ReportError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        };
        let mut response = request.call().map_err(unreachable)?;
        let status = response.status();
        let body = response.body_mut().read_to_string().map_err(unreachable)?;
        let parsed: ApiResponse =
            serde_json::from_str(&body).map_err(|e| ReportError::Protocol {
                url: self.base.clone(),
                message: format!("HTTP {status}, body is not API JSON ({e})"),
            })?;
        if parsed.status != "success" {
            return Err(ReportError::Query {
                url: self.base.clone(),
                message: parsed.error.unwrap_or_else(|| format!("HTTP {status}")),
                query: query.to_string(),
            });
        }
        parsed.data.ok_or_else(|| ReportError::Protocol {
            url: self.base.clone(),
            message: "no data field".into(),
        })
    }

    /// Evaluates a range query from `start` to `end` every `step` seconds.
    pub fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<RangeSeries>, ReportError> {
        let endpoint = format!("{}/api/v1/query_range", self.base);
        let request = self
            .agent
            .get(&endpoint)
            .query("query", query)
            .query("start", format!("{start:.3}"))
            .query("end", format!("{end:.3}"))
            .query("step", format!("{step}"));
        let data = self.api_data(request, query)?;
        let protocol = |message: String| ReportError::Protocol {
            url: self.base.clone(),
            message,
        };
        if data.result_type != "matrix" {
            return Err(protocol(format!(
                "a range query returned {}, not a matrix",
                data.result_type
            )));
        }
        serde_json::from_value(data.result).map_err(|e| protocol(format!("bad matrix: {e}")))
    }
}

fn parse_value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

fn sum_samples(samples: &[VectorSample]) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .filter_map(|s| parse_value(&s.value.1))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The state of every SLO at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The Prometheus asked.
    pub prometheus: String,
    /// Unix seconds the queries were evaluated at.
    pub evaluated_at: f64,
    /// One entry per SLO objective.
    pub slos: Vec<SloReport>,
}

/// One SLO objective's state.
#[derive(Clone, Debug, Serialize)]
pub struct SloReport {
    /// `sloth_id`.
    pub id: String,
    /// Service.
    pub service: String,
    /// SLO name (`sloth_slo`).
    pub slo: String,
    /// `availability`, `latency` or `ratio`.
    pub category: String,
    /// The critical user journey.
    pub cuj: Option<String>,
    /// Owning team.
    pub owner: Option<String>,
    /// Objective as a ratio, e.g. 0.999.
    pub objective: f64,
    /// Error budget as a ratio, e.g. 0.001.
    pub error_budget: f64,
    /// The period as written (`28d`, `calendar month`).
    pub period: String,
    /// The range the SLI was computed over (`4w`, or the month so far).
    pub period_window: String,
    /// Good events / total events over the period; `None` without traffic.
    pub sli: Option<f64>,
    /// Share of the error budget left (negative once overspent).
    pub budget_remaining: Option<f64>,
    /// Error ratio and burn rate per alerting window.
    pub burn_rates: Vec<WindowBurn>,
    /// The burn-rate alerts and whether each would fire now.
    pub alerts: Vec<AlertState>,
}

/// Error ratio and burn rate over one window.
#[derive(Clone, Debug, Serialize)]
pub struct WindowBurn {
    /// E.g. `1h`.
    pub window: String,
    /// Bad / total over the window.
    pub error_ratio: Option<f64>,
    /// Error ratio / error budget.
    pub burn_rate: Option<f64>,
}

/// One burn-rate alert's state.
#[derive(Clone, Debug, Serialize)]
pub struct AlertState {
    /// Page or ticket.
    pub severity: Severity,
    /// 1 (fastest) to 4.
    pub tier: u8,
    /// Long window.
    pub long_window: String,
    /// Short window.
    pub short_window: String,
    /// Burn rate both windows must exceed.
    pub burn_rate_threshold: f64,
    /// Whether both windows exceed it now.
    pub firing: bool,
}

/// Queries Prometheus for every SLO at `now` (Unix seconds).
pub fn build_report(spec: &Spec, prometheus: &Prometheus, now: f64) -> Result<Report, ReportError> {
    let mut slos = Vec::new();
    for slo in &spec.slos {
        slos.push(slo_report(slo, prometheus, now)?);
    }
    let any_data = slos
        .iter()
        .any(|s| s.sli.is_some() || s.burn_rates.iter().any(|b| b.error_ratio.is_some()));
    if !any_data {
        let query = spec
            .slos
            .first()
            .map(|s| s.error_ratio_expr(RangeFn::Rate, "1h"))
            .unwrap_or_default();
        return Err(ReportError::NoData {
            url: prometheus.url().to_string(),
            spec: spec.source.clone(),
            query: query.replace('\n', " "),
        });
    }
    Ok(Report {
        prometheus: prometheus.url().to_string(),
        evaluated_at: now,
        slos,
    })
}

/// The range the period SLI is computed over at `now`.
fn period_range(period: Period, now: f64) -> (String, String) {
    match period {
        Period::Rolling(window) => (window.to_string(), window.to_string()),
        Period::CalendarMonth => {
            let now_secs = now.floor() as i64;
            let elapsed = (now_secs - month_start(now_secs)).max(60);
            let label = format!(
                "month to date ({}d {}h)",
                elapsed / 86_400,
                elapsed % 86_400 / 3_600
            );
            (format!("{elapsed}s"), label)
        }
    }
}

fn slo_report(slo: &Slo, prometheus: &Prometheus, now: f64) -> Result<SloReport, ReportError> {
    let budget = slo.error_budget().to_f64();
    let (range, period_window) = period_range(slo.period, now);
    let period_ratio =
        prometheus.query_value(&slo.error_ratio_expr(RangeFn::Increase, &range), now)?;
    let mut burn_rates = Vec::new();
    for window in ALERT_WINDOWS {
        let ratio = prometheus.query_value(
            &slo.error_ratio_expr(RangeFn::Rate, &window.to_string()),
            now,
        )?;
        burn_rates.push(WindowBurn {
            window: window.to_string(),
            error_ratio: ratio,
            burn_rate: ratio.map(|r| r / budget),
        });
    }
    let burn_of = |window: String| {
        burn_rates
            .iter()
            .find(|b| b.window == window)
            .and_then(|b| b.burn_rate)
    };
    let alerts = burn_alerts()
        .iter()
        .map(|a| {
            let threshold = a.factor(slo.period.window()).to_f64();
            let over = |w: String| burn_of(w).is_some_and(|b| b > threshold);
            AlertState {
                severity: a.severity,
                tier: a.tier,
                long_window: a.long.to_string(),
                short_window: a.short.to_string(),
                burn_rate_threshold: threshold,
                firing: over(a.long.to_string()) && over(a.short.to_string()),
            }
        })
        .collect();
    Ok(SloReport {
        id: slo.id(),
        service: slo.service.clone(),
        slo: slo.name.clone(),
        category: slo.category().to_string(),
        cuj: slo.cuj.clone(),
        owner: slo.owner.clone(),
        objective: slo.objective().to_f64(),
        error_budget: budget,
        period: slo.period.to_string(),
        period_window,
        sli: period_ratio.map(|r| 1.0 - r),
        budget_remaining: period_ratio.map(|r| 1.0 - r / budget),
        burn_rates,
        alerts,
    })
}

/// Unix seconds of the start of the UTC month containing `secs`.
fn month_start(secs: i64) -> i64 {
    let (year, month, _) = civil_from_days(secs.div_euclid(86_400));
    days_from_civil(year, month, 1) * 86_400
}

/// Days since 1970-01-01 to (year, month, day).
pub(crate) fn civil_from_days_pub(days: i64) -> (i64, i64, i64) {
    civil_from_days(days)
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn percent(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(
        || "no data".to_string(),
        |v| format!("{:.decimals$}%", v * 100.0),
    )
}

fn firing_summary(report: &SloReport) -> String {
    let firing: Vec<String> = report
        .alerts
        .iter()
        .filter(|a| a.firing)
        .map(|a| {
            format!(
                "{} (tier {}, {}/{} > {}x)",
                a.severity.as_str(),
                a.tier,
                a.long_window,
                a.short_window,
                a.burn_rate_threshold
            )
        })
        .collect();
    if firing.is_empty() {
        "none".to_string()
    } else {
        firing.join(", ")
    }
}

/// Renders the report as an aligned terminal table.
pub fn render_table(report: &Report) -> String {
    let mut header = vec![
        "SLO".to_string(),
        "OBJECTIVE".into(),
        "PERIOD".into(),
        "SLI".into(),
        "BUDGET LEFT".into(),
    ];
    header.extend(ALERT_WINDOWS.iter().map(|w| format!("BURN {w}")));
    header.push("ALERTS".into());
    let mut rows = vec![header];
    for slo in &report.slos {
        let mut row = vec![
            format!("{}/{}", slo.service, slo.slo),
            format!("{}%", trim_float(slo.objective * 100.0)),
            slo.period_window.clone(),
            percent(slo.sli, 3),
            percent(slo.budget_remaining, 1),
        ];
        row.extend(slo.burn_rates.iter().map(|b| {
            b.burn_rate
                .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
        }));
        row.push(firing_summary(slo));
        rows.push(row);
    }
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nBurn rate = error ratio / error budget over the window (1 spends the budget exactly over the period). \
         \"-\" or \"no data\": no traffic in that window."
    );
    out
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_start_is_utc_first_of_month() {
        // 2024-03-15T12:00:00Z -> 2024-03-01T00:00:00Z
        assert_eq!(month_start(1_710_504_000), 1_709_251_200);
        // 2024-02-29T23:59:59Z -> 2024-02-01
        assert_eq!(month_start(1_709_251_199), 1_706_745_600);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn trims_objectives() {
        assert_eq!(trim_float(99.9), "99.9");
        assert_eq!(trim_float(99.0), "99");
    }
}
