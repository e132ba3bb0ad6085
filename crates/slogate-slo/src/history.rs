//! `slo report --since 30d`: alert episodes over Prometheus's history, with
//! time to detect, time to recover and the budget each spent.
//!
//! - An episode is a run of evaluations at which any `SLOErrorBudgetBurn`
//!   alert of the SLO fires (`ALERTS{alertstate="firing"}`). When it fired
//!   comes from `ALERTS_FOR_STATE` (the alert's `activeAt`, to the second;
//!   the burn alerts have no `for`, so that is when they started firing),
//!   else from the first `ALERTS` sample, at step resolution.
//! - The SLI is "bad" while the 5-minute error ratio is above the error budget
//!   (a burn rate above 1). Time to detect: from the start of the bad run that
//!   led to the alert to the first firing evaluation. Time to recover: from
//!   the same start to the first evaluation at which the SLI is good again.
//! - Budget spent: the bad events between the last good evaluation and the
//!   recovery, over the bad events the period allows (budget × the period's
//!   events, counted at the recovery).
//!
//! Times are at `--step` resolution; the step must be at least the rule
//! evaluation interval.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{Slo, Spec};
use crate::promql::RangeFn;
use crate::report::{Prometheus, ReportError};
use crate::rules::BURN_ALERT;
use crate::simulate::human_seconds;

/// One alert episode.
#[derive(Clone, Debug, Serialize)]
pub struct Episode {
    /// The alerts that fired during it, e.g. `page tier 1`.
    pub alerts: Vec<String>,
    /// When the SLI went bad (Unix seconds).
    pub sli_bad_since: f64,
    /// First firing evaluation.
    pub fired_at: f64,
    /// Last firing evaluation.
    pub last_firing_at: f64,
    /// First evaluation with a good SLI after it went bad; `None` if still bad.
    pub sli_recovered_at: Option<f64>,
    /// `fired_at - sli_bad_since`, seconds.
    pub time_to_detect: f64,
    /// `sli_recovered_at - sli_bad_since`, seconds.
    pub time_to_recover: Option<f64>,
    /// Share of the period's error budget spent (1 = all of it).
    pub budget_spent: Option<f64>,
}

/// One SLO's history.
#[derive(Clone, Debug, Serialize)]
pub struct SloHistory {
    /// `sloth_id`.
    pub id: String,
    /// Service.
    pub service: String,
    /// SLO name.
    pub slo: String,
    /// The episodes, oldest first.
    pub episodes: Vec<Episode>,
    /// Mean time to detect, seconds.
    pub mean_time_to_detect: Option<f64>,
    /// Worst time to detect, seconds.
    pub worst_time_to_detect: Option<f64>,
    /// Mean time to recover, seconds (recovered episodes).
    pub mean_time_to_recover: Option<f64>,
    /// Worst time to recover, seconds.
    pub worst_time_to_recover: Option<f64>,
    /// Budget spent by all episodes together.
    pub budget_spent: Option<f64>,
}

/// The history report.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    /// The Prometheus asked.
    pub prometheus: String,
    /// Unix seconds: from.
    pub start: f64,
    /// Unix seconds: to.
    pub end: f64,
    /// Resolution, seconds.
    pub step: f64,
    /// Per SLO.
    pub slos: Vec<SloHistory>,
}

/// Builds the history report over `[end - since, end]`.
pub fn build_history(
    spec: &Spec,
    prometheus: &Prometheus,
    since: f64,
    end: f64,
    step: f64,
) -> Result<History, ReportError> {
    let start = end - since;
    let mut slos = Vec::new();
    for slo in &spec.slos {
        slos.push(slo_history(slo, prometheus, start, end, step)?);
    }
    Ok(History {
        prometheus: prometheus.url().to_string(),
        start,
        end,
        step,
        slos,
    })
}

fn alerts_selector(slo: &Slo) -> String {
    format!(
        "ALERTS{{alertname=\"{BURN_ALERT}\",alertstate=\"firing\",sloth_id=\"{}\"}}",
        slo.id()
    )
}

/// Runs of consecutive step points: (first, last).
fn runs(times: &[f64], step: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some((_, last)) if t - *last <= step * 1.5 => *last = t,
            _ => out.push((t, t)),
        }
    }
    out
}

fn slo_history(
    slo: &Slo,
    prometheus: &Prometheus,
    start: f64,
    end: f64,
    step: f64,
) -> Result<SloHistory, ReportError> {
    // Samples within (t - step, t]: each firing evaluation counts once.
    let window = format!("{}s", (step.round() as u64).saturating_sub(1).max(1));
    // Any sample within the step counts, so backfilled series without
    // staleness markers end where their samples end.
    let per_tier = prometheus.query_range(
        &format!("count_over_time({}[{window}])", alerts_selector(slo)),
        start,
        end,
        step,
    )?;
    let mut firing: Vec<f64> = per_tier
        .iter()
        .flat_map(|s| s.points().into_iter().map(|(t, _)| t))
        .collect();
    firing.sort_by(f64::total_cmp);
    firing.dedup();
    let for_state = prometheus.query_range(
        &format!(
            "min(ALERTS_FOR_STATE{{alertname=\"{BURN_ALERT}\",sloth_id=\"{}\"}})",
            slo.id()
        ),
        start,
        end,
        step,
    )?;
    let active_at: Vec<(f64, f64)> = for_state.first().map(|s| s.points()).unwrap_or_default();
    let budget = slo.error_budget().to_f64();
    // The SLI from a little before the range, to find where bad runs began.
    let lookback = 6.0 * 3_600.0;
    let ratio = prometheus.query_range(
        &slo.error_ratio_expr(RangeFn::Rate, "5m"),
        start - lookback,
        end,
        step,
    )?;
    let sli: Vec<(f64, f64)> = ratio.first().map(|s| s.points()).unwrap_or_default();
    let bad = |t: f64| {
        sli.iter()
            .find(|(ts, _)| (*ts - t).abs() < step / 2.0)
            .is_some_and(|(_, r)| *r > budget)
    };
    let mut episodes = Vec::new();
    for (fired, last) in runs(&firing, step) {
        let alerts: Vec<String> = per_tier
            .iter()
            .filter(|s| s.points().iter().any(|(t, _)| *t >= fired && *t <= last))
            .map(|s| {
                format!(
                    "{} tier {}",
                    s.metric.get("severity").map_or("?", String::as_str),
                    s.metric.get("tier").map_or("?", String::as_str)
                )
            })
            .collect();
        // The bad run that led to the alert: the last bad point at or before
        // it, then back while bad.
        let mut t = fired;
        while t >= start - lookback && !bad(t) {
            t -= step;
        }
        let bad_since = if t < start - lookback {
            fired
        } else {
            while bad(t - step) {
                t -= step;
            }
            t
        };
        // activeAt of the alerts firing in this episode, when recorded.
        let fired_exact = active_at
            .iter()
            .filter(|(t, v)| *t >= fired && *t <= last && *v > fired - 2.0 * step && *v <= fired)
            .map(|(_, v)| *v)
            .reduce(f64::min)
            .unwrap_or(fired);
        let mut r = bad_since;
        while r <= end && bad(r) {
            r += step;
        }
        let recovered = (r <= end).then_some(r);
        let budget_spent = match recovered {
            Some(rec) => spent(slo, prometheus, bad_since - step, rec)?,
            None => None,
        };
        episodes.push(Episode {
            alerts,
            sli_bad_since: bad_since,
            fired_at: fired_exact,
            last_firing_at: last,
            sli_recovered_at: recovered,
            time_to_detect: fired_exact - bad_since,
            time_to_recover: recovered.map(|r| r - bad_since),
            budget_spent,
        });
    }
    let detect: Vec<f64> = episodes.iter().map(|e| e.time_to_detect).collect();
    let recover: Vec<f64> = episodes.iter().filter_map(|e| e.time_to_recover).collect();
    let spent_all: Vec<f64> = episodes.iter().filter_map(|e| e.budget_spent).collect();
    Ok(SloHistory {
        id: slo.id(),
        service: slo.service.clone(),
        slo: slo.name.clone(),
        mean_time_to_detect: mean(&detect),
        worst_time_to_detect: worst(&detect),
        mean_time_to_recover: mean(&recover),
        worst_time_to_recover: worst(&recover),
        budget_spent: (!spent_all.is_empty()).then(|| spent_all.iter().sum()),
        episodes,
    })
}

/// Bad events in `[from, to]` over the bad events the period allows.
fn spent(
    slo: &Slo,
    prometheus: &Prometheus,
    from: f64,
    to: f64,
) -> Result<Option<f64>, ReportError> {
    let span = format!("{}s", (to - from).round().max(1.0) as u64);
    let period = slo.period.window().to_string();
    let (Some(total_span), Some(total_period)) = (
        slo.total_events_expr(RangeFn::Increase, &span),
        slo.total_events_expr(RangeFn::Increase, &period),
    ) else {
        return Ok(None);
    };
    let ratio = prometheus.query_value(&slo.error_ratio_expr(RangeFn::Increase, &span), to)?;
    let events = prometheus.query_value(&total_span, to)?;
    let allowed = prometheus
        .query_value(&total_period, to)?
        .map(|n| n * slo.error_budget().to_f64());
    Ok(match (ratio, events, allowed) {
        (Some(r), Some(n), Some(a)) if a > 0.0 => Some(r * n / a),
        _ => None,
    })
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn worst(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::max)
}

fn utc(secs: f64) -> String {
    let secs = secs.round() as i64;
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (y, m, d) = crate::report::civil_from_days_pub(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

fn opt_secs(v: Option<f64>) -> String {
    v.map_or("-".into(), human_seconds)
}

fn opt_percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Renders the history as text.
pub fn render_history(history: &History) -> String {
    let mut out = format!(
        "Alert episodes from {} to {} ({}), at {} resolution.\n",
        utc(history.start),
        utc(history.end),
        history.prometheus,
        human_seconds(history.step)
    );
    for slo in &history.slos {
        let _ = writeln!(
            out,
            "\n{}/{}: {} episode(s); time to detect mean {} worst {}; time to recover mean {} worst {}; budget spent {}",
            slo.service,
            slo.slo,
            slo.episodes.len(),
            opt_secs(slo.mean_time_to_detect),
            opt_secs(slo.worst_time_to_detect),
            opt_secs(slo.mean_time_to_recover),
            opt_secs(slo.worst_time_to_recover),
            opt_percent(slo.budget_spent),
        );
        for e in &slo.episodes {
            let _ = writeln!(
                out,
                "  SLI bad {}  fired {} (detect {})  last firing {}  SLI recovered {} (recover {})  budget {}  [{}]",
                utc(e.sli_bad_since),
                utc(e.fired_at),
                human_seconds(e.time_to_detect),
                utc(e.last_firing_at),
                e.sli_recovered_at.map_or("not yet".into(), utc),
                opt_secs(e.time_to_recover),
                opt_percent(e.budget_spent),
                e.alerts.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_on_gaps() {
        assert_eq!(
            runs(&[0.0, 60.0, 120.0, 600.0, 660.0], 60.0),
            [(0.0, 120.0), (600.0, 660.0)]
        );
        assert_eq!(utc(0.0), "1970-01-01 00:00:00Z");
    }
}
