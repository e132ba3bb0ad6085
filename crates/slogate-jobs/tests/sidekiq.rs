//! End to end with real Sidekiq 6.4 (tests/sidekiq-app) and a real Redis:
//! counts per class and outcome, enqueue→completion latency, queue latency
//! while workers are stopped or quiet, and the log followed across a
//! copytruncate and a rename rotation, compared line for line with the files.

mod support;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slogate_jobs::DEFAULT_JOB_BUCKETS;
use slogate_test_support::{require_tool, unix_now, wait_for_or, workspace_root, Proc};
use support::{assert_histogram_within, copytruncate, Redis, Scrape, Slogate};

/// Needs Ruby, Sidekiq and redis-server, which this workspace does not build: `make unit` leaves
/// out every test under a `needs` module.
mod needs {
    mod sidekiq {
        use super::super::*;

        /// The labels of HardJob's successful attempts.
        const HARD_JOB_SUCCESS: [(&str, &str); 4] = [
            ("job_class", "HardJob"),
            ("outcome", "success"),
            ("queue", "default"),
            ("service", "shop"),
        ];

        const WAIT: Duration = Duration::from_secs(40);

        fn app_dir() -> PathBuf {
            workspace_root().join("tests/sidekiq-app")
        }

        /// `ruby enqueue.rb SPEC...`; returns the Unix time after the last push.
        fn enqueue(redis: &Redis, specs: &[&str]) -> f64 {
            let out = Command::new("ruby")
                .arg(app_dir().join("enqueue.rb"))
                .args(specs)
                .env("REDIS_URL", redis.url())
                .output()
                .expect("run ruby enqueue.rb");
            assert!(
                out.status.success(),
                "enqueue.rb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("enqueue.rb prints a time")
        }

        /// Sidekiq with its stdout appended to `log` (O_APPEND, as `>>` would).
        fn start_sidekiq(redis: &Redis, log: &Path, stderr: &Path) -> Proc {
            let stdout = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("open log");
            let stderr = OpenOptions::new()
                .create(true)
                .append(true)
                .open(stderr)
                .expect("open stderr");
            let child = Command::new("sidekiq")
                .arg("-r")
                .arg(app_dir().join("app.rb"))
                .arg("-C")
                .arg(app_dir().join("sidekiq.yml"))
                .env("REDIS_URL", redis.url())
                .env("RAILS_ENV", "test")
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .expect("start sidekiq");
            Proc {
                child,
                name: "sidekiq".into(),
            }
        }

        fn count_done_lines(paths: &[&Path]) -> usize {
            paths
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| l.contains(r#""msg":"done""#))
                        .count()
                })
                .sum()
        }

        fn jobs(s: &Scrape, class: &str, outcome: &str) -> f64 {
            s.sum(
                "slogate_jobs_total",
                &[("job_class", class), ("outcome", outcome)],
            )
        }

        fn queue(s: &Scrape, metric: &str, queue: &str) -> Option<f64> {
            s.get(metric, &[("queue", queue), ("service", "shop")])
        }

        fn wait_log_contains(path: &Path, needle: &str) {
            wait_for_or(
                &format!("{needle:?} in the Sidekiq log"),
                WAIT,
                || {
                    std::fs::read_to_string(path)
                        .ok()?
                        .contains(needle)
                        .then_some(())
                },
                || std::fs::read_to_string(path).unwrap_or_default(),
            );
        }

        #[test]
        fn sidekiq_jobs_end_to_end() {
            let started = Instant::now();
            require_tool("ruby", "ruby");
            require_tool("sidekiq", "ruby-sidekiq");
            let redis = Redis::start();
            let dir = tempfile::tempdir().expect("temp dir");
            let log = dir.path().join("sidekiq.log");
            let sidekiq_err = dir.path().join("sidekiq.stderr");
            let slogate = Slogate::start(&format!(
                "service: shop\nlogs: [{log}]\nfile_poll_interval: 50ms\n\
                 redis: {{url: '{url}', poll_interval: 200ms}}\n\
                 outcomes:\n  client_error:\n    job_classes: [LegacyCleanupJob]\n    error_classes: [ActiveRecord::RecordNotFound]\n",
                log = log.display(),
                url = redis.url(),
            ));

            // Phase A: jobs wait while no Sidekiq runs; queue latency rises.
            let enqueue_began = unix_now();
            let enqueued = enqueue(
                &redis,
                &[
                    "HardJob:20",
                    "BoomJob:3",
                    "MissingRecordJob:2",
                    "LegacyCleanupJob:2",
                    "FlakyJob:2",
                    "SleepJob:4:0.3",
                ],
            );
            let s = slogate.wait_metrics("queue sizes from Redis", WAIT, |s| {
                queue(s, "slogate_job_queue_size", "default") == Some(27.0)
                    && queue(s, "slogate_job_queue_size", "critical") == Some(2.0)
                    && queue(s, "slogate_job_queue_size", "slow") == Some(4.0)
            });
            let first = queue(&s, "slogate_job_queue_latency_seconds", "default").unwrap();
            let s = slogate.wait_metrics("queue latency to rise while no worker runs", WAIT, |s| {
                queue(s, "slogate_job_queue_latency_seconds", "default")
                    .is_some_and(|l| l >= first + 1.0)
            });
            let latency = queue(&s, "slogate_job_queue_latency_seconds", "default").unwrap();
            let waited = unix_now() - enqueue_began;
            assert!(
                latency <= waited + 0.5,
                "queue latency {latency} > {waited}s since the first push"
            );
            assert_eq!(
                s.value("slogate_jobs_redis_up", &[("service", "shop")]),
                1.0
            );

            // Phase B: Sidekiq runs everything; FlakyJob fails once and succeeds on its retry.
            let sidekiq_started = unix_now();
            let mut sidekiq = start_sidekiq(&redis, &log, &sidekiq_err);
            let s = slogate.wait_metrics("every phase A attempt counted", WAIT, |s| {
                jobs(s, "HardJob", "success") == 20.0
                    && jobs(s, "SleepJob", "success") == 4.0
                    && jobs(s, "BoomJob", "system_error") == 3.0
                    && jobs(s, "MissingRecordJob", "client_error") == 2.0
                    && jobs(s, "LegacyCleanupJob", "client_error") == 2.0
                    && jobs(s, "FlakyJob", "system_error") == 2.0
                    && jobs(s, "FlakyJob", "success") == 2.0
            });
            let completed_by = unix_now();
            let total: f64 = s.sum("slogate_jobs_total", &[]);
            assert_eq!(total, 35.0, "no other attempt counted");
            let hard = HARD_JOB_SUCCESS;
            assert_histogram_within(
                &s,
                "slogate_job_duration_seconds",
                &hard,
                DEFAULT_JOB_BUCKETS,
                20.0,
                sidekiq_started - enqueued - 0.01,
                completed_by - enqueue_began + 0.01,
            );
            let sleep = [
                ("job_class", "SleepJob"),
                ("outcome", "success"),
                ("queue", "slow"),
                ("service", "shop"),
            ];
            assert_histogram_within(
                &s,
                "slogate_job_execution_seconds",
                &sleep,
                DEFAULT_JOB_BUCKETS,
                4.0,
                0.3,
                2.0,
            );
            assert_histogram_within(
                &s,
                "slogate_job_duration_seconds",
                &sleep,
                DEFAULT_JOB_BUCKETS,
                4.0,
                sidekiq_started - enqueued + 0.3 - 0.01,
                completed_by - enqueue_began + 0.01,
            );
            let missing = [
                ("job_class", "MissingRecordJob"),
                ("outcome", "client_error"),
                ("queue", "default"),
                ("service", "shop"),
            ];
            assert_eq!(
                s.value("slogate_job_execution_seconds_count", &missing),
                2.0
            );
            let legacy = [
                ("job_class", "LegacyCleanupJob"),
                ("outcome", "client_error"),
                ("queue", "critical"),
                ("service", "shop"),
            ];
            assert_eq!(s.value("slogate_jobs_total", &legacy), 2.0);
            slogate.wait_metrics("queues drained", WAIT, |s| {
                queue(s, "slogate_job_queue_size", "default") == Some(0.0)
                    && queue(s, "slogate_job_queue_latency_seconds", "default") == Some(0.0)
            });

            // Phase C: Sidekiq goes quiet (TSTP): new jobs wait and the queue ages.
            sidekiq.signal("TSTP");
            wait_log_contains(&log, "Received TSTP");
            let quiet_enqueued = enqueue(&redis, &["HardJob:5"]);
            let s = slogate.wait_metrics("5 jobs waiting while quiet", WAIT, |s| {
                queue(s, "slogate_job_queue_size", "default") == Some(5.0)
            });
            let first = queue(&s, "slogate_job_queue_latency_seconds", "default").unwrap();
            slogate.wait_metrics("queue latency to rise while quiet", WAIT, |s| {
                queue(s, "slogate_job_queue_latency_seconds", "default")
                    .is_some_and(|l| l >= first + 1.0)
            });
            assert_eq!(
                jobs(&slogate.scrape(), "HardJob", "success"),
                20.0,
                "a quiet Sidekiq runs nothing"
            );

            // copytruncate while quiet; Sidekiq's shutdown lines land in the truncated file.
            let copy = dir.path().join("sidekiq.log.1");
            copytruncate(&log, &copy);
            slogate.wait_metrics("the truncation seen", WAIT, |s| {
                s.value(
                    "slogate_jobs_log_rotations_total",
                    &[("kind", "truncate"), ("service", "shop")],
                ) == 1.0
            });
            sidekiq.terminate(WAIT);

            // Phase D: rename rotation, then a new Sidekiq writes a new file.
            let renamed = dir.path().join("sidekiq.log.2");
            std::fs::rename(&log, &renamed).expect("rename");
            let restarted = unix_now();
            let mut sidekiq = start_sidekiq(&redis, &log, &sidekiq_err);
            let s = slogate.wait_metrics("the 5 quiet-phase jobs counted", WAIT, |s| {
                jobs(s, "HardJob", "success") == 25.0
            });
            assert_eq!(
                s.value(
                    "slogate_jobs_log_rotations_total",
                    &[("kind", "rename"), ("service", "shop")]
                ),
                1.0
            );
            let after = HARD_JOB_SUCCESS;
            assert_histogram_within(
                &s,
                "slogate_job_duration_seconds",
                &after,
                DEFAULT_JOB_BUCKETS,
                25.0,
                (sidekiq_started - enqueued).min(restarted - quiet_enqueued) - 0.01,
                unix_now() - enqueue_began,
            );
            sidekiq.terminate(WAIT);

            // Every done line in every generation of the file counted once.
            let files: [&Path; 3] = [&copy, &renamed, &log];
            let done_lines = count_done_lines(&files) as f64;
            let s = slogate.wait_metrics("every done line of every file", WAIT, |s| {
                s.value(
                    "slogate_jobs_log_lines_total",
                    &[("kind", "done"), ("service", "shop")],
                ) == done_lines
            });
            assert_eq!(done_lines, 20.0 + 4.0 + 2.0 + 5.0);
            assert_eq!(s.sum("slogate_jobs_total", &[]), 35.0 + 5.0);
            let started_lines = s.value(
                "slogate_jobs_log_lines_total",
                &[("kind", "start"), ("service", "shop")],
            );
            assert_eq!(started_lines, 40.0, "one start per attempt");
            assert!(
                s.value(
                    "slogate_jobs_log_lines_total",
                    &[("kind", "unrelated"), ("service", "shop")]
                ) > 0.0
            );
            assert_eq!(
                s.value(
                    "slogate_jobs_log_lines_total",
                    &[("kind", "invalid_job"), ("service", "shop")]
                ),
                0.0
            );
            eprintln!(
                "sidekiq end to end: {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
