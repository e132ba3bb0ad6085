//! slogate's SLI counters with no app behind it (the request shapes, through the real Rails
//! fixture, are in `needs/rails/graphql_sli.rs`).

use serde_json::json;

use crate::support::*;

pub(crate) fn table(s: &Slogate, n: f64) -> Vec<(String, String, String, f64)> {
    s.wait_requests(n).request_table()
}

pub(crate) fn row(op: &str, t: &str, o: &str, n: f64) -> (String, String, String, f64) {
    (op.into(), t.into(), o.into(), n)
}

#[test]
fn upstream_down_is_a_system_error_with_502() {
    let dead = format!("127.0.0.1:{}", free_port());
    let s = start_slogate(&dead, "");
    let r = graphql(
        &s.addr(),
        &json!({"query": "query Down { courses { id } }"}),
    );
    assert_eq!(r.status, 502);
    let r = get(&s.addr(), "/api/v1/courses/7").unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(
        table(&s, 2.0),
        vec![
            row("Down", "query", "system_error", 1.0),
            row("GET /api/v1/courses/:id", "http", "system_error", 1.0),
        ]
    );
}
