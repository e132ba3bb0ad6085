#!/usr/bin/env python3
"""Helpers of benches/scaling.sh (one file, subcommands):
  render TEMPLATE KEY=VALUE...        {{KEY}} placeholders; VALUE @file reads a file
  scenario REQUEST_JSON               a one-operation `slogate loadtest` scenario (JSON is YAML)
  metrics FILE                        summary of a slogate /metrics scrape, as JSON
  mem PID...                          {"rss_kb","pss_kb","hwm_kb"} summed over the pids
  sample-rss OUT INTERVAL_MS PID...   sample summed VmRSS until SIGTERM; write {"max_kb","samples"}
  record KIND ...                     turn one raw result into a JSON line (see below)
"""
import json
import os
import re
import signal
import sys
import time


def render(template, *pairs):
    text = open(template).read()
    for kv in pairs:
        k, _, v = kv.partition("=")
        if v.startswith("@"):
            v = open(v[1:]).read().strip()
        text = text.replace("{{%s}}" % k, v)
    if "{{" in text:
        sys.exit("scaling.sh: unsubstituted placeholder in %s: %s"
                 % (template, re.findall(r"\{\{[A-Z_]+\}\}", text)))
    sys.stdout.write(text)


def scenario(request_json):
    req = json.load(open(request_json))
    doc = {
        "description": "benches/scaling.sh open loop: the peer benchmark's request, one operation",
        "seed": 1,
        "load": {"mode": "open", "rate": 1000, "duration": "5s", "timeout": "10s",
                 "accept_gzip": False, "max_in_flight": 4096},
        "proxy": {"read_timeout": "5s"},
        "graphql_path": "/graphql",
        "operations": [{"name": req["operationName"], "weight": 1, "document": req["query"],
                        "variables": req.get("variables") or {}}],
    }
    json.dump(doc, sys.stdout, indent=1)


def metrics_summary(path):
    total, outcomes, ops, limited, dropped = 0.0, {}, set(), 0.0, 0.0
    other = 0.0
    for line in open(path):
        if line.startswith("slogate_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            v = float(value)
            total += v
            o = re.search(r'outcome="([^"]*)"', labels)
            if o:
                outcomes[o.group(1)] = outcomes.get(o.group(1), 0) + v
            op = re.search(r'operation="([^"]*)"', labels)
            if op:
                ops.add(op.group(1))
                if op.group(1) == "(other)":
                    other += v
        elif line.startswith("slogate_inspection_limited_total"):
            limited += float(line.rsplit(" ", 1)[1])
        elif line.startswith("slogate_access_log_dropped_total"):
            dropped += float(line.rsplit(" ", 1)[1])
    return {"requests": total, "outcomes": outcomes, "labels": len(ops), "other": other,
            "inspection_limited": limited, "access_log_dropped": dropped}


def status_kb(pid, key):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid):
    try:
        with open("/proc/%s/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mem(*pids):
    pss = [pss_kb(p) for p in pids]
    return {"rss_kb": sum(status_kb(p, "VmRSS") for p in pids),
            "pss_kb": None if None in pss else sum(pss),
            "hwm_kb": sum(status_kb(p, "VmHWM") for p in pids)}


def sample_rss(out, interval_ms, *pids):
    state = {"stop": False}
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    signal.signal(signal.SIGINT, lambda *_: state.update(stop=True))
    best, n = 0, 0
    # Write a first result at once: the caller waits for the file before it starts the
    # transfer, so a short transfer can't end (and SIGTERM us) before the handlers exist.
    best = sum(status_kb(p, "VmRSS") for p in pids)
    json.dump({"max_kb": best, "samples": 1}, open(out + ".tmp", "w"))
    os.replace(out + ".tmp", out)
    while not state["stop"]:
        try:
            best = max(best, sum(status_kb(p, "VmRSS") for p in pids))
            n += 1
        except OSError:
            break
        time.sleep(int(interval_ms) / 1000)
    json.dump({"max_kb": best, "samples": n}, open(out, "w"))


def record(kind, *a):
    """One JSON line on stdout. Common args: SECTION CONFIG LABEL ROUND TICKS HZ."""
    if kind == "wrk":
        out, section, config, label, rnd, ticks, hz, up_ticks, extra = a
        line = next((l for l in open(out) if l.startswith("WRK_JSON ")), None)
        if line is None:
            sys.exit("scaling.sh: no wrk summary in %s:\n%s" % (out, open(out).read()))
        r = json.loads(line[len("WRK_JSON "):])
        r["errors_total"] = sum(r["errors"].values())
        r["seconds"] = r["duration_us"] / 1e6
    elif kind == "loadtest":
        out, section, config, label, rnd, ticks, hz, up_ticks, extra = a
        rep = json.load(open(out))
        ops = rep["operations"]
        lat = ops[0]["latency_ms"] if len(ops) == 1 else None
        svc = ops[0]["service_ms"] if len(ops) == 1 else None
        statuses = {}
        for o in ops:
            for s, n in o["statuses"].items():
                statuses[s] = statuses.get(s, 0) + n
        r = {"requests": rep["http_requests"], "seconds": rep["elapsed_seconds"],
             "rps": rep["achieved_rate"], "load": rep["load"],
             "p50_us": lat["p50"] * 1e3, "p90_us": lat["p90"] * 1e3, "p99_us": lat["p99"] * 1e3,
             "service_p50_us": svc["p50"] * 1e3, "service_p99_us": svc["p99"] * 1e3,
             "statuses": statuses, "errors_total": rep["client_timeouts"] + rep["transport_errors"]
             + sum(n for s, n in statuses.items() if s != "200")}
    else:
        sys.exit("record: unknown kind " + kind)
    r.update(section=section, config=config, label=label, round=int(rnd),
             cpu_seconds=int(ticks) / int(hz), upstream_cpu_seconds=int(up_ticks) / int(hz))
    if extra:
        r.update(json.loads(extra))
    print(json.dumps(r))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "render":
        render(*args)
    elif cmd == "scenario":
        scenario(*args)
    elif cmd == "metrics":
        print(json.dumps(metrics_summary(args[0])))
    elif cmd == "mem":
        print(json.dumps(mem(*args)))
    elif cmd == "sample-rss":
        sample_rss(*args)
    elif cmd == "record":
        record(*args)
    else:
        sys.exit("lib.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
