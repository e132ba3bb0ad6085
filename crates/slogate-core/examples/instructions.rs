//! Runs one workload N times so `valgrind --tool=callgrind` can count instructions per
//! request: a noise-free figure on a shared machine, where timings are not.
//!
//! ```text
//! cargo build --release -p slogate-core --example instructions
//! valgrind --tool=callgrind target/release/examples/instructions classify 10000
//! ```

use std::hint::black_box;

use slogate_core::request::{ExtractorOptions, OperationExtractor};
use slogate_core::response::{ClassificationPolicy, ResponseHead};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "classify".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let doc = include_str!("../benches/document.graphql");
    let body = serde_json::json!({"operationName": "GetCourse", "query": doc, "variables": {"id": "course-123", "first": 20}}).to_string();
    let lessons: Vec<serde_json::Value> = (0..12)
        .map(|i| serde_json::json!({"cursor": format!("c{i}"), "node": {"id": format!("l{i}"), "slug": format!("lesson-{i}"), "title": "Ownership and borrowing", "kind": "VIDEO", "durationSeconds": 600, "completed": i % 2 == 0}}))
        .collect();
    let response = serde_json::json!({"data": {"course": {"id": "course-123", "title": "Intro to Rust", "lessons": {"edges": lessons, "pageInfo": {"hasNextPage": true, "endCursor": "c11"}}}}, "errors": [{"message": "Review 9 not found", "path": ["course", "reviews"], "extensions": {"code": "NOT_FOUND"}}]}).to_string();
    let extractor = OperationExtractor::new(ExtractorOptions::default());
    let policy = ClassificationPolicy::default();
    let extract = || {
        let mut i = extractor.inspect("POST", Some("application/json"), None);
        i.feed(black_box(body.as_bytes()));
        black_box(i.finish(&extractor));
    };
    let classify = || {
        let mut r = policy.inspect(ResponseHead {
            status: 200,
            graphql: true,
            has_body: true,
            content_type: Some("application/json"),
            ..ResponseHead::default()
        });
        r.feed(black_box(response.as_bytes()));
        black_box(r.finish());
    };
    extract(); // warm the document cache
    for _ in 0..n {
        match which.as_str() {
            "extract" => extract(),
            "classify" => classify(),
            _ => {
                extract();
                classify();
            }
        }
    }
    eprintln!(
        "{which} x{n}: request {} bytes, response {} bytes",
        body.len(),
        response.len()
    );
}
