//! What the client saw, per operation: outcomes, statuses, and latency histograms.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::counts::{OpKey, OutcomeCounts};

use super::client::{Exchange, Failure};

/// Highest latency recorded: an hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds (3 significant digits).
pub fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_MICROS, 3) {
        Ok(h) => h,
        // Only bounds with low < 1, high < 2 * low or more than 5 digits are refused.
        Err(e) => unreachable!("constant histogram bounds refused: {e:?}"),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).max(1)
}

/// What the client saw of one operation.
#[derive(Clone, Debug)]
pub struct ClientOp {
    /// Outcomes, classified with slogate's rules.
    pub outcomes: OutcomeCounts,
    /// Statuses (`200`, `502`, `timeout`, `200+cut`, ...).
    pub statuses: BTreeMap<String, u64>,
    /// Latency from the scheduled send time (free of coordinated omission).
    pub latency: Histogram<u64>,
    /// Latency from the actual send time (what the proxy can see).
    pub service: Histogram<u64>,
    /// Outcomes of requests slogate answered itself (`413` over `server.max_body_size`):
    /// the upstream never saw them.
    pub answered_by_proxy: OutcomeCounts,
}

impl Default for ClientOp {
    fn default() -> Self {
        ClientOp {
            outcomes: OutcomeCounts::default(),
            statuses: BTreeMap::new(),
            latency: histogram(),
            service: histogram(),
            answered_by_proxy: OutcomeCounts::default(),
        }
    }
}

impl ClientOp {
    /// Adds another operation's records (when two names share a label).
    pub fn merge(&mut self, other: &ClientOp) {
        self.outcomes.merge(&other.outcomes);
        self.answered_by_proxy.merge(&other.answered_by_proxy);
        for (s, n) in &other.statuses {
            *self.statuses.entry(s.clone()).or_insert(0) += n;
        }
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
    }
}

/// Everything the client saw.
#[derive(Clone, Debug)]
pub struct ClientView {
    /// Per operation label.
    pub ops: BTreeMap<OpKey, ClientOp>,
    /// HTTP requests sent.
    pub http_requests: u64,
    /// Requests the client gave up on.
    pub timeouts: u64,
    /// Requests without a (complete) response.
    pub transport_errors: u64,
    /// Operations that were system errors or canceled.
    pub errors: u64,
    /// All requests' latency from schedule, for the progress line.
    pub all: Histogram<u64>,
    /// When the load started.
    pub started: Instant,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Default for ClientView {
    fn default() -> Self {
        ClientView {
            ops: BTreeMap::new(),
            http_requests: 0,
            timeouts: 0,
            transport_errors: 0,
            errors: 0,
            all: histogram(),
            started: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }
}

impl ClientView {
    /// Records one exchange whose operations slogate labels `keys`, scheduled at `intended`;
    /// `by_proxy` when slogate answers it without the upstream.
    pub fn record(&mut self, keys: &[OpKey], ex: &Exchange, intended: Instant, by_proxy: bool) {
        self.http_requests += 1;
        match ex.failure {
            Some(Failure::Timeout) => self.timeouts += 1,
            Some(Failure::Transport) => self.transport_errors += 1,
            None => {}
        }
        let latency = micros(ex.done.saturating_duration_since(intended));
        let service = micros(ex.done.saturating_duration_since(ex.sent));
        self.all.saturating_record(latency);
        let status = ex.status_label();
        for (key, outcome) in keys.iter().zip(&ex.outcomes) {
            let op = self.ops.entry(key.clone()).or_default();
            op.outcomes.add(*outcome, 1);
            if by_proxy {
                op.answered_by_proxy.add(*outcome, 1);
            }
            *op.statuses.entry(status.clone()).or_insert(0) += 1;
            op.latency.saturating_record(latency);
            op.service.saturating_record(service);
            if matches!(
                outcome,
                slogate_core::Outcome::SystemError | slogate_core::Outcome::Canceled
            ) {
                self.errors += 1;
            }
        }
    }

    /// Operations recorded.
    pub fn operations(&self) -> u64 {
        self.ops.values().map(|o| o.outcomes.total()).sum()
    }
}
