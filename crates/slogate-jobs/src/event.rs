//! The pure part: one Sidekiq JSON log line in, one [`LogLine`] out.
//!
//! Sidekiq 6.4's `Sidekiq::Logger::Formatters::JSON` writes one object per
//! line: `{"ts":…,"pid":…,"tid":…,"lvl":…,"msg":…,"ctx":{…}}`. Its
//! `Sidekiq::JobLogger` logs `start` before a job runs and `done` or `fail`
//! after, with `ctx` holding `class` (the `display_class`, `wrapped` ActiveJob
//! class or worker class), `jid` and, on `done`/`fail`, `elapsed` (seconds,
//! rounded to milliseconds). slogate's server middleware adds `queue`,
//! `enqueued_at` and, on failure, `error_class` to the same `ctx`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::time::{epoch_number_to_seconds, parse_rfc3339};

/// What one log line is.
#[derive(Clone, Debug, PartialEq)]
pub enum LogLine<'a> {
    /// A job's `start`, `done` or `fail`.
    Job(JobEvent<'a>),
    /// A JSON object that is not a job's `start`/`done`/`fail` (boot messages,
    /// warnings, backtraces, other programs' JSON).
    Unrelated,
    /// `start`/`done`/`fail` without a job class in its context: not written
    /// by Sidekiq's job logger.
    InvalidJob,
    /// Not a JSON object: plain text, a truncated line, binary data.
    Malformed,
}

/// The job logger's three messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobMessage {
    /// The job is about to run.
    Start,
    /// The job returned.
    Done,
    /// The job raised.
    Fail,
}

impl JobMessage {
    /// The message as Sidekiq writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobMessage::Start => "start",
            JobMessage::Done => "done",
            JobMessage::Fail => "fail",
        }
    }

    fn parse(text: &str) -> Option<JobMessage> {
        match text {
            "start" => Some(JobMessage::Start),
            "done" => Some(JobMessage::Done),
            "fail" => Some(JobMessage::Fail),
            _ => None,
        }
    }
}

/// One attempt of one job, as its log line tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobEvent<'a> {
    /// `start`, `done` or `fail`.
    pub message: JobMessage,
    /// The job class (`ctx.class`).
    pub class: Cow<'a, str>,
    /// The queue (`ctx.queue`, from slogate's middleware).
    pub queue: Option<Cow<'a, str>>,
    /// The exception's class on `fail` (`ctx.error_class`, from slogate's middleware).
    pub error_class: Option<Cow<'a, str>>,
    /// Execution time in seconds (`ctx.elapsed`).
    pub elapsed: Option<f64>,
    /// When the job was last pushed to its queue, Unix seconds
    /// (`ctx.enqueued_at`, from slogate's middleware).
    pub enqueued_at: Option<f64>,
    /// When the line was logged, Unix seconds (`ts`).
    pub logged_at: Option<f64>,
}

impl JobEvent<'_> {
    /// Seconds from enqueue to completion, when both ends are known. Clock
    /// skew between the pushing and the running host never makes it negative.
    pub fn enqueue_to_completion(&self) -> Option<f64> {
        let seconds = self.logged_at? - self.enqueued_at?;
        Some(seconds.max(0.0))
    }
}

/// Parses one line (without its newline; a trailing `\r` and surrounding
/// whitespace are ignored). Never fails: anything unexpected is classified.
pub fn parse_line(line: &[u8]) -> LogLine<'_> {
    let line = line.trim_ascii();
    if line.first() != Some(&b'{') {
        return LogLine::Malformed;
    }
    match serde_json::from_slice::<RawLine<'_>>(line) {
        Ok(raw) => raw.into_log_line(),
        // Valid JSON of an unexpected shape (e.g. `ctx` not an object).
        Err(_) if serde_json::from_slice::<IgnoredAny>(line).is_ok() => LogLine::Unrelated,
        Err(_) => LogLine::Malformed,
    }
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(default, borrow)]
    ts: Lenient<'a>,
    #[serde(default, borrow)]
    msg: Lenient<'a>,
    #[serde(default, borrow)]
    ctx: Option<RawContext<'a>>,
}

#[derive(Default, Deserialize)]
struct RawContext<'a> {
    #[serde(default, borrow)]
    class: Lenient<'a>,
    #[serde(default, borrow)]
    queue: Lenient<'a>,
    #[serde(default, borrow)]
    error_class: Lenient<'a>,
    #[serde(default, borrow)]
    elapsed: Lenient<'a>,
    #[serde(default, borrow)]
    enqueued_at: Lenient<'a>,
}

impl<'a> RawLine<'a> {
    fn into_log_line(self) -> LogLine<'a> {
        let Some(message) = self.msg.as_str().and_then(JobMessage::parse) else {
            return LogLine::Unrelated;
        };
        let ctx = self.ctx.unwrap_or_default();
        let Some(class) = ctx.class.into_non_empty_str() else {
            return LogLine::InvalidJob;
        };
        LogLine::Job(JobEvent {
            message,
            class,
            queue: ctx.queue.into_non_empty_str(),
            error_class: ctx.error_class.into_non_empty_str(),
            elapsed: ctx.elapsed.as_f64().filter(|s| s.is_finite() && *s >= 0.0),
            enqueued_at: ctx.enqueued_at.as_epoch_seconds(),
            logged_at: self.ts.as_str().and_then(parse_rfc3339),
        })
    }
}

/// Any JSON value, keeping strings and numbers: a field of an unexpected
/// type reads as absent instead of failing the line.
#[derive(Debug, Default)]
enum Lenient<'a> {
    #[default]
    Other,
    Str(Cow<'a, str>),
    Num(f64),
}

impl<'a> Lenient<'a> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Lenient::Str(s) => Some(s),
            _ => None,
        }
    }

    fn into_non_empty_str(self) -> Option<Cow<'a, str>> {
        match self {
            Lenient::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Lenient::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn as_epoch_seconds(&self) -> Option<f64> {
        match self {
            Lenient::Num(n) => epoch_number_to_seconds(*n),
            Lenient::Str(s) => parse_rfc3339(s),
            Lenient::Other => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lenient::Str(Cow::Owned(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Lenient::Num(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lenient::Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Lenient::Num(v as f64))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Lenient::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines exactly as Sidekiq 6.4.1 wrote them for tests/sidekiq-app.
    const DONE: &str = r#"{"ts":"2026-11-30T10:53:37.991Z","pid":16206,"tid":"bn2","lvl":"INFO","msg":"done","ctx":{"class":"HardJob","jid":"4822377fe8f4a0794e546609","queue":"default","enqueued_at":1796036017.545454,"elapsed":0.002}}"#;
    const FAIL: &str = r#"{"ts":"2026-11-30T10:53:37.998Z","pid":16206,"tid":"bk6","lvl":"INFO","msg":"fail","ctx":{"class":"MissingRecordJob","jid":"0b616429cde9d105a4ca810a","queue":"default","enqueued_at":1796036017.5460272,"error_class":"ActiveRecord::RecordNotFound","elapsed":0.009}}"#;
    const START: &str = r#"{"ts":"2026-11-30T10:53:37.988Z","pid":16206,"tid":"bhy","lvl":"INFO","msg":"start","ctx":{"class":"LegacyCleanupJob","jid":"4915268cda7da94b2747b525"}}"#;
    const DONE_WITHOUT_MIDDLEWARE: &str = r#"{"ts":"2026-11-30T10:53:38.293Z","pid":1,"tid":"blu","lvl":"INFO","msg":"done","ctx":{"class":"SleepJob","jid":"203597dd078c12d052f6e135","elapsed":0.3}}"#;
    const DEAD: &str = r#"{"ts":"2026-11-30T10:53:37.990Z","pid":16206,"tid":"bhy","lvl":"INFO","msg":"Adding dead LegacyCleanupJob job 4915268cda7da94b2747b525","ctx":{"class":"LegacyCleanupJob","jid":"4915268cda7da94b2747b525","queue":"critical"}}"#;
    const BOOT: &str = r#"{"ts":"2026-11-30T10:53:37.983Z","pid":16206,"tid":"brq","lvl":"INFO","msg":"Booting Sidekiq 6.4.1 with redis options {:url=>\"redis://127.0.0.1:16399/0\"}"}"#;

    fn job(line: &str) -> JobEvent<'_> {
        match parse_line(line.as_bytes()) {
            LogLine::Job(event) => event,
            other => panic!("not a job line: {other:?}"),
        }
    }

    #[test]
    fn done_line_with_middleware_context() {
        let e = job(DONE);
        assert_eq!(e.message, JobMessage::Done);
        assert_eq!(e.class, "HardJob");
        assert_eq!(e.queue.as_deref(), Some("default"));
        assert_eq!(e.error_class, None);
        assert_eq!(e.elapsed, Some(0.002));
        assert_eq!(e.enqueued_at, Some(1_796_036_017.545454));
        let total = e.enqueue_to_completion().expect("duration");
        assert!((total - 0.445546).abs() < 1e-5, "{total}");
        assert!(
            matches!(e.class, Cow::Borrowed(_)),
            "no copy for plain strings"
        );
    }

    #[test]
    fn fail_line_carries_the_error_class() {
        let e = job(FAIL);
        assert_eq!(e.message, JobMessage::Fail);
        assert_eq!(e.class, "MissingRecordJob");
        assert_eq!(
            e.error_class.as_deref(),
            Some("ActiveRecord::RecordNotFound")
        );
        assert_eq!(e.elapsed, Some(0.009));
    }

    #[test]
    fn start_line_has_no_elapsed() {
        let e = job(START);
        assert_eq!(e.message, JobMessage::Start);
        assert_eq!(e.class, "LegacyCleanupJob");
        assert_eq!((e.elapsed, e.queue), (None, None));
    }

    #[test]
    fn without_middleware_only_execution_time_is_known() {
        let e = job(DONE_WITHOUT_MIDDLEWARE);
        assert_eq!(e.elapsed, Some(0.3));
        assert_eq!(e.queue, None);
        assert_eq!(e.enqueue_to_completion(), None);
    }

    #[test]
    fn other_sidekiq_messages_are_unrelated() {
        assert_eq!(parse_line(DEAD.as_bytes()), LogLine::Unrelated);
        assert_eq!(parse_line(BOOT.as_bytes()), LogLine::Unrelated);
        let warn = r#"{"ts":"2026-11-30T10:53:37.995Z","pid":1,"tid":"b","lvl":"WARN","msg":"ArgumentError: nothing to clean"}"#;
        assert_eq!(parse_line(warn.as_bytes()), LogLine::Unrelated);
        for other in [
            "{}",
            r#"{"msg":{"done":true}}"#,
            r#"{"msg":"DONE","ctx":{"class":"A"}}"#,
            r#"{"msg":"done","ctx":"HardJob"}"#,
            r#"{"level":"info","message":"done"}"#,
        ] {
            assert_eq!(parse_line(other.as_bytes()), LogLine::Unrelated, "{other}");
        }
    }

    #[test]
    fn job_messages_without_a_class_are_invalid() {
        for line in [
            r#"{"msg":"done"}"#,
            r#"{"msg":"fail","ctx":{}}"#,
            r#"{"msg":"done","ctx":{"class":""}}"#,
            r#"{"msg":"done","ctx":{"class":42}}"#,
            r#"{"msg":"start","ctx":{"class":null}}"#,
        ] {
            assert_eq!(parse_line(line.as_bytes()), LogLine::InvalidJob, "{line}");
        }
    }

    #[test]
    fn malformed_lines() {
        for line in [
            "",
            "   ",
            "2026-11-30T10:53:37.983Z pid=1 tid=x class=HardJob jid=1 INFO: done",
            "Passing the timeout as a positional argument is deprecated",
            "[1,2,3]",
            r#"["2026-11-30T10:53:37.988Z","done",{"class":"A"}]"#,
            "\"done\"",
            "null",
            "{",
            "{\"ts\":\"2026-11-30T10:53:37.991Z\",\"msg\":\"done\",\"ctx\":{\"class\":\"Hard",
            "{\"msg\":\"done\",\"ctx\":{\"class\":\"A\"}} trailing",
            "\u{0}\u{1}\u{2}",
        ] {
            assert_eq!(parse_line(line.as_bytes()), LogLine::Malformed, "{line:?}");
        }
        // Invalid UTF-8 inside a string: not a job line, whatever else it is.
        assert!(!matches!(
            parse_line(b"{\"msg\":\"done\xff\"}"),
            LogLine::Job(_)
        ));
    }

    #[test]
    fn every_prefix_of_a_job_line_is_malformed_never_a_job() {
        for cut in 0..DONE.len() {
            let prefix = &DONE.as_bytes()[..cut];
            assert!(
                !matches!(parse_line(prefix), LogLine::Job(_)),
                "prefix of {cut} bytes parsed as a job"
            );
        }
    }

    #[test]
    fn crlf_and_whitespace_are_ignored() {
        let line = format!("  {DONE}\r");
        assert_eq!(job(&line).class, "HardJob");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let line = r#"{"msg":"done","ctx":{"class":"Billing::Sync\u004aob","queue":"a\"b"}}"#;
        let e = job(line);
        assert_eq!(e.class, "Billing::SyncJob");
        assert_eq!(e.queue.as_deref(), Some("a\"b"));
    }

    #[test]
    fn fields_of_unexpected_types_read_as_absent() {
        let line = r#"{"ts":12,"msg":"done","ctx":{"class":"A","queue":7,"elapsed":"0.5","enqueued_at":true,"error_class":["X"],"tags":["a","b"],"bid":"b1"}}"#;
        let e = job(line);
        assert_eq!(e.class, "A");
        assert_eq!(
            (e.queue, e.elapsed, e.enqueued_at, e.logged_at),
            (None, None, None, None)
        );
        assert_eq!(e.error_class, None);
    }

    #[test]
    fn negative_or_absurd_numbers_are_dropped() {
        let e = job(r#"{"msg":"done","ctx":{"class":"A","elapsed":-1,"enqueued_at":-5}}"#);
        assert_eq!((e.elapsed, e.enqueued_at), (None, None));
    }

    #[test]
    fn enqueued_at_in_milliseconds_and_as_a_timestamp() {
        let ms = r#"{"ts":"2026-11-30T10:53:38.000Z","msg":"done","ctx":{"class":"A","enqueued_at":1796036017500}}"#;
        assert_eq!(job(ms).enqueue_to_completion(), Some(0.5));
        let iso = r#"{"ts":"2026-11-30T10:53:38.000Z","msg":"done","ctx":{"class":"A","enqueued_at":"2026-11-30T10:53:37.000Z"}}"#;
        assert_eq!(job(iso).enqueue_to_completion(), Some(1.0));
    }

    #[test]
    fn clock_skew_never_gives_a_negative_duration() {
        let line = r#"{"ts":"2026-11-30T10:53:37.000Z","msg":"done","ctx":{"class":"A","enqueued_at":1796036020.0}}"#;
        assert_eq!(job(line).enqueue_to_completion(), Some(0.0));
    }

    #[test]
    fn duplicate_keys_do_not_crash() {
        let line = r#"{"msg":"done","msg":"fail","ctx":{"class":"A"}}"#;
        assert!(matches!(
            parse_line(line.as_bytes()),
            LogLine::Unrelated | LogLine::Job(_)
        ));
    }

    #[test]
    fn deeply_nested_json_does_not_crash() {
        let deep = format!("{{\"msg\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse_line(deep.as_bytes()),
            LogLine::Malformed | LogLine::Unrelated
        ));
    }
}
