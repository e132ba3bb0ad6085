//! Queue health from Sidekiq's Redis: per queue, its size and the age of its
//! oldest job.
//!
//! Sidekiq pushes jobs with `LPUSH queue:<name>` (adding `<name>` to the
//! `queues` set) and fetches them with `BRPOP`, so the oldest job is the
//! list's tail: `LRANGE queue:<name> -1 -1`. Its `enqueued_at` gives the
//! queue's latency, as `Sidekiq::Queue#latency` computes it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use serde::Deserialize;
use slogate_metrics::CardinalityGuard;

use crate::metrics::JobMetrics;
use crate::time::{epoch_number_to_seconds, parse_rfc3339};

/// One queue's state at one poll.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSnapshot {
    /// The queue name (without `queue:`).
    pub name: String,
    /// Jobs waiting.
    pub size: i64,
    /// Seconds since the oldest waiting job was enqueued; 0 when empty.
    pub latency: f64,
}

/// Seconds since the job (Sidekiq's JSON payload) was enqueued, at `now`
/// (Unix seconds). 0 when the payload has no usable `enqueued_at`, as
/// Sidekiq's own `Queue#latency` does; never negative.
pub fn job_latency(payload: &[u8], now: f64) -> f64 {
    #[derive(Deserialize)]
    struct Job {
        enqueued_at: Option<serde_json::Value>,
    }
    let enqueued = serde_json::from_slice::<Job>(payload)
        .ok()
        .and_then(|job| job.enqueued_at)
        .and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_f64().and_then(epoch_number_to_seconds),
            serde_json::Value::String(s) => parse_rfc3339(&s),
            _ => None,
        });
    enqueued.map_or(0.0, |at| (now - at).max(0.0))
}

/// Polls Sidekiq's Redis and sets the queue gauges.
pub struct QueuePoller {
    client: Client,
    timeout: Duration,
    extra_queues: Vec<String>,
    service: Arc<str>,
    metrics: JobMetrics,
    guard: Arc<CardinalityGuard>,
    connection: Option<MultiplexedConnection>,
    reported: HashSet<Arc<str>>,
    consecutive_failures: u64,
}

impl QueuePoller {
    /// A poller of `url` (not connected until the first poll).
    pub fn new(
        url: &str,
        timeout: Duration,
        extra_queues: Vec<String>,
        service: &str,
        metrics: JobMetrics,
        guard: Arc<CardinalityGuard>,
    ) -> Result<QueuePoller, RedisError> {
        Ok(QueuePoller {
            client: Client::open(url)?,
            timeout,
            extra_queues,
            service: Arc::from(service),
            metrics,
            guard,
            connection: None,
            reported: HashSet::new(),
            consecutive_failures: 0,
        })
    }

    /// One poll: reads every queue and sets the gauges; on failure marks
    /// Redis down, drops the gauges (a stale size would mislead) and the
    /// connection (the next poll reconnects).
    pub async fn poll(&mut self) -> Result<Vec<QueueSnapshot>, RedisError> {
        match self.snapshot().await {
            Ok(queues) => {
                self.publish(&queues);
                self.metrics.observe_redis_poll(&self.service, true);
                if self.consecutive_failures > 0 {
                    tracing::info!(queues = queues.len(), "Sidekiq's Redis is reachable again");
                }
                self.consecutive_failures = 0;
                Ok(queues)
            }
            Err(e) => {
                self.connection = None;
                self.publish(&[]);
                self.metrics.observe_redis_poll(&self.service, false);
                // The first failure and then about every minute at a 5 s interval.
                if self.consecutive_failures % 12 == 0 {
                    tracing::warn!(error = %e, failures = self.consecutive_failures + 1, "cannot read Sidekiq's queues from Redis; retrying");
                }
                self.consecutive_failures += 1;
                Err(e)
            }
        }
    }

    async fn connect(&mut self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    async fn snapshot(&mut self) -> Result<Vec<QueueSnapshot>, RedisError> {
        let mut connection = self.connect().await?;
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg("queues")
            .query_async(&mut connection)
            .await?;
        names.extend(self.extra_queues.iter().cloned());
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for name in &names {
            let key = format!("queue:{name}");
            pipe.cmd("LLEN")
                .arg(&key)
                .cmd("LRANGE")
                .arg(&key)
                .arg(-1)
                .arg(-1);
        }
        let replies: Vec<Value> = pipe.query_async(&mut connection).await?;
        let now = unix_now();
        names
            .into_iter()
            .zip(replies.chunks(2))
            .map(|(name, pair)| snapshot_of(name, pair, now))
            .collect()
    }

    fn publish(&mut self, queues: &[QueueSnapshot]) {
        let mut now_reported = HashSet::new();
        for q in queues {
            let (label, replaced) = self.guard.admit_str(&q.name);
            if replaced {
                // Queues past the bound are not summed into (other): a gauge
                // of one of them would be overwritten by the next.
                self.metrics.observe_overflow(&self.service, "queue");
                continue;
            }
            let (size, latency) = self.metrics.queue_gauges(&self.service, &label);
            size.set(q.size);
            latency.set(q.latency);
            now_reported.insert(label);
        }
        for gone in self.reported.difference(&now_reported) {
            self.metrics.remove_queue(&self.service, gone);
        }
        self.reported = now_reported;
    }
}

fn snapshot_of(name: String, pair: &[Value], now: f64) -> Result<QueueSnapshot, RedisError> {
    let [size, tail] = pair else {
        return Err(RedisError::from((
            redis::ErrorKind::Parse,
            "pipeline reply of unexpected length",
        )));
    };
    let size: i64 = redis::from_redis_value_ref(size)?;
    let tail: Vec<Vec<u8>> = redis::from_redis_value_ref(tail)?;
    let latency = tail.first().map_or(0.0, |job| job_latency(job, now));
    Ok(QueueSnapshot {
        name,
        size,
        latency,
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_of_a_sidekiq_6_payload() {
        let job = br#"{"retry":0,"queue":"default","args":[0],"class":"HardJob","jid":"97ca","created_at":1796036017.544051,"enqueued_at":1796036017.5443757}"#;
        let l = job_latency(job, 1_796_036_027.5443757);
        assert!((l - 10.0).abs() < 1e-6, "{l}");
    }

    #[test]
    fn latency_of_a_sidekiq_8_payload_in_milliseconds() {
        let job = br#"{"class":"HardJob","enqueued_at":1796036017500}"#;
        assert!((job_latency(job, 1_796_036_018.0) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn latency_is_zero_without_enqueued_at_or_in_the_future() {
        assert_eq!(job_latency(br#"{"class":"A"}"#, 100.0), 0.0);
        assert_eq!(job_latency(b"not json", 100.0), 0.0);
        assert_eq!(job_latency(br#"{"enqueued_at":"soon"}"#, 100.0), 0.0);
        assert_eq!(job_latency(br#"{"enqueued_at":200.0}"#, 100.0), 0.0);
    }
}
