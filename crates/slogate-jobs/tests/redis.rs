//! Queue health from a real Redis, and Redis being down: logged, counted,
//! retried, never fatal.

mod support;

use std::time::Duration;

use slogate_test_support::{require_tool, unix_now, workspace_root};
use support::{free_port, Redis, Slogate};

const WAIT: Duration = Duration::from_secs(30);

fn config(port: u16) -> String {
    format!(
        "service: q\nredis: {{url: 'redis://127.0.0.1:{port}/0', poll_interval: 200ms, timeout: 500ms, queues: [always]}}\n"
    )
}

#[test]
fn config_errors_exit_with_code_2_and_name_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.yaml");
    std::fs::write(&path, "redis:\n  poll_interval: 5s\n  urll: redis://x\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slogate-jobs"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run slogate-jobs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: redis.urll: unknown field `urll`",
            path.display()
        )),
        "{stderr}"
    );
}

/// The fixture installs exactly the middleware docs/jobs.md tells users to paste.
#[test]
fn readme_middleware_is_the_fixtures() {
    fn class_block(text: &str) -> String {
        let start = text
            .find("class SlogateJobContext")
            .expect("the middleware class");
        let block: Vec<&str> = text[start..].lines().take_while(|l| *l != "end").collect();
        block.join("\n")
    }
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("docs/jobs.md")).expect("docs/jobs.md");
    let fixture = std::fs::read_to_string(root.join("tests/sidekiq-app/slogate_middleware.rb"))
        .expect("fixture");
    assert_eq!(class_block(&readme), class_block(&fixture));
}

/// Needs redis-server, which this workspace does not build: `make unit` leaves out every test under
/// a `needs` module.
mod needs {
    mod redis {
        use super::super::*;

        #[test]
        fn redis_down_is_retried_and_queues_are_read_when_it_is_up() {
            require_tool("redis-server", "redis-server");
            let port = free_port();
            let mut slogate = Slogate::start(&config(port));
            let up = |s: &support::Scrape| s.value("slogate_jobs_redis_up", &[("service", "q")]);
            let errors = |s: &support::Scrape| {
                s.value("slogate_jobs_redis_errors_total", &[("service", "q")])
            };
            slogate.wait_metrics("failed polls counted", WAIT, |s| {
                up(s) == 0.0 && errors(s) >= 3.0
            });
            assert!(slogate.process.is_running());
            assert!(slogate
                .stderr_text()
                .contains("cannot read Sidekiq's queues from Redis"));

            let redis = Redis::start_on(port);
            // A job as Sidekiq 6 pushes it, enqueued 30 s ago, and a newer one.
            let old = format!(
                r#"{{"class":"MailJob","queue":"mail","jid":"a","enqueued_at":{}}}"#,
                unix_now() - 30.0
            );
            let new = format!(
                r#"{{"class":"MailJob","queue":"mail","jid":"b","enqueued_at":{}}}"#,
                unix_now()
            );
            redis.cli(&["SADD", "queues", "mail"]);
            redis.cli(&["LPUSH", "queue:mail", &old]);
            redis.cli(&["LPUSH", "queue:mail", &new]);
            let q = |s: &support::Scrape, m: &str, queue: &str| {
                s.get(m, &[("queue", queue), ("service", "q")])
            };
            let s = slogate.wait_metrics("the mail queue", WAIT, |s| {
                up(s) == 1.0 && q(s, "slogate_job_queue_size", "mail") == Some(2.0)
            });
            let latency = q(&s, "slogate_job_queue_latency_seconds", "mail").expect("latency");
            assert!(
                (30.0..40.0).contains(&latency),
                "oldest job's age {latency}"
            );
            assert_eq!(
                q(&s, "slogate_job_queue_size", "always"),
                Some(0.0),
                "configured queue reported while empty"
            );
            assert_eq!(
                q(&s, "slogate_job_queue_latency_seconds", "always"),
                Some(0.0)
            );

            // Redis goes away: gauges are dropped rather than left stale.
            drop(redis);
            let s = slogate.wait_metrics("Redis down again", WAIT, |s| up(s) == 0.0);
            assert_eq!(q(&s, "slogate_job_queue_size", "mail"), None);
            assert!(slogate.process.is_running());
            assert!(slogate.get("/healthz").is_some());
        }
    }
}
