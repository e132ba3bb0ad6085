//! The truth harness with the real Rails fixture behind slogate: the client's view and
//! slogate's agree (the mock-based runs are in `own/harness.rs`).

use slogate_harness::report::render;
use slogate_harness::run_load_blocking;

use crate::own::harness::{options, scenario, short, slogate_for};
use crate::support::*;

#[test]
fn rails_fixture_client_and_proxy_agree() {
    let _heavy = heavy();
    let s = short(scenario("rails-fixture.yaml"), 15.0, 60);
    let rails = rails();
    let proxy = slogate_for(&rails.addr(), &s, "");
    let report = run_load_blocking(&s, &options(&proxy, None)).expect("load");
    let table = render(&report);
    assert!(report.agree, "the views differ:\n{table}");
    for op in &report.operations {
        assert_eq!(op.proxy, Some(op.client), "{}:\n{table}", op.operation);
        assert_eq!(op.mock, None);
    }
    let count = |op: &str, f: fn(&slogate_harness::OutcomeCounts) -> u64| {
        report
            .operations
            .iter()
            .find(|o| o.operation == op)
            .map_or(0, |o| f(&o.client))
    };
    // What the fixture answers, as slogate must classify it.
    assert_eq!(count("Crash", |c| c.success + c.client_error), 0, "{table}");
    assert_eq!(
        count("Broken", |c| c.success + c.client_error),
        0,
        "{table}"
    );
    assert_eq!(
        count("MissingCourse", |c| c.success + c.system_error),
        0,
        "{table}"
    );
    assert_eq!(
        count("GET /boom", |c| c.success + c.client_error),
        0,
        "{table}"
    );
    assert!(count("GetCourse", |c| c.success) > 0, "{table}");
}
