//! `slo simulate`: when each generated alert fires for a given incident, how
//! much error budget is gone by then, and when it stops after the incident.
//!
//! Nothing here is estimated from a formula: the simulation replays what
//! Prometheus does. Counters are sampled every scrape interval; at every rule
//! evaluation, `rate()` / `increase()` are computed from those samples with
//! Prometheus's own extrapolation ([`extrapolated`], a transcription of
//! `extrapolatedRate` in Prometheus 2.x `promql/functions.go`, closed range
//! `[t - w, t]`), the error ratio is formed exactly as the recording rule's
//! PromQL does, compared with the alert's threshold (`factor * budget`, as
//! PromQL multiplies it), and the alert's `for` is applied the way the rule
//! manager does. A continuous-time ("ideal") crossing is reported next to it
//! so the cost of sampling shows.
//!
//! Assumptions (also in docs/slo-operations.md):
//! - traffic is constant, so counters grow linearly between changes of the
//!   bad-event fraction (ratios do not depend on the traffic level);
//! - every series of a request SLI exists from the start of history (slogate
//!   creates an operation's request counter for every outcome, at 0, with its
//!   first request); a job SLI's error series exists from its first
//!   non-zero sample, as with the Prometheus client's labelled counters (the
//!   jobs exporter creates it with the first failed job);
//! - scrapes happen at multiples of the scrape interval, rule evaluations at
//!   multiples of the evaluation interval, and every group is evaluated at
//!   the same instant with recordings first (what `promtool test rules` does
//!   with `group_eval_order`). A live Prometheus staggers groups, so an alert
//!   may read recordings up to one evaluation interval old.

use std::fmt::Write as _;

use serde::Serialize;

use crate::duration::PromDuration;
use crate::model::{Indicator, Selection, Slo, Source, Spec};
use crate::rules::{burn_alerts, Severity, BURN_ALERT, EXHAUSTED_ALERT};

/// What the incident breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A share of requests fails with `system_error` (availability and raw
    /// ratio SLOs).
    Errors,
    /// A share of requests becomes slower than every latency threshold
    /// (latency SLOs).
    SlowRequests,
}

/// A synthetic incident.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// What it breaks.
    pub kind: IncidentKind,
    /// Bad-event fraction once the incident is fully there, 0..=1.
    pub ratio: f64,
    /// Bad-event fraction before and after the incident, 0..=1.
    pub baseline: f64,
    /// Seconds the fraction takes to rise linearly from the baseline to
    /// `ratio`; 0 for a step.
    pub ramp_seconds: f64,
    /// Seconds from the start of the incident to its end (ramp included).
    pub duration_seconds: f64,
}

impl Incident {
    /// Whether the incident changes the SLI of `slo`.
    pub fn touches(&self, slo: &Slo) -> bool {
        matches!(
            (self.kind, &slo.indicator),
            (IncidentKind::Errors, Indicator::Availability(_))
                | (IncidentKind::Errors, Indicator::Ratio { .. })
                | (IncidentKind::SlowRequests, Indicator::Latency { .. })
        )
    }

    /// Bad-event fraction at `t` seconds after the incident started.
    pub fn fraction_at(&self, t: f64) -> f64 {
        if t < 0.0 || t >= self.duration_seconds {
            self.baseline
        } else if t < self.ramp_seconds {
            self.baseline + (self.ratio - self.baseline) * t / self.ramp_seconds
        } else {
            self.ratio
        }
    }

    /// ∫ fraction over `[a, b]` (seconds relative to the incident start).
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let ramp_end = self.ramp_seconds.min(self.duration_seconds);
        let pieces = [
            (f64::NEG_INFINITY, 0.0),
            (0.0, ramp_end),
            (ramp_end, self.duration_seconds),
            (self.duration_seconds, f64::INFINITY),
        ];
        let mut total = 0.0;
        for (i, (lo, hi)) in pieces.into_iter().enumerate() {
            let (x, y) = (a.max(lo), b.min(hi));
            if y <= x {
                continue;
            }
            total += match i {
                1 => {
                    let slope = (self.ratio - self.baseline) / self.ramp_seconds;
                    self.baseline * (y - x) + slope * (y * y - x * x) / 2.0
                }
                2 => self.ratio * (y - x),
                _ => self.baseline * (y - x),
            };
        }
        total
    }
}

/// How often Prometheus scrapes and evaluates rules, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Scrape interval.
    pub scrape_ms: i64,
    /// Rule evaluation interval.
    pub eval_ms: i64,
}

/// Which events a counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Events {
    /// Bad events (`system_error`, or requests slower than the threshold).
    Bad,
    /// Good events.
    Good,
    /// Every event (a histogram's `_count`).
    All,
}

/// A counter's samples: `value(t) = traffic × ∫ fraction` from the start of
/// history, sampled at multiples of the scrape interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counter<'a> {
    pub(crate) incident: &'a Incident,
    /// Incident start (absolute ms).
    pub(crate) start_ms: i64,
    /// Start of history (absolute ms); the counter is 0 there.
    pub(crate) history_ms: i64,
    /// Events per second.
    pub(crate) traffic: f64,
    /// What it counts.
    pub(crate) events: Events,
    /// Whether the series exists before its first non-zero sample.
    pub(crate) eager: bool,
    pub(crate) scrape_ms: i64,
}

impl Counter<'_> {
    fn rel(&self, ms: i64) -> f64 {
        (ms - self.start_ms) as f64 / 1000.0
    }

    /// Value at absolute time `ms`.
    pub(crate) fn value(&self, ms: i64) -> f64 {
        let (a, b) = (self.rel(self.history_ms), self.rel(ms));
        let events = match self.events {
            Events::Bad => self.incident.integral(a, b),
            Events::Good => (b - a) - self.incident.integral(a, b),
            Events::All => b - a,
        };
        self.traffic * events
    }

    /// Index of the first sample the series has.
    pub(crate) fn first_index(&self) -> Option<i64> {
        let first = div_ceil(self.history_ms, self.scrape_ms);
        if self.eager {
            return Some(first);
        }
        // Lazy series: the first sample with a positive value. The value is
        // non-decreasing, so search forward from history in growing steps.
        let positive = |k: i64| self.value(k * self.scrape_ms) > 0.0;
        let horizon = first + 10_000_000;
        let mut step = 1;
        let mut lo = first;
        while lo <= horizon && !positive(lo) {
            lo += step;
            step *= 2;
        }
        if lo > horizon {
            return None;
        }
        // Binary search between the last known non-positive and lo.
        let mut hi = lo;
        let mut low = (lo - step / 2).max(first);
        while low < hi {
            let mid = low + (hi - low) / 2;
            if positive(mid) {
                hi = mid;
            } else {
                low = mid + 1;
            }
        }
        Some(hi)
    }
}

fn div_ceil(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// Prometheus 2.x `extrapolatedRate` for a counter over `[t - w, t]` with
/// samples at multiples of `scrape_ms` from index `first`.
pub(crate) fn extrapolated(
    counter: &Counter<'_>,
    first: Option<i64>,
    t_ms: i64,
    w_ms: i64,
    is_rate: bool,
) -> Option<f64> {
    let first = first?;
    let s = counter.scrape_ms;
    let range_start = t_ms - w_ms;
    let k1 = div_ceil(range_start, s).max(first);
    let k2 = t_ms.div_euclid(s);
    if k2 - k1 < 1 {
        return None;
    }
    let (t1, t2) = (k1 * s, k2 * s);
    let (v1, v2) = (counter.value(t1), counter.value(t2));
    let mut result = v2 - v1;
    let mut duration_to_start = (t1 - range_start) as f64 / 1000.0;
    let duration_to_end = (t_ms - t2) as f64 / 1000.0;
    let sampled = (t2 - t1) as f64 / 1000.0;
    let average = sampled / (k2 - k1) as f64;
    if result > 0.0 && v1 >= 0.0 {
        let to_zero = sampled * (v1 / result);
        if to_zero < duration_to_start {
            duration_to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold {
        duration_to_start
    } else {
        average / 2.0
    };
    interval += if duration_to_end < threshold {
        duration_to_end
    } else {
        average / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= w_ms as f64 / 1000.0;
    }
    Some(result)
}

/// The two counters one SLO's error ratio reads, under one incident.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliSeries<'a> {
    /// Availability: `system_error` (lazy for jobs). Latency: `_count` (all events).
    first: Counter<'a>,
    first_index: Option<i64>,
    /// Availability: the good outcomes. Latency: the `le` bucket.
    second: Counter<'a>,
    second_index: Option<i64>,
    latency: bool,
}

impl<'a> SliSeries<'a> {
    pub(crate) fn new(
        slo: &Slo,
        incident: &'a Incident,
        start_ms: i64,
        history_ms: i64,
        traffic: f64,
        scrape_ms: i64,
    ) -> SliSeries<'a> {
        let counter = |events, eager| Counter {
            incident,
            start_ms,
            history_ms,
            traffic,
            events,
            eager,
            scrape_ms,
        };
        let latency = matches!(slo.indicator, Indicator::Latency { .. });
        // slogate creates an operation's request counter for every outcome with its first
        // request; the jobs exporter creates an outcome's series with its first job.
        let bad_eager = matches!(
            slo.indicator,
            Indicator::Availability(Selection {
                source: Source::Requests,
                ..
            })
        );
        let (first, second) = if latency {
            (counter(Events::All, true), counter(Events::Good, true))
        } else {
            (counter(Events::Bad, bad_eager), counter(Events::Good, true))
        };
        SliSeries {
            first_index: first.first_index(),
            first,
            second_index: second.first_index(),
            second,
            latency,
        }
    }

    /// The two counters (first, second) and the index of their first sample.
    pub(crate) fn counters(&self) -> [(Counter<'a>, Option<i64>); 2] {
        [
            (self.first, self.first_index),
            (self.second, self.second_index),
        ]
    }

    /// The recording rule's error ratio at `t` over `w`; `None` when the
    /// PromQL returns nothing (no traffic).
    pub(crate) fn error_ratio(&self, t_ms: i64, w_ms: i64, is_rate: bool) -> Option<f64> {
        let first = extrapolated(&self.first, self.first_index, t_ms, w_ms, is_rate);
        let second = extrapolated(&self.second, self.second_index, t_ms, w_ms, is_rate);
        if self.latency {
            // (sum(count) - (sum(bucket) or vector(0))) / (sum(count) > 0)
            let total = first?;
            return (total > 0.0).then(|| (total - second.unwrap_or(0.0)) / total);
        }
        // (sum(bad) or vector(0)) / (sum(all but canceled) > 0)
        let total = match (second, first) {
            (Some(g), Some(b)) => Some(g + b),
            (one, other) => one.or(other),
        }?;
        (total > 0.0).then(|| first.unwrap_or(0.0) / total)
    }
}

/// One alert rule of an SLO, as the simulation evaluates it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AlertRule {
    /// `SLOErrorBudgetBurn`: both windows above `factor * budget`.
    Burn {
        severity: Severity,
        tier: u8,
        long: PromDuration,
        short: PromDuration,
        factor: f64,
        threshold: f64,
    },
    /// `SLOErrorBudgetExhausted`: `1 - ratio(period) / budget <= 0` for 5m.
    Exhausted { period: PromDuration, budget: f64 },
}

/// `for` of the exhausted alert, as generated.
const EXHAUSTED_FOR_MS: i64 = 300_000;

impl AlertRule {
    pub(crate) fn all(slo: &Slo) -> Vec<AlertRule> {
        let period = slo.period.window();
        let budget = slo.error_budget();
        let mut rules: Vec<AlertRule> = burn_alerts()
            .iter()
            .map(|a| {
                let factor = a.factor(period);
                AlertRule::Burn {
                    severity: a.severity,
                    tier: a.tier,
                    long: a.long,
                    short: a.short,
                    factor: factor.to_f64(),
                    threshold: factor.to_f64() * budget.to_f64(),
                }
            })
            .collect();
        rules.push(AlertRule::Exhausted {
            period,
            budget: budget.to_f64(),
        });
        rules
    }

    fn for_ms(&self) -> i64 {
        match self {
            AlertRule::Burn { .. } => 0,
            AlertRule::Exhausted { .. } => EXHAUSTED_FOR_MS,
        }
    }

    fn longest_ms(&self) -> i64 {
        let secs = match self {
            AlertRule::Burn { long, .. } => long.as_secs(),
            AlertRule::Exhausted { period, .. } => period.as_secs(),
        };
        secs as i64 * 1000
    }

    /// Whether the alert expression returns a series at `t`.
    pub(crate) fn condition(&self, sli: &SliSeries<'_>, t_ms: i64) -> bool {
        match *self {
            AlertRule::Burn {
                long,
                short,
                threshold,
                ..
            } => {
                let over = |w: PromDuration| {
                    sli.error_ratio(t_ms, w.as_secs() as i64 * 1000, true)
                        .is_some_and(|r| r > threshold)
                };
                over(long) && over(short)
            }
            AlertRule::Exhausted { period, budget } => {
                let is_rate = crate::rules::ALERT_WINDOWS.contains(&period);
                sli.error_ratio(t_ms, period.as_secs() as i64 * 1000, is_rate)
                    .is_some_and(|r| 1.0 - r / budget <= 0.0)
            }
        }
    }

    /// The continuous-time condition: mean bad fraction over the windows.
    /// `history` is the seconds of traffic before the incident: windows
    /// reaching further back only see that much.
    fn ideal_condition(&self, incident: &Incident, t: f64, history: f64) -> bool {
        let mean = |w: PromDuration| {
            let w = (w.as_secs() as f64).min(t + history);
            incident.integral(t - w, t) / w
        };
        match *self {
            AlertRule::Burn {
                long,
                short,
                threshold,
                ..
            } => mean(long) > threshold && mean(short) > threshold,
            AlertRule::Exhausted { period, budget } => mean(period) >= budget,
        }
    }
}

/// Prometheus's alert state machine over evaluation ticks: firing at `t` when
/// the condition held at every tick since it became active and `t - active
/// >= for`.
pub(crate) struct AlertState {
    active_since: Option<i64>,
    for_ms: i64,
}

impl AlertState {
    pub(crate) fn new(for_ms: i64) -> AlertState {
        AlertState {
            active_since: None,
            for_ms,
        }
    }

    /// Feeds one evaluation; returns whether the alert is firing after it.
    pub(crate) fn step(&mut self, t_ms: i64, condition: bool) -> bool {
        if !condition {
            self.active_since = None;
            return false;
        }
        let since = *self.active_since.get_or_insert(t_ms);
        t_ms - since >= self.for_ms
    }
}

/// How each alert of one SLO behaves during the incident.
#[derive(Clone, Debug, Serialize)]
pub struct SloSimulation {
    /// `sloth_id`.
    pub id: String,
    /// Service.
    pub service: String,
    /// SLO name (`sloth_slo`).
    pub slo: String,
    /// `availability`, `latency` or `ratio`.
    pub category: String,
    /// Objective as a ratio, e.g. 0.999.
    pub objective: f64,
    /// Error budget as a ratio.
    pub error_budget: f64,
    /// The period, e.g. `30d`.
    pub period: String,
    /// Per alert.
    pub alerts: Vec<AlertSimulation>,
}

/// One alert's predicted behaviour. Times in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct AlertSimulation {
    /// `SLOErrorBudgetBurn` or `SLOErrorBudgetExhausted`.
    pub alert: String,
    /// `page` or `ticket`.
    pub severity: Severity,
    /// Burn alerts: 1 (fastest) to 4.
    pub tier: Option<u8>,
    /// Long window (the period for the exhausted alert).
    pub long_window: String,
    /// Short window (burn alerts).
    pub short_window: Option<String>,
    /// Burn-rate factor (1 for the exhausted alert).
    pub burn_rate_threshold: f64,
    /// The error ratio both windows must exceed.
    pub error_ratio_threshold: f64,
    /// The rule's `for`.
    pub for_seconds: f64,
    /// Continuous time (no scrapes, no evaluation ticks) after which the
    /// condition holds, plus `for`; `None` if never.
    pub ideal_fires_after: Option<f64>,
    /// First evaluation at which the alert fires, after the incident start;
    /// `None` if it never does.
    pub fires_after: Option<f64>,
    /// Share of the period's error budget the incident has spent by then.
    pub budget_spent_at_fire: Option<f64>,
    /// First evaluation after the incident's end at which it no longer fires.
    pub resolves_after_end: Option<f64>,
    /// Whether it still fires at the end of the simulated horizon.
    pub still_firing_at_horizon: bool,
    /// Whether the baseline alone already fires it before the incident.
    pub firing_before_incident: bool,
}

/// The whole simulation.
#[derive(Clone, Debug, Serialize)]
pub struct Simulation {
    /// The spec file.
    pub spec: String,
    /// The incident.
    pub incident: Incident,
    /// Scrape interval, seconds.
    pub scrape_interval: f64,
    /// Rule evaluation interval, seconds.
    pub evaluation_interval: f64,
    /// Seconds after the last evaluation before the incident at which it
    /// starts.
    pub start_offset: f64,
    /// Seconds of healthy traffic before the incident, when limited
    /// (`--history`); otherwise long enough for every window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<f64>,
    /// Every SLO the incident touches.
    pub slos: Vec<SloSimulation>,
}

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A flag out of range.
    #[error("{0}")]
    BadInput(String),
    /// No SLO is touched.
    #[error("{spec}: the incident touches no SLO ({what}){filter}")]
    NothingTouched {
        /// The spec file.
        spec: String,
        /// What kind of SLO the incident needs.
        what: &'static str,
        /// The --slo filter, if any.
        filter: String,
    },
}

/// Simulates `incident` against every SLO of `spec` it touches (or only
/// those named in `only`, by `sloth_slo` or spec name).
pub fn simulate(
    spec: &Spec,
    incident: &Incident,
    sampling: Sampling,
    start_offset_ms: i64,
    only: &[String],
) -> Result<Simulation, SimulateError> {
    simulate_with_history(spec, incident, sampling, start_offset_ms, only, None)
}

/// [`simulate`] with only `history_ms` of traffic before the incident (a
/// service that just started, or a test): counters start at zero then.
pub fn simulate_with_history(
    spec: &Spec,
    incident: &Incident,
    sampling: Sampling,
    start_offset_ms: i64,
    only: &[String],
    history_ms: Option<i64>,
) -> Result<Simulation, SimulateError> {
    validate(incident, sampling, start_offset_ms)?;
    if history_ms.is_some_and(|h| h < 0) {
        return Err(SimulateError::BadInput(
            "--history must not be negative".into(),
        ));
    }
    let slos: Vec<&Slo> = spec
        .slos
        .iter()
        .filter(|s| incident.touches(s))
        .filter(|s| only.is_empty() || only.iter().any(|n| *n == s.name || *n == s.spec_name))
        .collect();
    if slos.is_empty() {
        return Err(SimulateError::NothingTouched {
            spec: spec.source.clone(),
            what: match incident.kind {
                IncidentKind::Errors => "error incidents touch availability SLOs",
                IncidentKind::SlowRequests => "slow-request incidents touch latency SLOs",
            },
            filter: if only.is_empty() {
                String::new()
            } else {
                format!(" among --slo {}", only.join(", "))
            },
        });
    }
    let slos = slos
        .into_iter()
        .map(|slo| simulate_slo(slo, incident, sampling, start_offset_ms, history_ms))
        .collect();
    Ok(Simulation {
        spec: spec.source.clone(),
        incident: *incident,
        scrape_interval: sampling.scrape_ms as f64 / 1000.0,
        evaluation_interval: sampling.eval_ms as f64 / 1000.0,
        start_offset: start_offset_ms as f64 / 1000.0,
        history: history_ms.map(|h| h as f64 / 1000.0),
        slos,
    })
}

fn validate(incident: &Incident, sampling: Sampling, offset: i64) -> Result<(), SimulateError> {
    let bad = |m: String| Err(SimulateError::BadInput(m));
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    if !unit(incident.ratio) || !unit(incident.baseline) {
        return bad(format!(
            "the incident ratio ({}) and baseline ({}) must be between 0% and 100%",
            incident.ratio, incident.baseline
        ));
    }
    if incident.ratio <= incident.baseline {
        return bad(format!(
            "the incident ratio ({}) must be above the baseline ({})",
            incident.ratio, incident.baseline
        ));
    }
    if incident.duration_seconds <= 0.0 || incident.ramp_seconds < 0.0 {
        return bad("--duration must be positive and --ramp not negative".into());
    }
    if sampling.scrape_ms <= 0 || sampling.eval_ms <= 0 {
        return bad("--scrape-interval and --eval-interval must be positive".into());
    }
    if !(0..sampling.eval_ms).contains(&offset) {
        return bad("--start-offset must be shorter than --eval-interval".into());
    }
    Ok(())
}

fn simulate_slo(
    slo: &Slo,
    incident: &Incident,
    sampling: Sampling,
    start_offset_ms: i64,
    history: Option<i64>,
) -> SloSimulation {
    let rules = AlertRule::all(slo);
    // Incident at `start_offset` after an evaluation (and a scrape, when the
    // intervals line up); history long enough for every window.
    let start_ms = start_offset_ms;
    let longest = rules.iter().map(AlertRule::longest_ms).max().unwrap_or(0);
    let history_ms = history.map_or(-(2 * longest + 2 * sampling.scrape_ms), |h| start_ms - h);
    let sli = SliSeries::new(slo, incident, start_ms, history_ms, 1.0, sampling.scrape_ms);
    let period_secs = slo.period.window().as_secs() as f64;
    let budget = slo.error_budget().to_f64();
    let end_ms = start_ms + (incident.duration_seconds * 1000.0).ceil() as i64;
    let alerts = rules
        .iter()
        .map(|rule| {
            let horizon = end_ms + rule.longest_ms() + rule.for_ms() + 2 * sampling.eval_ms;
            let run = run_alert(rule, &sli, sampling.eval_ms, start_ms, end_ms, horizon);
            let rel = |ms: i64| (ms - start_ms) as f64 / 1000.0;
            let fires_after = run.first_firing.map(rel);
            let history_s = (start_ms - history_ms) as f64 / 1000.0;
            let ideal = ideal_crossing(rule, incident, horizon - start_ms, history_s)
                .map(|t| t + rule.for_ms() as f64 / 1000.0);
            let (alert, severity, tier, long, short, factor, threshold) = match *rule {
                AlertRule::Burn {
                    severity,
                    tier,
                    long,
                    short,
                    factor,
                    threshold,
                } => (
                    BURN_ALERT,
                    severity,
                    Some(tier),
                    long,
                    Some(short.to_string()),
                    factor,
                    threshold,
                ),
                AlertRule::Exhausted { period, budget } => (
                    EXHAUSTED_ALERT,
                    Severity::Ticket,
                    None,
                    period,
                    None,
                    1.0,
                    budget,
                ),
            };
            AlertSimulation {
                alert: alert.to_string(),
                severity,
                tier,
                long_window: long.to_string(),
                short_window: short,
                burn_rate_threshold: factor,
                error_ratio_threshold: threshold,
                for_seconds: rule.for_ms() as f64 / 1000.0,
                ideal_fires_after: ideal,
                fires_after,
                budget_spent_at_fire: fires_after
                    .map(|t| incident.integral(0.0, t) / (budget * period_secs)),
                resolves_after_end: run.resolved.map(|ms| (ms - end_ms) as f64 / 1000.0),
                still_firing_at_horizon: run.first_firing.is_some() && run.resolved.is_none(),
                firing_before_incident: run.firing_before,
            }
        })
        .collect();
    SloSimulation {
        id: slo.id(),
        service: slo.service.clone(),
        slo: slo.name.clone(),
        category: slo.category().to_string(),
        objective: slo.objective().to_f64(),
        error_budget: budget,
        period: slo.period.to_string(),
        alerts,
    }
}

struct AlertRun {
    firing_before: bool,
    first_firing: Option<i64>,
    resolved: Option<i64>,
}

/// Evaluates `rule` at every tick from just before the incident to the
/// horizon.
fn run_alert(
    rule: &AlertRule,
    sli: &SliSeries<'_>,
    eval_ms: i64,
    start_ms: i64,
    end_ms: i64,
    horizon_ms: i64,
) -> AlertRun {
    let mut state = AlertState::new(rule.for_ms());
    // Warm the state machine over the `for` before the incident.
    let mut t = (start_ms - rule.for_ms() - eval_ms).div_euclid(eval_ms) * eval_ms;
    let mut firing_before = false;
    let mut first_firing = None;
    let mut resolved = None;
    while t <= horizon_ms {
        let firing = state.step(t, rule.condition(sli, t));
        if t < start_ms {
            firing_before = firing;
        } else if firing && first_firing.is_none() {
            first_firing = Some(t);
        }
        if t >= end_ms && !firing && first_firing.is_some() {
            resolved = Some(t);
            break;
        }
        if t >= end_ms && first_firing.is_none() && t > end_ms + rule.for_ms() + eval_ms {
            // The incident is over and the alert never fired: the windows
            // only get better from here.
            break;
        }
        t += eval_ms;
    }
    AlertRun {
        firing_before,
        first_firing,
        resolved,
    }
}

/// First time (seconds after the start) at which the continuous condition
/// holds: a 1-second scan, then bisection to the millisecond.
fn ideal_crossing(
    rule: &AlertRule,
    incident: &Incident,
    horizon_ms: i64,
    history: f64,
) -> Option<f64> {
    let horizon = horizon_ms as f64 / 1000.0;
    let mut previous = 0.0;
    let mut t = 0.0;
    while t <= horizon {
        if rule.ideal_condition(incident, t, history) {
            let (mut lo, mut hi) = (previous, t);
            while hi - lo > 0.0005 {
                let mid = (lo + hi) / 2.0;
                if rule.ideal_condition(incident, mid, history) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            return Some((hi * 1000.0).round() / 1000.0);
        }
        previous = t;
        t += 1.0;
    }
    None
}

/// Seconds as `52s`, `1m30s`, `2h`, `51.84s`.
pub fn human_seconds(seconds: f64) -> String {
    let rounded = (seconds * 100.0).round() / 100.0;
    let whole = rounded.trunc();
    let fraction = rounded - whole;
    if fraction.abs() > 1e-9 {
        let minutes = (whole / 60.0).trunc();
        let rest = rounded - minutes * 60.0;
        let rest = format!("{rest:.2}");
        let rest = rest.trim_end_matches('0').trim_end_matches('.');
        return if minutes > 0.0 {
            format!("{}{rest}s", PromDuration::from_secs(minutes as u64 * 60))
        } else {
            format!("{rest}s")
        };
    }
    if whole <= 0.0 {
        return "0s".into();
    }
    PromDuration::from_secs(whole as u64).to_string()
}

fn percent(value: f64) -> String {
    let text = format!("{:.2}", value * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The incident in words.
pub fn describe_incident(incident: &Incident) -> String {
    let what = match incident.kind {
        IncidentKind::Errors => "of requests fail (system_error)",
        IncidentKind::SlowRequests => "of requests slower than the latency threshold",
    };
    let shape = if incident.ramp_seconds > 0.0 {
        format!(
            "ramping up from {} over {}",
            percent(incident.baseline),
            human_seconds(incident.ramp_seconds)
        )
    } else {
        format!("a step from {}", percent(incident.baseline))
    };
    format!(
        "{} {what}, {shape}, for {}",
        percent(incident.ratio),
        human_seconds(incident.duration_seconds)
    )
}

/// Renders a simulation as an aligned table.
pub fn render_simulation(sim: &Simulation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Incident: {}.\nPrometheus: scrape every {}, rules evaluated every {}; the incident starts {} after an evaluation.\n",
        describe_incident(&sim.incident),
        human_seconds(sim.scrape_interval),
        human_seconds(sim.evaluation_interval),
        human_seconds(sim.start_offset),
    );
    if let Some(h) = sim.history {
        let _ = writeln!(
            out,
            "Only {} of healthy traffic before the incident.\n",
            human_seconds(h)
        );
    }
    let mut rows = vec![vec![
        "SLO".to_string(),
        "ALERT".into(),
        "FIRES AFTER".into(),
        "IDEAL".into(),
        "BUDGET SPENT".into(),
        "RESOLVES AFTER END".into(),
    ]];
    for slo in &sim.slos {
        for a in &slo.alerts {
            let alert = match (a.tier, &a.short_window) {
                (Some(tier), Some(short)) => format!(
                    "{} tier {tier} {}/{} > {}x",
                    a.severity.as_str(),
                    a.long_window,
                    short,
                    a.burn_rate_threshold
                ),
                _ => format!(
                    "exhausted {} (for {})",
                    a.long_window,
                    human_seconds(a.for_seconds)
                ),
            };
            let fires = match (a.firing_before_incident, a.fires_after) {
                (true, _) => "already firing".to_string(),
                (false, Some(t)) => human_seconds(t),
                (false, None) => "never".to_string(),
            };
            let resolves = match (a.resolves_after_end, a.still_firing_at_horizon) {
                (Some(t), _) => human_seconds(t),
                (None, true) => "still firing".into(),
                (None, false) => "-".into(),
            };
            rows.push(vec![
                format!("{}/{}", slo.service, slo.slo),
                alert,
                fires,
                a.ideal_fires_after.map_or("never".into(), human_seconds),
                a.budget_spent_at_fire.map_or("-".into(), percent),
                resolves,
            ]);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(
        "\nFIRES AFTER: first rule evaluation at which the alert fires, from Prometheus's rate() \
         extrapolation over the scraped samples. IDEAL: the same condition in continuous time. \
         BUDGET SPENT: share of the period's error budget gone by FIRES AFTER. A live Prometheus \
         may add up to one evaluation interval (rule groups are staggered).\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(ratio: f64) -> Incident {
        Incident {
            kind: IncidentKind::Errors,
            ratio,
            baseline: 0.0,
            ramp_seconds: 0.0,
            duration_seconds: 3_600.0,
        }
    }

    #[test]
    fn integrates_steps_and_ramps() {
        let i = step(0.5);
        assert_eq!(i.integral(-10.0, 10.0), 5.0);
        assert_eq!(i.integral(3_590.0, 3_700.0), 5.0);
        let ramp = Incident {
            ramp_seconds: 100.0,
            ..i
        };
        assert!((ramp.integral(0.0, 100.0) - 25.0).abs() < 1e-9);
        assert!((ramp.integral(0.0, 200.0) - 75.0).abs() < 1e-9);
        assert_eq!(ramp.fraction_at(50.0), 0.25);
    }

    #[test]
    fn rate_of_a_linear_counter_is_exact() {
        let healthy = step(0.0);
        let c = Counter {
            incident: &healthy,
            start_ms: 0,
            history_ms: -100_000_000,
            traffic: 3.0,
            events: Events::Good,
            eager: true,
            scrape_ms: 15_000,
        };
        let first = c.first_index();
        let r = extrapolated(&c, first, 1_234_000, 3_600_000, true).expect("rate");
        assert!((r - 3.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn a_lazy_counter_extrapolates_back_to_its_zero_point() {
        let outage = step(1.0);
        let c = Counter {
            incident: &outage,
            start_ms: 0,
            history_ms: -100_000_000,
            traffic: 1.0,
            events: Events::Bad,
            eager: false,
            scrape_ms: 15_000,
        };
        let first = c.first_index();
        assert_eq!(first, Some(1));
        // Samples at 15s (15), 30s (30); one sample only at 15s -> nothing.
        assert_eq!(extrapolated(&c, first, 20_000, 3_600_000, false), None);
        // At 45s: 30 between 15s and 45s; the zero point (15s before the
        // first sample) is within 1.1 intervals, so Prometheus 2.x
        // extrapolates back to it: 45.
        let v = extrapolated(&c, first, 45_000, 3_600_000, false).expect("increase");
        assert!((v - 45.0).abs() < 1e-9, "{v}");
        // A 20s window at 45s: samples at 30s and 45s, extrapolated 5s back
        // to the window start (the zero point is further): 20.
        let v = extrapolated(&c, first, 45_000, 20_000, false).expect("increase");
        assert!((v - 20.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(51.84), "51.84s");
        assert_eq!(human_seconds(60.0), "1m");
        assert_eq!(human_seconds(129.6), "2m9.6s");
        assert_eq!(human_seconds(3_660.0), "1h1m");
    }

    #[test]
    fn the_state_machine_waits_for_for() {
        let mut s = AlertState::new(300_000);
        assert!(!s.step(0, true));
        assert!(!s.step(60_000, true));
        assert!(s.step(300_000, true));
        assert!(!s.step(360_000, false));
    }
}
