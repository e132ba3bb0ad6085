//! The pure part's speed: Sidekiq log lines parsed, classified and counted.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use slogate_jobs::{parse_line, JobMetrics, JobRecorder, OutcomeRules, DEFAULT_JOB_BUCKETS};
use slogate_metrics::{CardinalityGuard, Registry};

const DONE: &[u8] = br#"{"ts":"2026-11-30T10:53:37.991Z","pid":16206,"tid":"bn2","lvl":"INFO","msg":"done","ctx":{"class":"HardJob","jid":"4822377fe8f4a0794e546609","queue":"default","enqueued_at":1796036017.545454,"elapsed":0.002}}"#;
const START: &[u8] = br#"{"ts":"2026-11-30T10:53:37.988Z","pid":16206,"tid":"bhy","lvl":"INFO","msg":"start","ctx":{"class":"LegacyCleanupJob","jid":"4915268cda7da94b2747b525"}}"#;
const WARN: &[u8] = br#"{"ts":"2026-11-30T10:53:37.995Z","pid":16206,"tid":"bhy","lvl":"WARN","msg":"ArgumentError: nothing to clean"}"#;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sidekiq_line");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_done", |b| {
        b.iter(|| parse_line(std::hint::black_box(DONE)))
    });
    group.bench_function("parse_start", |b| {
        b.iter(|| parse_line(std::hint::black_box(START)))
    });
    group.bench_function("parse_unrelated", |b| {
        b.iter(|| parse_line(std::hint::black_box(WARN)))
    });
    group.bench_function("parse_plain_text", |b| {
        b.iter(|| {
            parse_line(std::hint::black_box(
                b"Passing the timeout as a positional argument",
            ))
        })
    });
    let registry = Registry::new();
    let recorder = JobRecorder::new(
        "rails",
        JobMetrics::register(&registry, DEFAULT_JOB_BUCKETS).expect("register"),
        OutcomeRules::default(),
        CardinalityGuard::new(1000, None),
        Arc::new(CardinalityGuard::new(100, None)),
    );
    group.bench_function("record_done", |b| {
        b.iter_batched(
            || DONE,
            |line| recorder.record_line(line),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
