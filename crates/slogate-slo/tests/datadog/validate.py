"""Validates `slogate slo datadog` output with Datadog's own Python code.

Usage: validate.py API_JSON TERRAFORM_JSON AGENT_YAML [METRICS_URL]

- Every SLO and monitor body is deserialised with the real `datadog-api-client`
  model classes (ServiceLevelObjectiveRequest, Monitor). The client refuses a
  missing required field or a wrong type, but it accepts an unknown enum value
  (marking the object `_unparsed`) and keeps unknown keys, so this script walks
  every built object and fails on both.
- The Terraform JSON is mapped back to API bodies (the provider's attributes
  mirror the API's) and checked the same way, and must agree with the API JSON.
- With METRICS_URL (slogate's live /metrics), the Agent's check configuration
  is run with `datadog-checks-base`'s OpenMetrics V2 check and its stub
  aggregator: every slogate family must be submitted, no metric may carry the
  reserved `service` tag, and every metric and tag the SLO queries read must be
  among the submissions. The same instance without `rename_labels` must be
  refused by the stub (the reason for the rename).

Prints one line per check and exits non-zero on the first failure.
"""

import json
import re
import sys

import yaml
from datadog_api_client import Configuration
from datadog_api_client.model_utils import OpenApiModel, validate_and_convert_types
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.service_level_objective_request import ServiceLevelObjectiveRequest


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def build(body, model, where):
    """Builds `model` from the JSON body the way the client deserialises."""
    try:
        return validate_and_convert_types(body, (model,), [where], True, True, Configuration())
    except Exception as error:  # the client's own refusal, with its message
        fail(f"{where}: {model.__name__} refuses the body: {error}")


def walk(obj, where):
    """Fails on `_unparsed` objects and keys the class does not declare."""
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            walk(item, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            walk(value, f"{where}.{key}")
        return
    if not isinstance(obj, OpenApiModel):
        return
    if getattr(obj, "_unparsed", False):
        fail(f"{where}: {type(obj).__name__} is _unparsed (an unknown enum value or shape): {obj}")
    declared = type(obj).openapi_types
    store = obj.__dict__.get("_data_store", {})
    for key, value in store.items():
        if key not in declared and key != "value":
            fail(f"{where}: key {key!r} is not a field of {type(obj).__name__} ({sorted(declared)})")
        walk(value, f"{where}.{key}")


def check_api(api):
    slos = api["service_level_objectives"]
    monitors = api["monitors"]
    if not slos or not monitors:
        fail("the API JSON has no SLO or no monitor")
    for entry in slos:
        where = f"service_level_objectives[{entry['ref']}]"
        walk(build(entry["body"], ServiceLevelObjectiveRequest, where), where)
    refs = {entry["ref"] for entry in slos}
    for entry in monitors:
        where = f"monitors[{entry['ref']}]"
        if entry["slo_ref"] not in refs:
            fail(f"{where}: slo_ref {entry['slo_ref']!r} names no SLO")
        body = dict(entry["body"])
        body["query"] = body["query"].replace("%SLO_ID%", "abcdef0123456789abcdef0123456789")
        walk(build(body, Monitor, where), where)
        if not re.fullmatch(
            r'burn_rate\("[0-9a-f]{32}"\)\.over\("(7d|30d|90d)"\)\.long_window\("\d+[mh]"\)'
            r'\.short_window\("\d+[mh]"\) > [0-9.]+',
            body["query"],
        ):
            fail(f"{where}: not a burn_rate query: {body['query']}")
    print(f"ok: {len(slos)} SLO(s) and {len(monitors)} monitor(s) build as datadog-api-client models")
    return slos, monitors


def check_terraform(tf, api_slos, api_monitors):
    resources = tf["resource"]
    tf_slos = resources["datadog_service_level_objective"]
    tf_monitors = resources["datadog_monitor"]
    by_ref = {entry["ref"]: entry["body"] for entry in api_slos}
    if set(tf_slos) != set(by_ref):
        fail(f"terraform SLOs {sorted(tf_slos)} differ from the API's {sorted(by_ref)}")
    for name, res in tf_slos.items():
        body = dict(res)
        (query,) = body.pop("query")
        body["query"] = query
        where = f"datadog_service_level_objective.{name}"
        walk(build(body, ServiceLevelObjectiveRequest, where), where)
        if body != by_ref[name]:
            fail(f"{where} differs from the API body:\n{body}\n{by_ref[name]}")
    api_by_ref = {entry["ref"]: entry["body"] for entry in api_monitors}
    if set(tf_monitors) != set(api_by_ref):
        fail(f"terraform monitors {sorted(tf_monitors)} differ from the API's {sorted(api_by_ref)}")
    for name, res in tf_monitors.items():
        where = f"datadog_monitor.{name}"
        slo_ref = re.search(r"datadog_service_level_objective\.(\w+)\.id", res["query"])
        if not slo_ref or slo_ref.group(1) not in tf_slos:
            fail(f"{where}: the query does not reference a generated SLO: {res['query']}")
        body = dict(res)
        (thresholds,) = body.pop("monitor_thresholds")
        body["options"] = {"thresholds": thresholds}
        body["priority"] = int(body["priority"])
        body["query"] = body["query"].replace("${" + slo_ref.group(0) + "}", "%SLO_ID%")
        if body != api_by_ref[name]:
            fail(f"{where} differs from the API body:\n{body}\n{api_by_ref[name]}")
    print(f"ok: terraform JSON matches the API bodies ({len(tf_slos)} SLOs, {len(tf_monitors)} monitors)")


def tag_value(value):
    return re.sub(r"[^a-z0-9_\-:./]", "_", value.lower())


def run_check(instance):
    from datadog_checks.base.checks.openmetrics.v2.base import OpenMetricsBaseCheckV2
    from datadog_checks.base.stubs import aggregator

    aggregator.reset()
    check = OpenMetricsBaseCheckV2("openmetrics", {}, [instance])
    error = check.run()  # returns the error text ('' when fine), as the Agent sees it
    return aggregator, error


def families(metrics_text):
    out = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            out.add((name, kind))
    return out


def check_agent(agent, api_slos, metrics_url):
    import urllib.request

    instances = agent["instances"]
    instance = dict(instances[0])
    instance["openmetrics_endpoint"] = metrics_url
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()

    # Without the rename, the stub refuses the reserved `service` tag.
    bare = {k: v for k, v in instance.items() if k != "rename_labels"}
    _, error = run_check(bare)
    if "forbidden tag: service" not in error:
        fail(f"expected the stub to refuse slogate's `service` label without rename_labels; got {error!r}")
    print("ok: without rename_labels the check refuses `service` (reserved for unified service tagging)")

    aggregator, error = run_check(instance)
    if error:
        fail(f"the Agent check failed on slogate's /metrics: {error}")
    submitted = {}
    for name in aggregator.metric_names:
        submitted[name] = [m.tags for m in aggregator.metrics(name)]
    for tags_list in submitted.values():
        for tags in tags_list:
            for tag in tags:
                if tag.split(":", 1)[0] == "service":
                    fail(f"a metric carries the reserved service tag: {tags}")
    missing = []
    for name, kind in sorted(families(text)):
        base = name[len("slogate_"):] if name.startswith("slogate_") else name
        base = base[: -len("_total")] if base.endswith("_total") else base
        expected = {
            "counter": [f"slogate.{base}.count"],
            "histogram": [f"slogate.{base}.count", f"slogate.{base}.sum", f"slogate.{base}.bucket"],
        }.get(kind, [f"slogate.{base}"])
        for metric in expected:
            if metric not in submitted:
                missing.append(f"{name} ({kind}) -> {metric}")
    if missing:
        fail("families the Agent did not submit: " + ", ".join(missing) + f"; submitted: {sorted(submitted)}")
    print(f"ok: the Agent check submits every slogate family ({len(submitted)} metric names)")

    # Every metric + tag filter in the SLO queries matches a submission.
    term = re.compile(r"sum:([\w.]+)\{([^}]*)\}\.as_count\(\)")
    matched = 0
    for entry in api_slos:
        for side in ("numerator", "denominator"):
            for metric, filters in term.findall(entry["body"]["query"][side]):
                if metric not in submitted:
                    fail(f"{entry['ref']} {side}: {metric} is not a metric the Agent submits")
                wanted = [f for f in filters.split(",") if not f.startswith("!")]
                excluded = [f[1:] for f in filters.split(",") if f.startswith("!")]
                for tags in submitted[metric]:
                    normalised = {tag_value(t) for t in tags}
                    if all(w in normalised for w in wanted) and not any(x in normalised for x in excluded):
                        matched += 1
                        break
                else:
                    sample = submitted[metric][:3]
                    fail(
                        f"{entry['ref']} {side}: no {metric} submission has tags {wanted} without {excluded}; "
                        f"some submitted tag sets: {sample}"
                    )
    print(f"ok: every SLO query term matches submitted metrics and tags ({matched} terms)")


def main():
    if len(sys.argv) not in (4, 5):
        fail(__doc__)
    api = json.load(open(sys.argv[1]))
    tf = json.load(open(sys.argv[2]))
    agent = yaml.safe_load(open(sys.argv[3]))
    slos, monitors = check_api(api)
    check_terraform(tf, slos, monitors)
    if len(sys.argv) == 5:
        check_agent(agent, slos, sys.argv[4])
    print("SUCCESS")


if __name__ == "__main__":
    main()
