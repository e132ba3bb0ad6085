//! The Grafana dashboards are valid dashboard JSON with the panels the issue
//! asks for.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use slogate_slo::{generate_dashboard, Spec};
use support::load;

fn dashboard(spec: &Spec, service: &str) -> Value {
    serde_json::from_str(&generate_dashboard(spec, service).expect("dashboard"))
        .expect("valid JSON")
}

/// Every panel, including those inside collapsed rows.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        out.push(panel);
        if let Some(children) = panel["panels"].as_array() {
            out.extend(children);
        }
    }
    out
}

#[test]
fn dashboards_are_valid_grafana_json() {
    for (input, source, _) in support::GOLDEN_CASES {
        let spec = load(input, source);
        for service in spec.services() {
            let d = dashboard(&spec, service);
            assert!(
                d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
                "{input}"
            );
            assert!(d["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty() && u.len() <= 40));
            assert!(d["title"].as_str().is_some_and(|t| t.contains(service)));
            let variables = d["templating"]["list"].as_array().expect("templating");
            assert!(variables.iter().any(|v| v["type"] == "datasource"
                && v["query"] == "prometheus"
                && v["name"] == "datasource"));
            let mut ids = BTreeSet::new();
            for panel in all_panels(&d) {
                let id = panel["id"].as_u64().expect("panel id");
                assert!(ids.insert(id), "{input}: duplicate panel id {id}");
                let grid = &panel["gridPos"];
                let (x, w) = (
                    grid["x"].as_u64().expect("x"),
                    grid["w"].as_u64().expect("w"),
                );
                assert!(x + w <= 24 && w > 0 && grid["h"].as_u64().is_some_and(|h| h > 0));
                let kind = panel["type"].as_str().expect("type");
                assert!(["row", "stat", "timeseries"].contains(&kind), "{kind}");
                if kind != "row" {
                    assert_eq!(panel["datasource"]["uid"], "${datasource}");
                    let targets = panel["targets"].as_array().expect("targets");
                    assert!(!targets.is_empty());
                    for t in targets {
                        assert_eq!(t["datasource"]["uid"], "${datasource}");
                        assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
                    }
                }
            }
        }
    }
}

#[test]
fn dashboard_has_slo_and_operation_panels() {
    let spec = load("../../proxy-config/slo.yaml", "proxy-config/slo.yaml");
    let d = dashboard(&spec, "rails");
    let panels = all_panels(&d);
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for slo in &spec.slos {
        assert!(
            titles
                .iter()
                .any(|t| t.starts_with(&format!("{}: ", slo.name))),
            "no row for {}",
            slo.name
        );
    }
    for wanted in [
        "SLI over 28d",
        "SLI over calendar month",
        "SLI month to date",
        "Error budget remaining",
        "Burn rate per window",
        "Rate by outcome",
        "System vs client errors",
        "Latency vs 0.3s threshold",
        "Operation: mutation CreateOrder",
        "Operation: GET /api/v1/courses/:id",
        "Operation: job SendReceiptJob (queue mailers)",
    ] {
        assert!(
            titles.contains(&wanted),
            "missing panel {wanted:?} in {titles:?}"
        );
    }
    // Burn rates cover every alerting window; the month-to-date panel looks
    // at this month only.
    let burn = panels
        .iter()
        .find(|p| p["title"] == "Burn rate per window")
        .expect("burn panel");
    assert_eq!(burn["targets"].as_array().map(Vec::len), Some(7));
    let mtd = panels
        .iter()
        .find(|p| p["title"] == "SLI month to date")
        .expect("mtd panel");
    assert_eq!(mtd["timeFrom"], "now/M");
    // Operation rows start collapsed and hold their panels.
    let op_row = panels
        .iter()
        .find(|p| p["title"] == "Operation: mutation CreateOrder")
        .expect("op row");
    assert_eq!(op_row["collapsed"], true);
    assert_eq!(op_row["panels"].as_array().map(Vec::len), Some(3));
}

#[test]
fn several_services_need_a_choice() {
    let text = std::fs::read_to_string(support::crate_dir().join("../../proxy-config/slo.yaml"))
        .expect("read");
    let text = text.replacen(
        "    period: 30d\n",
        "    period: 30d\n    service: catalog\n",
        1,
    );
    let spec =
        slogate_slo::parse_spec("slo.yaml", &text, &slogate_slo::DEFAULT_BUCKETS).expect("valid");
    assert_eq!(spec.services(), ["catalog", "rails"]);
    assert!(generate_dashboard(&spec, "catalog")
        .expect("catalog")
        .contains("course-page-availability"));
    let err = generate_dashboard(&spec, "billing").expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "the spec has no SLO for service \"billing\"; services: catalog, rails"
    );
}
