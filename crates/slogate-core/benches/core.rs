//! What slogate adds per request: naming the operation and classifying the response.
//!
//! `cargo bench -p slogate-core` (figures in docs/performance.md).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use slogate_core::document::scan_document;
use slogate_core::request::{ExtractorOptions, OperationExtractor};
use slogate_core::response::{ClassificationPolicy, ResponseHead};

/// A realistic ~1 KB document (a course page query with fragments).
fn document() -> String {
    include_str!("document.graphql").to_string()
}

fn request_body(doc: &str) -> Vec<u8> {
    serde_json::json!({
        "operationName": "GetCourse",
        "query": doc,
        "variables": {"id": "course-123", "first": 20, "after": null}
    })
    .to_string()
    .into_bytes()
}

/// A ~2 KB response, with or without errors.
fn response_body(errors: bool) -> Vec<u8> {
    let lessons: Vec<serde_json::Value> = (0..12)
        .map(|i| serde_json::json!({"cursor": format!("c{i}"), "node": {"id": format!("l{i}"), "slug": format!("lesson-{i}"), "title": "Ownership and borrowing", "kind": "VIDEO", "durationSeconds": 600, "completed": i % 2 == 0}}))
        .collect();
    let mut v = serde_json::json!({"data": {"course": {"id": "course-123", "title": "Intro to Rust", "lessons": {"edges": lessons, "pageInfo": {"hasNextPage": true, "endCursor": "c11"}}}}});
    if errors {
        v["errors"] = serde_json::json!([{"message": "Review 9 not found", "locations": [{"line": 12, "column": 5}], "path": ["course", "reviews"], "extensions": {"code": "NOT_FOUND"}}]);
    }
    let s = v.to_string();
    assert!(s.len() > 1500, "{}", s.len());
    s.into_bytes()
}

/// A ~200 KB list response shaped like benches/scaling/gen_bodies.py's: nested objects with
/// short strings, numbers, booleans, arrays; one escaped string per item.
fn large_response_body() -> Vec<u8> {
    let mut items = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < 200 * 1024 {
        let item = format!(
            r#"{{"id":"I{i:07}","title":"Lesson {i}: ownership and borrowing in \"practice\"","minutes":{},"position":{i},"kind":"VIDEO","completed":{},"preview":false,"rating":4.{},"tags":["rust","rails","graphql"],"instructor":{{"id":"U{}","name":"Ada Lovelace","avatarUrl":"https://cdn.example.com/avatars/u{}-64.png"}},"completedAt":null}}"#,
            5 + i % 20,
            i % 3 != 0,
            i % 10,
            i % 97,
            i % 97
        );
        size += item.len() + 1;
        items.push(item);
        i += 1;
    }
    let body = format!(
        r#"{{"data":{{"items":[{}],"pageInfo":{{"hasNextPage":false,"endCursor":null}}}}}}"#,
        items.join(",")
    );
    serde_json::from_str::<serde_json::Value>(&body).expect("valid JSON");
    body.into_bytes()
}

fn classify(policy: &ClassificationPolicy, body: &[u8]) -> bool {
    let mut r = policy.inspect(ResponseHead {
        status: 200,
        graphql: true,
        has_body: true,
        content_type: Some("application/json; charset=utf-8"),
        ..ResponseHead::default()
    });
    r.feed(body);
    r.finish().for_operation(0).0 == slogate_core::Outcome::Success
}

fn benches(c: &mut Criterion) {
    let doc = document();
    let body = request_body(&doc);
    let extractor = OperationExtractor::new(ExtractorOptions::default());
    let policy = ClassificationPolicy::default();
    let ok = response_body(false);
    let err = response_body(true);

    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("extract_1kb_cached", |b| {
        b.iter(|| {
            let mut i = extractor.inspect("POST", Some("application/json"), None);
            i.feed(black_box(&body));
            black_box(i.finish(&extractor))
        })
    });
    let mut n = 0u64;
    g.bench_function("extract_1kb_uncached", |b| {
        b.iter_batched(
            || {
                n += 1;
                request_body(&format!("{doc}# {n}\n"))
            },
            |body| {
                let mut i = extractor.inspect("POST", Some("application/json"), None);
                i.feed(&body);
                black_box(i.finish(&extractor))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Bytes(ok.len() as u64));
    g.bench_function("classify_2kb_success", |b| {
        b.iter(|| classify(&policy, black_box(&ok)))
    });
    g.bench_function("classify_2kb_with_errors", |b| {
        b.iter(|| classify(&policy, black_box(&err)))
    });
    g.finish();

    let large = large_response_body();
    let mut g = c.benchmark_group("response_large");
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("classify_200kb_success", |b| {
        b.iter(|| classify(&policy, black_box(&large)))
    });
    g.finish();

    let mut g = c.benchmark_group("per_request");
    for (name, response) in [
        ("extract_cached_plus_classify_2kb_success", &ok),
        ("extract_cached_plus_classify_2kb_with_errors", &err),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut i = extractor.inspect("POST", Some("application/json"), None);
                i.feed(black_box(&body));
                black_box(i.finish(&extractor));
                classify(&policy, black_box(response))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("document_1kb");
    g.bench_function("slogate_scan_document", |b| {
        b.iter(|| black_box(scan_document(black_box(&doc))))
    });
    g.bench_function("async_graphql_parser", |b| {
        b.iter(|| black_box(async_graphql_parser::parse_query(black_box(&doc))))
    });
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
