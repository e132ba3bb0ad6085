//! Latency distributions the mock draws from.

use std::time::Duration;

use crate::rng::Rng;

/// The standard normal quantile of 0.99.
const Z99: f64 = 2.326_347_874;

/// A latency distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Log-normal with the given median and 99th percentile, capped.
    LogNormal {
        /// ln of the median, in seconds.
        mu: f64,
        /// Standard deviation of the log.
        sigma: f64,
        /// No draw exceeds this.
        max: Duration,
    },
}

impl Latency {
    /// A log-normal distribution whose median is `p50` and 99th percentile `p99`.
    pub fn lognormal(p50: Duration, p99: Duration, max: Duration) -> Latency {
        let mu = p50.as_secs_f64().ln();
        let sigma = (p99.as_secs_f64() / p50.as_secs_f64()).ln() / Z99;
        Latency::LogNormal { mu, sigma, max }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        match self {
            Latency::Fixed(d) => *d,
            Latency::Uniform { min, max } => {
                let span = max.saturating_sub(*min).as_secs_f64();
                *min + Duration::from_secs_f64(span * rng.unit())
            }
            Latency::LogNormal { mu, sigma, max } => {
                let secs = (mu + sigma * rng.normal()).exp();
                Duration::from_secs_f64(secs.clamp(0.0, max.as_secs_f64()))
            }
        }
    }

    /// The longest possible draw.
    pub fn max(&self) -> Duration {
        match self {
            Latency::Fixed(d) => *d,
            Latency::Uniform { max, .. } | Latency::LogNormal { max, .. } => *max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_hits_its_quantiles() {
        let l = Latency::lognormal(
            Duration::from_millis(20),
            Duration::from_millis(200),
            Duration::from_secs(10),
        );
        let mut rng = Rng::new(3);
        let mut v: Vec<Duration> = (0..20_000).map(|_| l.sample(&mut rng)).collect();
        v.sort();
        let p50 = v[10_000].as_secs_f64();
        let p99 = v[19_800].as_secs_f64();
        assert!((0.018..0.022).contains(&p50), "{p50}");
        assert!((0.17..0.23).contains(&p99), "{p99}");
    }
}
