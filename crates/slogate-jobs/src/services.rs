//! The mode's pingora background services: one per followed log, one for Redis.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tokio::io::AsyncReadExt;

use crate::follow::{FileFollower, LogSink};
use crate::lines::{LineSplitter, Piece};
use crate::queues::QueuePoller;
use crate::recorder::JobRecorder;

/// Follows one log file, polling it every `interval` when idle.
pub struct FileFollowService {
    follower: Mutex<Option<FileFollower>>,
    recorder: Arc<JobRecorder>,
    interval: Duration,
}

impl FileFollowService {
    /// A service running `follower` into `recorder`.
    pub fn new(follower: FileFollower, recorder: Arc<JobRecorder>, interval: Duration) -> Self {
        FileFollowService {
            follower: Mutex::new(Some(follower)),
            recorder,
            interval,
        }
    }
}

#[async_trait]
impl BackgroundService for FileFollowService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.follower.lock().ok().and_then(|mut f| f.take());
        let Some(mut follower) = taken else {
            return;
        };
        let mut last_error: Option<String> = None;
        while !*shutdown.borrow() {
            match follower.poll(self.recorder.as_ref()) {
                Ok(0) => {}
                Ok(_) => {
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(e) => {
                    let message = e.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(path = %follower.path().display(), error = %message, "cannot read the log file; retrying");
                        last_error = Some(message);
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}

/// Reads the log from standard input until it closes.
pub struct StdinFollowService {
    recorder: Arc<JobRecorder>,
    max_line: usize,
}

impl StdinFollowService {
    /// A service reading standard input into `recorder`.
    pub fn new(recorder: Arc<JobRecorder>, max_line: usize) -> Self {
        StdinFollowService { recorder, max_line }
    }
}

#[async_trait]
impl BackgroundService for StdinFollowService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut stdin = tokio::io::stdin();
        let mut splitter = LineSplitter::new(self.max_line);
        let mut buf = vec![0u8; 64 * 1024];
        let sink: &JobRecorder = self.recorder.as_ref();
        let mut deliver = |p: Piece<'_>| match p {
            Piece::Line(line) => sink.line(line),
            Piece::TooLong => sink.too_long(),
        };
        loop {
            let read = tokio::select! {
                _ = shutdown.changed() => return,
                read = stdin.read(&mut buf) => read,
            };
            match read {
                Ok(0) => break,
                Ok(n) => splitter.feed(&buf[..n], &mut deliver),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read standard input; stopped following it");
                    return;
                }
            }
        }
        splitter.finish(&mut deliver);
        tracing::info!("standard input closed; /metrics keeps serving what was counted");
    }
}

/// Polls Sidekiq's Redis every `interval`.
pub struct QueuePollService {
    poller: tokio::sync::Mutex<QueuePoller>,
    interval: Duration,
}

impl QueuePollService {
    /// A service running `poller`.
    pub fn new(poller: QueuePoller, interval: Duration) -> Self {
        QueuePollService {
            poller: tokio::sync::Mutex::new(poller),
            interval,
        }
    }
}

#[async_trait]
impl BackgroundService for QueuePollService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut poller = self.poller.lock().await;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = ticker.tick() => {
                    // Failures are logged and counted by the poller; retry at the next tick.
                    let _ = poller.poll().await;
                }
            }
        }
    }
}
