//! The follower in the process under test, with a synthetic Sidekiq writer:
//! rotations under load, malformed and truncated lines, a 100 MB line
//! without a newline (memory measured), standard input, and throughput.

mod support;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{copytruncate, Scrape, Slogate};

const WAIT: Duration = Duration::from_secs(60);

fn config(log: &Path, extra: &str) -> String {
    format!(
        "service: synth\nlogs: ['{}']\nfile_poll_interval: 20ms\nredis: {{enabled: false}}\n{extra}",
        log.display()
    )
}

fn done_line(class: &str, n: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-30T10:53:37.991Z","pid":1,"tid":"t{n}","lvl":"INFO","msg":"done","ctx":{{"class":"{class}","jid":"{n:024x}","queue":"default","enqueued_at":1796036017.5,"elapsed":0.002}}}}"#
    )
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log")
}

fn lines(s: &Scrape, kind: &str) -> f64 {
    s.value(
        "slogate_jobs_log_lines_total",
        &[("kind", kind), ("service", "synth")],
    )
}

fn class_count(s: &Scrape, class: &str) -> f64 {
    s.sum("slogate_jobs_total", &[("job_class", class)])
}

#[test]
fn rotations_under_load_count_every_line_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("sidekiq.log");
    File::create(&log).expect("create log");
    let slogate = Slogate::start(&config(&log, ""));
    const GENERATIONS: usize = 8;
    const PER_GENERATION: usize = 2_000;
    let mut written = 0;
    for generation in 0..GENERATIONS {
        let class = format!("Gen{generation}Job");
        let mut file = append(&log);
        for i in 0..PER_GENERATION {
            writeln!(file, "{}", done_line(&class, i)).expect("write");
            written += 1;
            if i % 500 == 0 {
                file.flush().expect("flush");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        drop(file);
        if generation % 2 == 0 {
            // Rename rotation: the writer reopens the path right away.
            std::fs::rename(&log, dir.path().join(format!("sidekiq.log.{generation}")))
                .expect("rename");
        } else {
            // copytruncate: only once the follower has read the file (lines
            // appended between logrotate's copy and truncate are lost to any
            // follower).
            slogate.wait_metrics("the file read before copytruncate", WAIT, |s| {
                lines(s, "done") == written as f64
            });
            copytruncate(&log, &dir.path().join(format!("sidekiq.log.{generation}")));
        }
    }
    let s = slogate.wait_metrics("every line", WAIT, |s| lines(s, "done") >= written as f64);
    // Let a double count show up, if there were one.
    std::thread::sleep(Duration::from_millis(300));
    let s2 = slogate.scrape();
    assert_eq!(lines(&s2, "done"), lines(&s, "done"));
    for generation in 0..GENERATIONS {
        assert_eq!(
            class_count(&s2, &format!("Gen{generation}Job")),
            PER_GENERATION as f64,
            "generation {generation}"
        );
    }
    let rotations = |kind| {
        s2.value(
            "slogate_jobs_log_rotations_total",
            &[("kind", kind), ("service", "synth")],
        )
    };
    assert_eq!(rotations("rename"), (GENERATIONS / 2) as f64);
    assert_eq!(rotations("truncate"), (GENERATIONS / 2) as f64);
    assert_eq!(lines(&s2, "malformed"), 0.0);
}

#[test]
fn malformed_and_truncated_lines_never_crash_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("sidekiq.log");
    std::fs::write(&log, format!("{}\nold garbage\n", done_line("OldJob", 0))).expect("write");
    // Existing content is skipped by default.
    let mut slogate = Slogate::start(&config(&log, ""));
    let mut file = append(&log);
    let garbage: [&[u8]; 8] = [
        b"plain text from a puts\n",
        b"\x00\x01\x02\xff\xfe binary\n",
        b"{\"msg\":\"done\",\"ctx\":{\"class\":\n",
        b"[1,2,3]\n",
        b"{\"msg\":\"done\"}\n",
        b"{\"msg\":\"Booting Sidekiq\"}\n",
        b"\n",
        b"2026-11-30T10:53:37.983Z pid=1 tid=x class=HardJob INFO: done\n",
    ];
    for g in garbage {
        file.write_all(g).expect("write");
    }
    writeln!(file, "{}", done_line("GoodJob", 1)).expect("write");
    let last = done_line("GoodJob", 2);
    let (head, rest) = last.split_at(last.len() / 2);
    write!(file, "{head}").expect("write");
    file.flush().expect("flush");
    let s = slogate.wait_metrics("the lines", WAIT, |s| {
        lines(s, "done") == 1.0 && lines(s, "malformed") == 6.0
    });
    assert_eq!(lines(&s, "unrelated"), 1.0);
    assert_eq!(lines(&s, "invalid_job"), 1.0);
    assert_eq!(class_count(&s, "OldJob"), 0.0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        lines(&slogate.scrape(), "done"),
        1.0,
        "half a line is not a line"
    );
    writeln!(file, "{rest}").expect("write");
    file.flush().expect("flush");
    let s = slogate.wait_metrics("the completed line", WAIT, |s| {
        class_count(s, "GoodJob") == 2.0
    });
    assert_eq!(lines(&s, "malformed"), 6.0);
    assert!(slogate.process.is_running());
}

#[test]
fn from_start_counts_what_is_already_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("sidekiq.log");
    let text: String = (0..100).map(|i| done_line("OldJob", i) + "\n").collect();
    std::fs::write(&log, text).expect("write");
    let slogate = Slogate::start_with(&config(&log, ""), &["--from-start"], Stdio::null());
    slogate.wait_metrics("the existing lines", WAIT, |s| {
        class_count(s, "OldJob") == 100.0
    });
}

#[test]
fn hundred_megabytes_without_a_newline_keep_memory_flat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("sidekiq.log");
    let slogate = Slogate::start(&config(&log, ""));
    let mut file = append(&log);
    writeln!(file, "{}", done_line("BeforeJob", 0)).expect("write");
    file.flush().expect("flush");
    slogate.wait_metrics("the first line", WAIT, |s| {
        class_count(s, "BeforeJob") == 1.0
    });
    let (baseline, _) = slogate.rss_kib();

    let chunk = vec![b'x'; 1024 * 1024];
    let mut peak = baseline;
    for _ in 0..100 {
        file.write_all(&chunk).expect("write");
        peak = peak.max(slogate.rss_kib().0);
    }
    writeln!(file).expect("write");
    writeln!(file, "{}", done_line("AfterJob", 1)).expect("write");
    file.flush().expect("flush");
    let s = slogate.wait_metrics("the line after 100 MB", WAIT, |s| {
        class_count(s, "AfterJob") == 1.0
    });
    let (rss, hwm) = slogate.rss_kib();
    peak = peak.max(rss);
    assert_eq!(lines(&s, "too_long"), 1.0);
    assert_eq!(lines(&s, "malformed"), 0.0);
    eprintln!("100 MB without newline: RSS baseline {baseline} KiB, peak sampled {peak} KiB, after {rss} KiB, VmHWM {hwm} KiB");
    assert!(
        peak < baseline + 8 * 1024 && hwm < baseline + 8 * 1024,
        "memory grew: baseline {baseline} KiB, peak {peak} KiB, VmHWM {hwm} KiB"
    );
}

#[test]
fn standard_input_is_followed_until_it_closes() {
    let mut slogate = Slogate::start_with(
        "service: synth\nredis: {enabled: false}\n",
        &["--log", "-"],
        Stdio::piped(),
    );
    let mut stdin = slogate.process.child.stdin.take().expect("stdin");
    for i in 0..50 {
        writeln!(stdin, "{}", done_line("PipedJob", i)).expect("write");
    }
    writeln!(stdin, "not json").expect("write");
    write!(stdin, "{}", done_line("PipedJob", 50)).expect("write"); // no final newline
    stdin.flush().expect("flush");
    slogate.wait_metrics("the piped lines", WAIT, |s| {
        class_count(s, "PipedJob") == 50.0
    });
    drop(stdin);
    let s = slogate.wait_metrics("the last line at EOF", WAIT, |s| {
        class_count(s, "PipedJob") == 51.0
    });
    assert_eq!(lines(&s, "malformed"), 1.0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(slogate.process.is_running(), "still serving after EOF");
    assert!(slogate.get("/healthz").is_some());
}

#[test]
fn follower_throughput() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("sidekiq.log");
    const LINES: usize = 200_000;
    let mut text = String::with_capacity(LINES * 200);
    for i in 0..LINES {
        text.push_str(&done_line(["HardJob", "SoftJob", "MailJob"][i % 3], i));
        text.push('\n');
    }
    std::fs::write(&log, &text).expect("write");
    let began = Instant::now();
    let slogate = Slogate::start_with(&config(&log, ""), &["--from-start"], Stdio::null());
    slogate.wait_metrics("every line", WAIT, |s| lines(s, "done") == LINES as f64);
    let seconds = began.elapsed().as_secs_f64();
    eprintln!(
        "follower throughput: {LINES} lines ({:.1} MB) in {seconds:.2}s including startup: {:.0} lines/s",
        text.len() as f64 / 1e6,
        LINES as f64 / seconds
    );
}
