//! The JSON access log: one line per request, written by a dedicated thread.
//!
//! Request handling never waits for the log: lines accumulate in a bounded buffer that a
//! thread writes every 100 ms (sooner when 32 KiB accumulated; an idle log's thread sleeps
//! until a line comes, so an idle proxy is not woken 100 times a second), and when the writer falls
//! behind (a slow disk, a blocked stdout pipe) lines are dropped and counted in
//! `slogate_access_log_dropped_total` instead of slowing traffic down. At shutdown what is
//! pending is written.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use serde::{Serialize, Serializer};
use slogate_config::{AccessLogSettings, LogTarget};
use slogate_core::json::write_string;
use slogate_core::{Kind, OperationType, Outcome};
use slogate_metrics::SliMetrics;

/// A value the log writes without the escape scan, because its type admits nothing that
/// JSON would escape: an HTTP method (a token, RFC 9110 5.6.2: no quote, backslash or
/// control byte; `http::Method` checks it), the kind, an outcome, an operation type (fixed
/// words). The scan cost ~120 instructions a field.
trait Plain {
    fn plain(&self) -> &'static str;
}

impl Plain for Kind {
    fn plain(&self) -> &'static str {
        self.as_str()
    }
}

impl Plain for Outcome {
    fn plain(&self) -> &'static str {
        self.as_str()
    }
}

impl Plain for OperationType {
    fn plain(&self) -> &'static str {
        self.as_str()
    }
}

/// For serde (the tests' oracle): the same text as the line.
fn serialize_plain<T: Plain, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.plain())
}

fn serialize_method<S: Serializer>(m: &&Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

/// One operation of a request, as logged.
#[derive(Debug, Serialize)]
pub struct LoggedOperation<'a> {
    /// Label value of the operation.
    pub name: &'a str,
    /// Operation type.
    #[serde(rename = "type", serialize_with = "serialize_plain")]
    pub op_type: OperationType,
    /// Outcome.
    #[serde(serialize_with = "serialize_plain")]
    pub outcome: Outcome,
    /// Error codes and counts.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub error_codes: &'a [(String, u64)],
}

/// One access log line.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    /// RFC 3339 UTC time the request started, with milliseconds.
    pub time: &'a str,
    /// X-Request-Id.
    pub request_id: &'a str,
    /// Client address as seen by slogate (or from trusted forwarding headers).
    pub client: &'a str,
    /// HTTP method.
    #[serde(serialize_with = "serialize_method")]
    pub method: &'a Method,
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
    #[serde(serialize_with = "serialize_plain")]
    pub kind: Kind,
    /// The service label.
    pub service: &'a str,
    /// The worst outcome of the request's operations.
    #[serde(serialize_with = "serialize_plain")]
    pub outcome: Outcome,
    /// The operations.
    pub operations: &'a [LoggedOperation<'a>],
    /// Why the request failed inside the proxy, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// User-Agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
}

/// A field's key with the comma before it, `,"name":`, made when compiled: copied in one
/// move of a known length (three calls to `memcpy` per field before).
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}

impl AccessRecord<'_> {
    /// Appends the line as `serde_json::to_writer` writes this record (the test oracle),
    /// without serde's per-field machinery: the line costs a few hundred instructions, and
    /// strings that need no escaping (nearly all) are copied whole.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":");
        write_string(out, self.time);
        field_str(out, key!("request_id"), self.request_id);
        field_str(out, key!("client"), self.client);
        field_plain(out, key!("method"), self.method.as_str());
        field_str(out, key!("path"), self.path);
        field_raw(out, key!("status"), itoa::Buffer::new().format(self.status));
        field_f64(out, key!("duration"), self.duration);
        if let Some(d) = self.upstream_duration {
            field_f64(out, key!("upstream_duration"), d);
        }
        if let Some(u) = self.upstream {
            field_str(out, key!("upstream"), u);
        }
        field_raw(
            out,
            key!("bytes_sent"),
            itoa::Buffer::new().format(self.bytes_sent),
        );
        field_raw(
            out,
            key!("bytes_received"),
            itoa::Buffer::new().format(self.bytes_received),
        );
        field_plain(out, key!("kind"), self.kind.plain());
        field_str(out, key!("service"), self.service);
        field_plain(out, key!("outcome"), self.outcome.plain());
        out.extend_from_slice(b",\"operations\":[");
        for (i, op) in self.operations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_string(out, op.name);
            field_plain(out, key!("type"), op.op_type.plain());
            field_plain(out, key!("outcome"), op.outcome.plain());
            if !op.error_codes.is_empty() {
                out.extend_from_slice(b",\"error_codes\":[");
                for (j, (code, n)) in op.error_codes.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    write_string(out, code);
                    out.push(b',');
                    out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
                    out.push(b']');
                }
                out.push(b']');
            }
            out.push(b'}');
        }
        out.push(b']');
        if let Some(e) = self.error {
            field_str(out, key!("error"), e);
        }
        if let Some(ua) = self.user_agent {
            field_str(out, key!("user_agent"), ua);
        }
        out.push(b'}');
    }
}

#[inline(always)]
fn field_str(out: &mut Vec<u8>, key: &'static [u8], value: &str) {
    out.extend_from_slice(key);
    write_string(out, value);
}

/// A field whose value is a [`Plain`] one's (or a method's): written without the escape scan.
#[inline(always)]
fn field_plain(out: &mut Vec<u8>, key: &'static [u8], value: &str) {
    out.extend_from_slice(key);
    write_plain(out, value);
}

#[inline(always)]
fn write_plain(out: &mut Vec<u8>, value: &str) {
    debug_assert!(
        !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
        "an access-log field written unescaped needs an escape: {value:?}"
    );
    out.reserve(value.len() + 2);
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

#[inline(always)]
fn field_raw(out: &mut Vec<u8>, key: &'static [u8], value: &str) {
    out.extend_from_slice(key);
    out.extend_from_slice(value.as_bytes());
}

fn field_f64(out: &mut Vec<u8>, key: &'static [u8], value: f64) {
    out.extend_from_slice(key);
    // serde_json's own float form (shortest round-trip, `e+` exponents, null when not
    // finite); writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// The writer thread looks at what accumulated this often, and writes it when
/// [`flush_due`] says so.
const TICK: Duration = Duration::from_millis(10);
/// At most this long between two writes of what accumulated.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Or sooner, once this much accumulated: a busy proxy writes small batches often instead
/// of megabytes every 100 ms, a write whose system call held the core long enough to show in
/// the peer benchmark's p99 (1.91 ms with the log, 1.31 ms without, at 100 ms batches).
const FLUSH_BYTES: usize = 32 * 1024;

/// A writer that found nothing to write for a whole tick sleeps until a line comes (the
/// request that adds it wakes the writer), or this long: how soon a writer whose log was
/// dropped notices and ends.
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// Whether what accumulated is to be written now.
fn flush_due(pending_bytes: usize, since_last_write: Duration) -> bool {
    pending_bytes >= FLUSH_BYTES || (pending_bytes > 0 && since_last_write >= FLUSH_INTERVAL)
}

/// Lines accumulated since the last write.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    lines: usize,
    /// The writer sleeps until a line comes: the next line wakes it (one wake-up per idle
    /// spell; a busy log's writer never sleeps, so requests never make a system call for it).
    writer_asleep: bool,
}

/// The writing side: the output, and the buffer of the last batch written, handed back to
/// the requests (emptied) so that they do not grow a new one from nothing every interval.
struct Writer {
    /// Written a batch at a time: the batch is the buffer (a `BufWriter` around it copied
    /// every batch into its own before writing it).
    out: Box<dyn Write + Send>,
    spare: Vec<u8>,
}

/// A batch buffer larger than this (after a burst) is freed instead of kept as the spare.
const MAX_SPARE_BYTES: usize = 4 << 20;

struct Shared {
    pending: Mutex<Pending>,
    max_lines: usize,
    writer: Mutex<Writer>,
    /// Where an idle writer sleeps.
    line_came: Condvar,
}

impl Shared {
    fn pending_bytes(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.data.len())
    }

    /// Sleeps until a line is pending (at most [`IDLE_WAIT`]); at once if one is.
    fn wait_for_line(&self) {
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        if p.data.is_empty() {
            p.writer_asleep = true;
            p = match self.line_came.wait_timeout(p, IDLE_WAIT) {
                Ok((p, _)) => p,
                Err(_) => return,
            };
            p.writer_asleep = false;
        }
    }

    /// The writer thread's life: every tick, writes what accumulated when [`flush_due`] says
    /// so; after a tick with nothing pending, sleeps until a line comes. Ends when the log
    /// is dropped.
    fn writer_loop(weak: std::sync::Weak<Shared>) {
        let mut last_write = std::time::Instant::now();
        loop {
            std::thread::sleep(TICK);
            let Some(shared) = weak.upgrade() else { return };
            let pending = shared.pending_bytes();
            if pending == 0 {
                shared.wait_for_line();
            } else if flush_due(pending, last_write.elapsed()) {
                shared.flush();
                last_write = std::time::Instant::now();
            }
        }
    }

    /// Writes what accumulated; called by the writer thread and at shutdown. The writer's
    /// lock is taken first, then the pending one only to swap the buffers (requests take
    /// only the pending one).
    fn flush(&self) {
        let Ok(mut w) = self.writer.lock() else {
            return;
        };
        let w = &mut *w;
        let mut batch = match self.pending.lock() {
            Ok(mut p) => {
                p.lines = 0;
                std::mem::replace(&mut p.data, std::mem::take(&mut w.spare))
            }
            Err(_) => return,
        };
        if !batch.is_empty() {
            let _ = w.out.write_all(&batch);
            let _ = w.out.flush();
        }
        batch.clear();
        if batch.capacity() <= MAX_SPARE_BYTES {
            w.spare = batch;
        }
    }
}

/// Collects lines; a thread writes them every 100 ms, or sooner when 32 KiB accumulated.
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
            writer: Mutex::new(Writer {
                out: writer,
                spare: Vec::new(),
            }),
            line_came: Condvar::new(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("slogate-access-log".into())
            .spawn(move || Shared::writer_loop(weak))?;
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
        record.write_json(&mut pending.data);
        pending.data.push(b'\n');
        pending.lines += 1;
        if pending.writer_asleep {
            pending.writer_asleep = false;
            drop(pending);
            shared.line_came.notify_one();
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
    let mut buf = [0u8; 24];
    rfc3339_into(t, &mut buf).to_string()
}

/// [`rfc3339`] into `buf`, without allocating: the date and time of day are formatted once
/// per second and thread.
pub fn rfc3339_into(t: SystemTime, buf: &mut [u8; 24]) -> &str {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (cached_secs, mut day) = SECOND.get();
    if cached_secs != secs {
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, dd) = civil_from_days(days as i64);
        let text = format!(
            "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
        // Years past 9999 do not fit; they do not happen.
        if text.len() == 19 {
            day.copy_from_slice(text.as_bytes());
            SECOND.set((secs, day));
        }
    }
    let millis = d.subsec_millis();
    buf[..19].copy_from_slice(&day);
    buf[19] = b'.';
    buf[20] = b'0' + (millis / 100) as u8;
    buf[21] = b'0' + (millis / 10 % 10) as u8;
    buf[22] = b'0' + (millis % 10) as u8;
    buf[23] = b'Z';
    std::str::from_utf8(buf).unwrap_or("")
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
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Mostly plain, with quotes, backslashes, control characters and UTF-8 in the mix.
        prop_oneof![
            "[a-zA-Z0-9 /_.-]{0,40}",
            "[\\x00-\\x1f\"\\\\a-z\u{e9}\u{1F600}\u{7f}]{0,20}",
            // Long clean runs around one escape: write_string's eight-byte steps.
            "[a-z\u{e9}]{0,30}[\\x00-\\x1f\"\\\\][a-z\u{e9}\\x7f]{0,30}",
        ]
    }

    proptest! {
        #[test]
        fn lines_are_what_serde_json_writes(
            strings in proptest::collection::vec(text(), 12),
            status in any::<u16>(),
            duration in prop_oneof![any::<f64>(), 0.0..100.0f64],
            upstream_duration in proptest::option::of(0.0..10.0f64),
            bytes in any::<(u32, u32)>(),
            flags in any::<(bool, bool, bool)>(),
            codes in proptest::collection::vec(("[A-Z_\"]{1,12}", any::<u64>()), 0..3),
            ops in 0usize..3,
        ) {
            const OUTCOMES: [Outcome; 4] = Outcome::ALL;
            // Any method a client can send: the standard ones and extension tokens.
            let method = Method::from_bytes(strings[3].as_bytes()).unwrap_or(Method::PATCH);
            let operations: Vec<LoggedOperation<'_>> = (0..ops)
                .map(|i| LoggedOperation {
                    name: &strings[9 + i % 3],
                    op_type: OperationType::Query,
                    outcome: OUTCOMES[i % OUTCOMES.len()],
                    error_codes: if i == 0 { &codes } else { &[] },
                })
                .collect();
            let record = AccessRecord {
                time: &strings[0],
                request_id: &strings[1],
                client: &strings[2],
                method: &method,
                path: &strings[4],
                status,
                duration,
                upstream_duration,
                upstream: flags.0.then_some(strings[5].as_str()),
                bytes_sent: bytes.0 as usize,
                bytes_received: bytes.1 as usize,
                kind: if flags.0 { Kind::Graphql } else { Kind::Http },
                service: &strings[6],
                outcome: OUTCOMES[status as usize % OUTCOMES.len()],
                operations: &operations,
                error: flags.1.then_some(strings[8].as_str()),
                user_agent: flags.2.then_some(strings[10].as_str()),
            };
            let mut ours = Vec::new();
            record.write_json(&mut ours);
            let oracle = serde_json::to_vec(&record).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(oracle).unwrap());
        }
    }

    #[test]
    fn no_method_a_client_can_send_needs_an_escape() {
        // The method is written without the escape scan: every byte http::Method admits
        // (a token's characters) must be one JSON leaves as is.
        for b in 0..=255u8 {
            let Ok(m) = Method::from_bytes(&[b'X', b]) else {
                continue;
            };
            let mut line = Vec::new();
            write_plain(&mut line, m.as_str());
            let back: String = serde_json::from_slice(&line).expect("a JSON string");
            assert_eq!(back, m.as_str(), "byte {b:#04x}");
        }
        for word in Outcome::ALL
            .map(|o| o.plain())
            .into_iter()
            .chain([Kind::Graphql.plain(), Kind::Http.plain()])
            .chain(
                [
                    OperationType::Query,
                    OperationType::Mutation,
                    OperationType::Subscription,
                    OperationType::Unknown,
                    OperationType::Http,
                ]
                .map(|t| t.plain()),
            )
        {
            assert!(
                word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{word}"
            );
        }
    }

    #[test]
    fn batches_are_written_in_order_and_their_buffer_is_handed_back() {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let shared = Shared {
            pending: Mutex::new(Pending::default()),
            max_lines: 100,
            writer: Mutex::new(Writer {
                out: Box::new(sink.clone()),
                spare: Vec::new(),
            }),
            line_came: Condvar::new(),
        };
        let append = |line: &str| {
            let mut p = shared.pending.lock().unwrap();
            p.data.extend_from_slice(line.as_bytes());
            p.lines += 1;
        };
        append("a\n");
        append("b\n");
        shared.flush();
        assert_eq!(shared.pending.lock().unwrap().lines, 0);
        append("c\n");
        shared.flush();
        // The first batch's buffer came back for the requests to fill, emptied.
        let pending = shared.pending.lock().unwrap();
        assert!(
            pending.data.is_empty() && pending.data.capacity() >= 4,
            "{}",
            pending.data.capacity()
        );
        drop(pending);
        shared.flush();
        assert_eq!(&*sink.0.lock().unwrap(), b"a\nb\nc\n");
    }

    /// Polls `done` every millisecond for up to `limit`; whether it came true.
    fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    #[test]
    fn an_idle_writer_sleeps_and_the_next_line_wakes_it() {
        let path = std::env::temp_dir().join(format!("slogate-idle-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let settings = AccessLogSettings {
            target: LogTarget::File(path.clone()),
            include_query: false,
            buffer_lines: 100,
        };
        let metrics = SliMetrics::register(&slogate_metrics::prometheus::Registry::new(), &[1.0])
            .expect("metrics");
        let log = AccessLog::start(&settings, metrics).expect("log");
        let shared = log.shared.clone().expect("on");
        let asleep = || shared.pending.lock().unwrap().writer_asleep;
        assert!(
            within(Duration::from_secs(2), asleep),
            "a writer with nothing to write sleeps instead of ticking"
        );
        let record = AccessRecord {
            time: "2026-12-04T00:00:00.000Z",
            request_id: "r1",
            client: "127.0.0.1",
            method: &Method::GET,
            path: "/up",
            status: 200,
            duration: 0.001,
            upstream_duration: None,
            upstream: None,
            bytes_sent: 0,
            bytes_received: 0,
            kind: Kind::Http,
            service: "s",
            outcome: Outcome::Success,
            operations: &[],
            error: None,
            user_agent: None,
        };
        log.write(&record);
        // Well before IDLE_WAIT: the line woke the writer; it did not wait out its sleep.
        let written = || std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"r1\""));
        let woke = within(IDLE_WAIT / 2, written);
        drop(shared);
        drop(log);
        let _ = std::fs::remove_file(&path);
        assert!(woke, "the line was not written within {:?}", IDLE_WAIT / 2);
    }

    #[test]
    fn a_batch_is_written_when_large_or_old_and_never_empty() {
        assert!(!flush_due(0, Duration::from_secs(5)), "nothing to write");
        assert!(!flush_due(FLUSH_BYTES - 1, TICK), "small and young: wait");
        assert!(flush_due(FLUSH_BYTES, TICK), "large: now");
        assert!(flush_due(1, FLUSH_INTERVAL), "old: now");
    }

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_033_293_042);
        assert_eq!(rfc3339(t), "2026-11-30T10:08:13.042Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
