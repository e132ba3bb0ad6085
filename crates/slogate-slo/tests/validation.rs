//! Every mistake in a spec is refused with a message naming the file, the SLO
//! and the field.

mod support;

use slogate_slo::{load_spec, parse_spec, SpecError, DEFAULT_BUCKETS};

const FILE: &str = "proxy-config/slo.yaml";

/// A valid SLO, indented as an item of `slos:`.
const CHECKOUT: &str = r#"  - name: checkout
    description: Learners can pay.
    owner: team-payments
    cuj: Learner buys a course
    period: 28d
    operations:
      - graphql: CreateOrder
        type: mutation
      - http: POST /api/v1/payments
    availability:
      target: 99.9
    latency:
      threshold: 300ms
      target: 99
"#;

fn spec_with(slo: &str) -> String {
    format!("service: rails\nslos:\n{slo}")
}

fn error(text: &str) -> SpecError {
    match parse_spec(FILE, text, &DEFAULT_BUCKETS) {
        Ok(spec) => panic!(
            "accepted an invalid spec ({} SLOs):\n{text}",
            spec.slos.len()
        ),
        Err(e) => e,
    }
}

/// Parses `CHECKOUT` with `from` replaced by `to`, expecting exactly
/// `expected` as the (only) message.
fn assert_error(from: &str, to: &str, expected: &str) {
    assert!(CHECKOUT.contains(from), "fixture lacks {from:?}");
    let message = error(&spec_with(&CHECKOUT.replace(from, to))).to_string();
    assert_eq!(message, expected);
}

/// Like `assert_error` but only checks the message's start.
fn assert_error_starts(from: &str, to: &str, expected: &str) {
    assert!(CHECKOUT.contains(from), "fixture lacks {from:?}");
    let message = error(&spec_with(&CHECKOUT.replace(from, to))).to_string();
    assert!(
        message.starts_with(expected),
        "got:\n{message}\nexpected it to start with:\n{expected}"
    );
}

#[test]
fn the_fixture_is_valid() {
    let spec = parse_spec(FILE, &spec_with(CHECKOUT), &DEFAULT_BUCKETS).expect("valid");
    let names: Vec<&str> = spec.slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["checkout-availability", "checkout-latency"]);
}

#[test]
fn threshold_must_be_a_bucket_boundary() {
    let two_before = CHECKOUT.replace("name: checkout", "name: search")
        + &CHECKOUT.replace("name: checkout", "name: browse");
    let text = spec_with(&(two_before + &CHECKOUT.replace("300ms", "350ms")));
    assert_eq!(
        error(&text).to_string(),
        "proxy-config/slo.yaml: slos[2] \"checkout\": latency.threshold: 0.35s is not a histogram bucket boundary; \
         buckets are 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 5, 10 \
         (seconds; pass --buckets to match the proxy config)"
    );
}

#[test]
fn custom_buckets_are_honoured() {
    let text = spec_with(&CHECKOUT.replace("300ms", "0.35s"));
    let spec = parse_spec(FILE, &text, &[0.1, 0.35, 1.0]).expect("0.35 is a bucket here");
    assert_eq!(spec.slos.len(), 2);
    let err = parse_spec(FILE, &spec_with(CHECKOUT), &[0.1, 0.35, 1.0]).expect_err("0.3 is not");
    assert!(
        err.to_string().contains("buckets are 0.1, 0.35, 1 "),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_errors() {
    assert_error_starts(
        "    owner:",
        "    ownr: x\n    owner:",
        "proxy-config/slo.yaml: slos[0] \"checkout\": ownr: unknown field `ownr`, expected one of",
    );
    assert_error_starts(
        "      threshold:",
        "      thresold: 1s\n      threshold:",
        "proxy-config/slo.yaml: slos[0] \"checkout\": latency.thresold: unknown field `thresold`",
    );
    assert_error_starts(
        "        type: mutation",
        "        type: mutation\n        kind: graphql",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[0].kind: unknown field `kind`",
    );
    let top = error(&format!("service: rails\nslo_list: []\nslos:\n{CHECKOUT}")).to_string();
    assert!(
        top.starts_with("proxy-config/slo.yaml: slo_list: unknown field `slo_list`"),
        "{top}"
    );
}

#[test]
fn required_fields_are_named() {
    assert_error(
        "    owner: team-payments\n",
        "",
        "proxy-config/slo.yaml: slos[0] \"checkout\": owner: missing: name the team that owns the SLO",
    );
    assert_error(
        "    cuj: Learner buys a course\n",
        "",
        "proxy-config/slo.yaml: slos[0] \"checkout\": cuj: missing: name the critical user journey the SLO protects",
    );
    assert_error(
        "    period: 28d\n",
        "",
        "proxy-config/slo.yaml: slos[0] \"checkout\": period: missing: use 28d, 30d or calendar_month",
    );
    let no_service = error(&format!("slos:\n{CHECKOUT}")).to_string();
    assert!(
        no_service.starts_with("proxy-config/slo.yaml: slos[0] \"checkout\": service: missing"),
        "{no_service}"
    );
}

#[test]
fn periods_are_checked() {
    assert_error(
        "period: 28d",
        "period: 4 weeks",
        "proxy-config/slo.yaml: slos[0] \"checkout\": period: \"4 weeks\" is not a period: use 28d, 30d or \
         calendar_month (a short duration such as 1h is accepted for tests)",
    );
    for ok in ["30d", "4w", "calendar_month", "1h"] {
        let text = spec_with(&CHECKOUT.replace("period: 28d", &format!("period: {ok}")));
        parse_spec(FILE, &text, &DEFAULT_BUCKETS).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn targets_are_percentages() {
    for bad in ["100", "0", "150", "high"] {
        assert_error_starts(
            "target: 99.9",
            &format!("target: {bad}"),
            "proxy-config/slo.yaml: slos[0] \"checkout\": availability.target: ",
        );
    }
    let text = spec_with(&CHECKOUT.replace("target: 99.9", "target: \"99.95%\""));
    let spec = parse_spec(FILE, &text, &DEFAULT_BUCKETS).expect("text with % is fine");
    assert_eq!(spec.slos[0].error_budget().to_string(), "0.0005");
    assert_error(
        "      target: 99\n",
        "",
        "proxy-config/slo.yaml: slos[0] \"checkout\": latency.target: missing: a percentage strictly between 0 and 100, e.g. 99.9",
    );
}

#[test]
fn operations_are_checked() {
    assert_error(
        "      - http: POST /api/v1/payments",
        "      - http: /api/v1/payments",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[1].http: \"/api/v1/payments\": an HTTP operation is \
         `METHOD /route/template`, e.g. `GET /api/v1/courses/:id`",
    );
    assert_error(
        "        type: mutation",
        "        type: mutations",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[0].type: \"mutations\" is not one of query, mutation, subscription, unknown",
    );
    assert_error(
        "      - http: POST /api/v1/payments",
        "      - http: POST /api/v1/payments\n        graphql: Pay",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[1]: name exactly one of `graphql:`, `http:` or `job:`",
    );
    assert_error(
        "      - http: POST /api/v1/payments",
        "      - job: ChargeCardJob",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations: mixes job classes with GraphQL/HTTP operations; \
         they are different metrics, so split them into two SLOs",
    );
    assert_error(
        "      - http: POST /api/v1/payments",
        "      - graphql: CreateOrder\n        type: mutation",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[1]: mutation CreateOrder is listed twice",
    );
    assert_error(
        "      - http: POST /api/v1/payments",
        "      - http: POST /api/v1/payments\n        queue: default",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[1].queue: `queue` only applies to `job:` entries",
    );
    assert_error(
        "      - graphql: CreateOrder",
        "      - graphql: Create-Order",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations[0].graphql: \"Create-Order\" is not a GraphQL operation \
         name (letters, digits, '_') nor one of (anonymous), (invalid), (other)",
    );
    assert_error(
        "    operations:\n      - graphql: CreateOrder\n        type: mutation\n      - http: POST /api/v1/payments\n",
        "    operations: []\n",
        "proxy-config/slo.yaml: slos[0] \"checkout\": operations: empty: list at least one operation",
    );
}

#[test]
fn names_labels_and_links_are_checked() {
    assert_error_starts(
        "name: checkout",
        "name: Checkout!",
        "proxy-config/slo.yaml: slos[0] \"Checkout!\": name: \"Checkout!\" is not a valid SLO name",
    );
    assert_error(
        "    period: 28d\n",
        "    period: 28d\n    labels:\n      severity: high\n",
        "proxy-config/slo.yaml: slos[0] \"checkout\": labels.severity: \"severity\" is set by slogate; pick another label name",
    );
    assert_error(
        "    period: 28d\n",
        "    period: 28d\n    runbook: wiki/checkout\n",
        "proxy-config/slo.yaml: slos[0] \"checkout\": runbook: \"wiki/checkout\" is not an http(s) link",
    );
    assert_error(
        "    period: 28d\n",
        "    period: 28d\n    alerting:\n      absent_for: soon\n",
        "proxy-config/slo.yaml: slos[0] \"checkout\": alerting.absent_for: \"soon\" is not a duration such as 10m or 1h",
    );
    assert_error(
        "      target: 99\n",
        "      target: 99\n      histogram: execution\n",
        "proxy-config/slo.yaml: slos[0] \"checkout\": latency.histogram: only job SLOs choose a histogram (`duration` or `execution`)",
    );
    let duplicate = error(&spec_with(&format!("{CHECKOUT}{CHECKOUT}"))).to_string();
    assert_eq!(
        duplicate,
        "proxy-config/slo.yaml: slos[1] \"checkout\": name: \"checkout\" is already used by slos[0] for service \"rails\""
    );
}

#[test]
fn an_slo_needs_an_objective() {
    let text = CHECKOUT
        .replace("    availability:\n      target: 99.9\n", "")
        .replace(
            "    latency:\n      threshold: 300ms\n      target: 99\n",
            "",
        );
    assert_eq!(
        error(&spec_with(&text)).to_string(),
        "proxy-config/slo.yaml: slos[0] \"checkout\": declare an `availability:` objective, a `latency:` objective, or both"
    );
}

#[test]
fn every_mistake_is_reported_at_once() {
    let text = spec_with(
        &CHECKOUT
            .replace("owner: team-payments", "owner: \"\"")
            .replace("300ms", "350ms")
            .replace("target: 99.9", "target: 100"),
    );
    let err = error(&text);
    let keys: Vec<&str> = err.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "slos[0] \"checkout\": owner",
            "slos[0] \"checkout\": availability.target",
            "slos[0] \"checkout\": latency.threshold"
        ]
    );
    assert_eq!(err.to_string().lines().count(), 3);
}

#[test]
fn yaml_and_io_errors_name_the_file() {
    let syntax = error("slos:\n  - name: [unclosed\n").to_string();
    assert!(
        syntax.starts_with("proxy-config/slo.yaml: not valid YAML: "),
        "{syntax}"
    );
    assert!(syntax.contains("line"), "{syntax}");
    let missing = load_spec("does/not/exist.yaml", &DEFAULT_BUCKETS).expect_err("missing file");
    assert!(
        missing
            .to_string()
            .starts_with("does/not/exist.yaml: cannot read: "),
        "{missing}"
    );
    let empty = error("").to_string();
    assert_eq!(
        empty,
        "proxy-config/slo.yaml: the file is empty; expected a `slos:` list"
    );
}

/// An OpenSLO SLO with a bad-events ratio; `{mutation}` is replaced.
const OPENSLO: &str = r#"apiVersion: openslo/v1
kind: SLO
metadata:
  name: search
spec:
  service: rails
  indicator:
    metadata:
      name: search-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(errors_total[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(requests_total[{{.window}}]))
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.995
"#;

#[test]
fn openslo_documents_are_validated() {
    let ok = parse_spec("openslo.yaml", OPENSLO, &DEFAULT_BUCKETS).expect("valid OpenSLO");
    assert_eq!(ok.slos[0].target.to_string(), "99.5");
    assert_eq!(ok.slos[0].error_budget().to_string(), "0.005");
    let cases = [
        (
            "errors_total[{{.window}}]",
            "errors_total[5m]",
            "openslo.yaml: documents[0] SLO \"search\": spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: \
             the query needs a `[{{.window}}]` range",
        ),
        (
            "budgetingMethod: Occurrences",
            "budgetingMethod: Timeslices",
            "openslo.yaml: documents[0] SLO \"search\": spec.budgetingMethod: \"Timeslices\" is not supported",
        ),
        (
            "    - target: 0.995",
            "    - target: 99.5",
            "openslo.yaml: documents[0] SLO \"search\": spec.objectives[0].target: must be a ratio strictly between 0 and 1",
        ),
        (
            "  service: rails",
            "  service: rails\n  owner: me",
            "openslo.yaml: documents[0] SLO \"search\": spec.owner: unknown field `owner`",
        ),
        (
            "type: Prometheus\n            spec:\n              query: sum(rate(errors",
            "type: Datadog\n            spec:\n              query: sum(rate(errors",
            "openslo.yaml: documents[0] SLO \"search\": spec.indicator.spec.ratioMetric.bad.metricSource.type: \"Datadog\" is not supported",
        ),
        (
            "      isRolling: true",
            "      isRolling: false\n      calendar:\n        startTime: 2024-01-01\n        timeZone: Europe/Paris",
            "openslo.yaml: documents[0] SLO \"search\": spec.timeWindow[0].duration: \"28d\": calendar windows must be 1M",
        ),
        (
            "apiVersion: openslo/v1",
            "apiVersion: openslo/v2alpha",
            "openslo.yaml: documents[0] SLO \"search\": apiVersion: \"openslo/v2alpha\" is not supported; slogate reads openslo/v1",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(OPENSLO.contains(from), "fixture lacks {from:?}");
        let message = parse_spec("openslo.yaml", &OPENSLO.replace(from, to), &DEFAULT_BUCKETS)
            .expect_err(to)
            .to_string();
        assert!(
            message.starts_with(expected),
            "got:\n{message}\nexpected:\n{expected}"
        );
    }
}

#[test]
fn the_shipped_examples_are_valid() {
    let dir = support::crate_dir().join("../../proxy-config");
    for file in ["slo.yaml", "openslo-example.yaml"] {
        let spec = support::load_path(&dir.join(file));
        assert!(!spec.slos.is_empty(), "{file}");
    }
}

#[test]
fn job_latency_thresholds_are_checked_against_the_job_buckets() {
    let job = |threshold: &str| {
        spec_with(&format!(
            "  - name: receipts\n    description: Receipts go out.\n    owner: team-payments\n    cuj: Buyer pays\n    period: 28d\n    operations:\n      - job: SendReceiptJob\n    latency:\n      threshold: {threshold}\n      target: 99\n"
        ))
    };
    // Five minutes is a job bucket, not a request one.
    parse_spec(FILE, &job("300s"), &DEFAULT_BUCKETS).unwrap();
    let e = error(&job("420s")).to_string();
    assert!(
        e.contains("latency.threshold: 420s is not a histogram bucket boundary"),
        "{e}"
    );
    assert!(e.contains("3600 (seconds; pass --job-buckets"), "{e}");
    let request = CHECKOUT.replace("300ms", "300s");
    let e = error(&spec_with(&request)).to_string();
    assert!(
        e.contains("(seconds; pass --buckets to match the proxy config)"),
        "{e}"
    );
}
