//! The JSON access log: one line per request, written by a dedicated thread.
//!
//! Request handling never waits for the log: lines accumulate in a bounded buffer that a
//! thread writes every 100 ms, and when the writer falls behind (a slow disk, a blocked stdout
//! pipe) lines are dropped and counted in `slogate_access_log_dropped_total` instead of
//! slowing traffic down. At shutdown what is pending is written.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use slogate_config::{AccessLogSettings, LogTarget};
use slogate_metrics::SliMetrics;

/// One operation of a request, as logged.
#[derive(Debug, Serialize)]
pub struct LoggedOperation<'a> {
    /// Label value of the operation.
    pub name: &'a str,
    /// Operation type.
    #[serde(rename = "type")]
    pub op_type: &'a str,
    /// Outcome.
    pub outcome: &'a str,
    /// Error codes and counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<(&'a str, u64)>,
}

/// One access log line.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    /// RFC 3339 UTC time the request started, with milliseconds.
    pub time: String,
    /// X-Request-Id.
    pub request_id: &'a str,
    /// Client address as seen by slogate (or from trusted forwarding headers).
    pub client: String,
    /// HTTP method.
    pub method: &'a str,
    /// Path (with the query string if configured).
    pub path: &'a str,
    /// Status sent to the client (0 if none).
    pub status: u16,
    /// Total seconds, request head to last byte.
    pub duration: f64,
    /// Seconds from the upstream request sent to its response ended, if it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_duration: Option<f64>,
    /// The backend that served it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    /// Response body bytes sent.
    pub bytes_sent: usize,
    /// Request body bytes received.
    pub bytes_received: usize,
    /// `graphql` or `http`.
    pub kind: &'a str,
    /// The service label.
    pub service: &'a str,
    /// The worst outcome of the request's operations.
    pub outcome: &'a str,
    /// The operations.
    pub operations: Vec<LoggedOperation<'a>>,
    /// Why the request failed inside the proxy, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// User-Agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
}

/// How often the writer thread writes what accumulated.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Lines accumulated since the last write.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    lines: usize,
}

struct Shared {
    pending: Mutex<Pending>,
    max_lines: usize,
    writer: Mutex<BufWriter<Box<dyn Write + Send>>>,
}

impl Shared {
    /// Writes what accumulated; called by the writer thread and at shutdown.
    fn flush(&self) {
        let batch = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if batch.data.is_empty() {
            return;
        }
        if let Ok(mut w) = self.writer.lock() {
            let _ = w.write_all(&batch.data);
            let _ = w.flush();
        }
    }
}

/// Collects lines; a thread writes them every 100 ms.
///
/// Requests append to a buffer under an uncontended mutex and never wake the writer, so the
/// log costs no system call or context switch per request (a per-line channel cost ~3.5
/// context switches per request in the peer benchmark). Beyond `buffer_lines` pending lines,
/// lines are dropped and counted.
#[derive(Clone)]
pub struct AccessLog {
    shared: Option<Arc<Shared>>,
    metrics: SliMetrics,
}

impl AccessLog {
    /// Starts the writer thread for `settings`; `Off` starts nothing.
    pub fn start(settings: &AccessLogSettings, metrics: SliMetrics) -> io::Result<AccessLog> {
        let writer: Box<dyn Write + Send> = match &settings.target {
            LogTarget::Off => {
                return Ok(AccessLog {
                    shared: None,
                    metrics,
                })
            }
            LogTarget::Stdout => Box::new(io::stdout()),
            LogTarget::Stderr => Box::new(io::stderr()),
            LogTarget::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            max_lines: settings.buffer_lines,
            writer: Mutex::new(BufWriter::with_capacity(256 * 1024, writer)),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("slogate-access-log".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_INTERVAL);
                match weak.upgrade() {
                    Some(shared) => shared.flush(),
                    None => return,
                }
            })?;
        Ok(AccessLog {
            shared: Some(shared),
            metrics,
        })
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Appends a record; drops it (and counts the drop) if too many lines are pending.
    pub fn write(&self, record: &AccessRecord<'_>) {
        let Some(shared) = &self.shared else { return };
        let Ok(mut pending) = shared.pending.lock() else {
            return;
        };
        if pending.lines >= shared.max_lines {
            drop(pending);
            self.metrics.access_log_dropped();
            return;
        }
        let before = pending.data.len();
        if serde_json::to_writer(&mut pending.data, record).is_ok() {
            pending.data.push(b'\n');
            pending.lines += 1;
        } else {
            pending.data.truncate(before);
        }
    }

    /// Writes what is pending now (at shutdown).
    pub fn flush(&self) {
        if let Some(shared) = &self.shared {
            shared.flush();
        }
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-30T10:08:13.042Z`.
///
/// The date and time of day change once a second: they are formatted once per second per
/// thread and only the milliseconds are added per line.
pub fn rfc3339(t: SystemTime) -> String {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let (days, rem) = (secs / 86_400, secs % 86_400);
            let (y, m, day) = civil_from_days(days as i64);
            cached.1 = format!(
                "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            );
            cached.0 = secs;
        }
        let millis = d.subsec_millis();
        let mut out = String::with_capacity(cached.1.len() + 5);
        out.push_str(&cached.1);
        out.push('.');
        out.push(char::from(b'0' + (millis / 100) as u8));
        out.push(char::from(b'0' + (millis / 10 % 10) as u8));
        out.push(char::from(b'0' + (millis % 10) as u8));
        out.push('Z');
        out
    })
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_033_293_042);
        assert_eq!(rfc3339(t), "2026-11-30T10:08:13.042Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
