//! `slo report --since`: alert episodes from a real Prometheus whose TSDB was
//! backfilled with `promtool tsdb create-blocks-from openmetrics` from
//! recorded series with two known incidents.

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use slogate_slo::history::{build_history, render_history};
use slogate_slo::report::Prometheus;
use slogate_slo::{parse_spec, DEFAULT_BUCKETS};
use slogate_test_support::Prometheus as PrometheusServer;
use support::run_promtool;

/// Needs Prometheus or promtool, which this workspace does not build: `make unit` leaves out every
/// test under a `needs` module.
mod needs {
    mod prometheus {
        use super::super::*;

        const SPEC: &str = r#"
        service: shop
        slos:
          - name: checkout
            description: Buyers can pay.
            owner: team-payments
            cuj: Buyer pays for an order
            period: 1d
            operations:
              - graphql: CreateOrder
                type: mutation
            availability:
              target: 90
        "#;

        const OP: &str =
            r#"service="shop",kind="graphql",operation="CreateOrder",operation_type="mutation""#;
        const MINUTES: i64 = 240;
        /// Seconds past the minute at which rules are evaluated.
        const EVAL_OFFSET: i64 = 7;
        /// Requests per minute.
        const RATE: i64 = 1000;

        /// Incidents: (first failing minute, minutes of 100% errors).
        const INCIDENTS: [(i64, i64); 2] = [(60, 10), (150, 20)];
        /// Firing alerts: (severity, tier, first minute, last minute).
        const FIRING: [(&str, u8, i64, i64); 3] = [
            ("page", 1, 63, 74),
            ("page", 1, 152, 174),
            ("page", 2, 160, 174),
        ];

        fn failing(minute: i64) -> bool {
            // The counter sample at `minute` covers the minute before it.
            INCIDENTS
                .iter()
                .any(|&(start, len)| minute > start && minute <= start + len)
        }

        /// The recorded series as OpenMetrics text, one sample a minute from `base`.
        fn openmetrics(base: i64) -> String {
            let mut out = String::new();
            let (mut ok, mut bad) = (0, 0);
            let mut success = String::new();
            let mut errors = String::new();
            for m in 0..=MINUTES {
                if m > 0 {
                    if failing(m) {
                        bad += RATE;
                    } else {
                        ok += RATE;
                    }
                }
                let t = base + m * 60;
                let _ = writeln!(
                    success,
                    "slogate_requests_total{{{OP},outcome=\"success\"}} {ok} {t}"
                );
                let _ = writeln!(
                    errors,
                    "slogate_requests_total{{{OP},outcome=\"system_error\"}} {bad} {t}"
                );
            }
            out += "# TYPE slogate_requests counter\n";
            out += &success;
            out += &errors;
            // Rules are evaluated 7 s past each minute, as a live Prometheus
            // offsets its groups; ALERTS_FOR_STATE holds the alert's activeAt.
            let labels = |severity: &str, tier: u8| {
                format!("alertname=\"SLOErrorBudgetBurn\",severity=\"{severity}\",sloth_id=\"shop-checkout-availability\",sloth_slo=\"checkout-availability\",tier=\"{tier}\"")
            };
            out += "# TYPE ALERTS gauge\n";
            for (severity, tier, first, last) in FIRING {
                for m in first..=last {
                    let _ = writeln!(
                        out,
                        "ALERTS{{{},alertstate=\"firing\"}} 1 {}",
                        labels(severity, tier),
                        base + m * 60 + EVAL_OFFSET
                    );
                }
            }
            out += "# TYPE ALERTS_FOR_STATE gauge\n";
            for (severity, tier, first, last) in FIRING {
                for m in first..=last {
                    let _ = writeln!(
                        out,
                        "ALERTS_FOR_STATE{{{}}} {} {}",
                        labels(severity, tier),
                        base + first * 60 + EVAL_OFFSET,
                        base + m * 60 + EVAL_OFFSET
                    );
                }
            }
            out += "# EOF\n";
            out
        }

        /// A Prometheus on the backfilled `data`; not waited for.
        fn start_prometheus(dir: &Path, data: &Path) -> PrometheusServer {
            PrometheusServer::start(dir, "global:\n  scrape_interval: 1m\n", data)
        }

        #[test]
        fn episodes_from_backfilled_history() {
            let dir = tempfile::tempdir().expect("temp dir");
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64;
            let end = now / 60 * 60 - 60;
            let base = end - MINUTES * 60;
            std::fs::write(dir.path().join("history.om"), openmetrics(base)).expect("write");
            let started = Instant::now();
            run_promtool(
                dir.path(),
                &[
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "history.om",
                    "data",
                ],
            );
            let mut server = start_prometheus(dir.path(), &dir.path().join("data"));
            let client = Prometheus::new(&server.url, Duration::from_secs(10)).expect("client");
            server.wait_for(
                "prometheus to start",
                Duration::from_secs(30),
                Duration::from_millis(300),
                || client.query_value("vector(1)", end as f64).ok(),
            );
            let spec = parse_spec("history-slo.yaml", SPEC, &DEFAULT_BUCKETS).expect("spec");
            let history = build_history(&spec, &client, (MINUTES * 60) as f64, end as f64, 60.0)
                .expect("history");
            let text = render_history(&history);
            let slo = &history.slos[0];
            assert_eq!(slo.episodes.len(), 2, "{text}");
            let at = |m: i64| (base + m * 60) as f64;
            let (a, b) = (&slo.episodes[0], &slo.episodes[1]);
            // The 5m error ratio crosses the 10% budget at the first failing sample.
            assert_eq!(a.sli_bad_since, at(61), "{text}");
            // Exact from ALERTS_FOR_STATE; the last firing sample (74m07s) is seen
            // by the 75m step.
            assert_eq!(a.fired_at, at(63) + 7.0, "{text}");
            assert_eq!(a.last_firing_at, at(75), "{text}");
            // Errors stop after minute 70; the 5m window is clean at 75.
            assert_eq!(a.sli_recovered_at, Some(at(75)), "{text}");
            assert_eq!(a.time_to_detect, 127.0);
            assert_eq!(a.time_to_recover, Some(840.0));
            assert_eq!(a.alerts, ["page tier 1"]);
            assert_eq!(b.alerts, ["page tier 1", "page tier 2"]);
            assert_eq!(b.time_to_detect, 67.0);
            assert_eq!(b.time_to_recover, Some(1_440.0));
            assert_eq!(slo.mean_time_to_detect, Some(97.0));
            assert_eq!(slo.worst_time_to_detect, Some(127.0));
            assert_eq!(slo.mean_time_to_recover, Some(1_140.0));
            assert_eq!(slo.worst_time_to_recover, Some(1_440.0));
            // Episode A: 10 000 bad requests; the 1d period holds 75 000 requests
            // at 75m, 10% of which may fail: 7 500.
            let spent = a.budget_spent.expect("budget");
            assert!((spent - 10_000.0 / 7_500.0).abs() < 0.01, "{spent}\n{text}");
            assert!(
                text.contains(
                    "shop/checkout-availability: 2 episode(s); time to detect mean 1m37s worst 2m7s"
                ),
                "{text}"
            );
            eprintln!(
                "{text}\n(backfill, start and queries: {:?})",
                started.elapsed()
            );
        }
    }
}
