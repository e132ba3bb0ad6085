//! The Prometheus text exposition, read the way the load tester reads it.

/// One sample: `name{labels} value` (the load tester's type and parser: one reading of the
/// format for the tests and `slogate loadtest`).
pub use slogate_harness::prom::{parse_sample, Sample};

/// A parsed exposition (`/metrics` of slogate or slogate-jobs).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the text exposition format, passing over comments and anything that is not a
    /// sample.
    pub fn parse(text: &str) -> Metrics {
        let samples = text.lines().filter_map(parse_sample).collect();
        Metrics { samples }
    }

    /// Parses the text exposition format; fails the test on a line that is neither a
    /// comment, blank, nor a sample.
    pub fn parse_strict(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample: {l:?}")))
            .collect();
        Metrics { samples }
    }

    fn has_labels(s: &Sample, want: &[(&str, &str)]) -> bool {
        want.iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    }

    /// Sum of the samples of `name` whose labels include all of `want`.
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && Self::has_labels(s, want))
            .map(|s| s.value)
            .sum()
    }

    /// The value of the series `name` with exactly the labels `labels` (any order), if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name && s.labels.len() == labels.len() && Self::has_labels(s, labels)
            })
            .map(|s| s.value)
    }

    /// [`Metrics::get`], 0 when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// `slogate_requests_total` for one operation, type and outcome.
    pub fn requests(&self, operation: &str, op_type: &str, outcome: &str) -> f64 {
        self.sum(
            "slogate_requests_total",
            &[
                ("operation", operation),
                ("operation_type", op_type),
                ("outcome", outcome),
            ],
        )
    }

    /// Every (operation, type, outcome) with a non-zero request count, sorted.
    pub fn request_table(&self) -> Vec<(String, String, String, f64)> {
        let mut rows: Vec<_> = self
            .samples
            .iter()
            .filter(|s| s.name == "slogate_requests_total" && s.value > 0.0)
            .map(|s| {
                (
                    s.labels["operation"].clone(),
                    s.labels["operation_type"].clone(),
                    s.labels["outcome"].clone(),
                    s.value,
                )
            })
            .collect();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total X\n# TYPE x_total counter\n\
        x_total{service=\"q\",queue=\"a\"} 2\n\
        x_total{service=\"q\",queue=\"b\"} 3\n\
        h_bucket{service=\"q\",le=\"0.5\"} 1\n\
        h_bucket{service=\"q\",le=\"+Inf\"} 4\n\
        up 1\n";

    #[test]
    fn sums_and_exact_series() {
        let m = Metrics::parse_strict(TEXT);
        assert_eq!(m.sum("x_total", &[("service", "q")]), 5.0);
        assert_eq!(
            m.get("x_total", &[("queue", "b"), ("service", "q")]),
            Some(3.0)
        );
        // Exactly these labels: a subset names no series.
        assert_eq!(m.get("x_total", &[("service", "q")]), None);
        assert_eq!(
            m.value("h_bucket", &[("le", "+Inf"), ("service", "q")]),
            4.0
        );
        assert_eq!(m.value("up", &[]), 1.0);
        assert_eq!(m.value("absent", &[]), 0.0);
    }

    #[test]
    #[should_panic(expected = "not a sample")]
    fn strict_parsing_refuses_junk() {
        Metrics::parse_strict("x_total{a=\"1\"} one\n");
    }
}
