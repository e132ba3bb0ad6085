//! Active health checks: `GET /up` on every backend, taking failing ones out of rotation
//! (after `fall` failures) and putting them back (after `rise` successes). When every
//! backend fails, requests still go to them (see `Backends::pick_or_any`).

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use slogate_config::HealthCheckSettings;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::runtime::Runtime;
use crate::upstream::{Backend, Target};

/// The background service checking every backend of a runtime.
pub struct HealthChecker {
    rt: &'static Runtime,
    settings: HealthCheckSettings,
    /// Consecutive results per backend: positive = successes, negative = failures.
    streaks: Vec<AtomicU32>,
}

impl HealthChecker {
    /// A checker for `rt`'s backends.
    pub fn new(rt: &'static Runtime, settings: HealthCheckSettings) -> Self {
        let streaks = rt
            .backends
            .all()
            .iter()
            .map(|_| AtomicU32::new(0))
            .collect();
        HealthChecker {
            rt,
            settings,
            streaks,
        }
    }

    async fn check_all(&self) {
        // Concurrently, so one hanging backend does not delay the verdict on the others.
        let rt = self.rt;
        let handles: Vec<_> = (0..rt.backends.all().len())
            .map(|i| {
                let settings = self.settings.clone();
                tokio::spawn(async move { check(&rt.backends.all()[i], &settings).await })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            self.record(i, h.await.unwrap_or(false));
        }
    }

    fn record(&self, i: usize, ok: bool) {
        let backend = &self.rt.backends.all()[i];
        // The streak counts results that disagree with the current state.
        let disagree = ok != backend.is_healthy();
        let streak = if disagree {
            self.streaks[i].fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.streaks[i].store(0, Ordering::Relaxed);
            0
        };
        let needed = if ok {
            self.settings.rise
        } else {
            self.settings.fall
        };
        if disagree && streak >= needed {
            self.streaks[i].store(0, Ordering::Relaxed);
            backend.set_healthy(ok);
            self.rt
                .metrics
                .set_backend_up(self.rt.service(), &backend.label, ok);
            if ok {
                tracing::warn!(backend = %backend.label, "backend is healthy again");
            } else {
                tracing::warn!(backend = %backend.label, path = %self.settings.path, "backend failed its health check; out of rotation");
            }
        }
    }
}

/// One check: any HTTP answer below 500 to `GET path` within the timeout. A 4xx means the
/// app is up and said no (no `/up` route before Rails 7.1, host authorization): taking it out
/// of rotation for that would cause the outage the check is there to avoid.
async fn check(backend: &Backend, settings: &HealthCheckSettings) -> bool {
    let host = match (&settings.host, backend.target()) {
        (Some(h), _) => h.clone(),
        (None, Target::Tcp(a)) => a.to_string(),
        (None, Target::Unix(_)) => "localhost".into(),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slogate-health-check\r\nConnection: close\r\n\r\n",
        settings.path
    );
    let attempt = async {
        match backend.target() {
            Target::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a).await.ok()?;
                exchange(s, &request).await
            }
            Target::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path).await.ok()?;
                exchange(s, &request).await
            }
        }
    };
    matches!(
        tokio::time::timeout(settings.timeout, attempt).await,
        Ok(Some(100..=499))
    )
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &str) -> Option<u16> {
    s.write_all(request.as_bytes()).await.ok()?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let r = s.read(&mut buf[n..]).await.ok()?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    if !line.starts_with("HTTP/") {
        return None;
    }
    line.split(' ').nth(1)?.get(..3)?.parse().ok()
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.check_all().await,
            }
        }
    }
}
