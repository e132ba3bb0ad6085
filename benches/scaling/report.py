#!/usr/bin/env python3
"""The report of benches/scaling.sh: reads its runs.jsonl, writes BASE.md and BASE.json and
prints the Markdown. Exit code 1 when a check fails (slogate's counters against the load
generator's, outcomes, access log drops, connection counts).
    report.py RUNS_JSONL BASE FILES_DIR      (settings come from the environment)
"""
import json
import os
import statistics
import sys

runs_file, base, files = sys.argv[1:]
env = os.environ
rows = [json.loads(l) for l in open(runs_file) if l.strip()]
cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), "unknown")


def envget(k, cast=str, default=None):
    v = env.get(k)
    if v in (None, ""):
        return default
    try:
        return cast(v)
    except ValueError:
        return v


meta = {
    "date": env.get("DATE_UTC"), "nproc": os.cpu_count(), "cpu_model": cpu_model,
    "kernel": os.uname().release, "nginx": env.get("NGINX_VERSION"), "wrk": env.get("WRK_VERSION"),
    "slogate": env.get("SLOGATE_VERSION"), "git": env.get("GIT_REV"),
    "load_average_at_start": env.get("LOAD_AT_START", "").split()[:3],
    "load_average_at_end": open("/proc/loadavg").read().split()[:3],
    "sections": env.get("SECTIONS", "").split(), "repeat": envget("REPEAT", int),
    "saturation": {"tool": "wrk -t1 (closed loop)", "connections": envget("SAT_CONNECTIONS", int),
                   "duration": env.get("SAT_DURATION")},
    "openloop": {"tool": "slogate loadtest (open loop, latency from the scheduled send time)",
                 "rate": envget("RATE", int), "rate_fraction": envget("RATE_FRACTION", float),
                 "duration": env.get("OPEN_DURATION")},
    "sizes": {"sizes": env.get("SIZES", "").split(), "connections": envget("SIZE_CONNECTIONS", int),
              "duration": env.get("SIZE_DURATION"),
              "bytes": {s: os.path.getsize(os.path.join(files, "body-%s.json" % s))
                        for s in env.get("SIZES", "").split()
                        if os.path.exists(os.path.join(files, "body-%s.json" % s))}},
    "ops": {"names": [int(x) for x in env.get("OPS", "").split()],
            "connections": envget("OPS_CONNECTIONS", int), "duration": env.get("OPS_DURATION"),
            "max_operations": envget("MAX_OPERATIONS", int)},
    "idle": {"connections": envget("IDLE_CONNS", int), "nofile": envget("NOFILE", int),
             "nginx_worker_connections": envget("WORKER_CONNECTIONS", int)},
    "stream": {"bytes": os.path.getsize(os.path.join(files, "body-100m.json"))
               if os.path.exists(os.path.join(files, "body-100m.json")) else None,
               "slow_client_rate": env.get("STREAM_SLOW_RATE")},
    "pinning": {"load_generator": env.get("LOADGEN_CPU"), "upstream": env.get("UPSTREAM_CPU"),
                "proxy": env.get("PROXY_CPU")},
    "nice": envget("NICE", int),
}

med = statistics.median


def points(section):
    """{(label, config): [runs]} for measured rounds."""
    out = {}
    for r in rows:
        if r.get("section") == section and r.get("round", 1) > 0 and "rps" in r:
            out.setdefault((r["label"], r["config"]), []).append(r)
    return out


def summarize(rs):
    s = {
        "runs": len(rs),
        "rps": med(r["rps"] for r in rs),
        "rps_runs": [round(r["rps"]) for r in rs],
        "p50_ms": med(r["p50_us"] for r in rs) / 1e3,
        "p99_ms": med(r["p99_us"] for r in rs) / 1e3,
        "cpu_seconds_per_100k": med(r["cpu_seconds"] / r["requests"] * 1e5 for r in rs if r["requests"]),
        "cpu_us_per_request": med(r["cpu_seconds"] / r["requests"] * 1e6 for r in rs if r["requests"]),
        "cpu_utilisation": med(r["cpu_seconds"] / r["seconds"] for r in rs if r["seconds"]),
        "upstream_cpu_utilisation": med(r["upstream_cpu_seconds"] / r["seconds"] for r in rs if r["seconds"]),
        "errors": sum(r["errors_total"] for r in rs),
    }
    if all("p999_us" in r for r in rs):
        s["p999_ms"] = med(r["p999_us"] for r in rs) / 1e3
    if all("p90_us" in r for r in rs):
        s["p90_ms"] = med(r["p90_us"] for r in rs) / 1e3
    if all("service_p99_us" in r for r in rs):
        s["service_p50_ms"] = med(r["service_p50_us"] for r in rs) / 1e3
        s["service_p99_ms"] = med(r["service_p99_us"] for r in rs) / 1e3
    if all("bytes" in r for r in rs):
        s["mb_per_s"] = med(r["bytes"] / r["seconds"] for r in rs) / 1e6
    if all("target_rate" in r for r in rs):
        s["target_rate"] = rs[0]["target_rate"]
    if any("labels_after" in r for r in rs):
        s["labels_after"] = max(r.get("labels_after", 0) for r in rs)
        counted = sum(r.get("slogate_counted", 0) for r in rs)
        s["other_share"] = sum(r.get("other_counted", 0) for r in rs) / counted if counted else 0
    return s


summary = {sec: {"%s|%s" % k: summarize(v) for k, v in points(sec).items()}
           for sec in ("saturation", "openloop", "sizes", "ops")}
memory = [r for r in rows if r.get("section") == "memory"]
idle = [r for r in rows if r.get("section") == "idle"]
stream = [r for r in rows if r.get("section") == "stream"]


def get(sec, label, config):
    return summary[sec].get("%s|%s" % (label, config))


def ratio(a, b, key):
    if a and b and b.get(key):
        return a[key] / b[key]
    return None


# --- checks ---------------------------------------------------------------------------------------
checks, failed = [], False
for r in rows:
    if "slogate_counted" in r:
        # wrk stops with up to `connections` requests in flight: slogate may count those.
        conns = {"saturation": meta["saturation"]["connections"], "sizes": meta["sizes"]["connections"],
                 "ops": meta["ops"]["connections"]}.get(r["section"], 64) or 64
        ok = r["requests"] * 0.99 <= r["slogate_counted"] <= r["requests"] * 1.01 + conns
        outcomes = r.get("slogate_outcomes", {})
        good = outcomes.get("success", 0)
        ok = ok and good >= 0.99 * r["requests"] and r.get("inspection_limited", 0) == 0
        ok = ok and r.get("access_log_dropped", 0) == 0
        if r["section"] == "ops" and r["config"] == "slogate":
            limit = meta["ops"]["max_operations"] or 1000
            ok = ok and r.get("labels_after", 0) <= limit + 1
        if not ok:
            failed = True
            checks.append({"run": "%s/%s/%s/%s" % (r["section"], r["label"], r["config"], r["round"]),
                           "wrk_requests": r["requests"], "slogate_counted": r["slogate_counted"],
                           "outcomes": outcomes, "inspection_limited": r.get("inspection_limited"),
                           "access_log_dropped": r.get("access_log_dropped"),
                           "labels_after": r.get("labels_after"), "ok": False})
    if r.get("errors_total"):
        failed = True
        checks.append({"run": "%s/%s/%s/%s" % (r["section"], r["label"], r["config"], r["round"]),
                       "errors": r.get("errors"), "statuses": r.get("statuses"), "ok": False})
for r in idle:
    ok = r["opened"] == r["connections"] and r["established"] >= r["connections"]
    failed |= not ok
    checks.append({"run": "idle/%s" % r["config"], "opened": r["opened"], "failed": r["failed"],
                   "established_at_proxy": r["established"], "ok": ok})
for r in stream:
    if "metrics" in r:
        ok = r["metrics"]["slogate_outcomes"] == {"success": 1.0} and r["metrics"]["inspection_limited"] == 0
        failed |= not ok
        checks.append({"run": "stream/%s/%s" % (r["label"], r["config"]),
                       "slogate_outcomes": r["metrics"]["slogate_outcomes"],
                       "inspection_limited": r["metrics"]["inspection_limited"], "ok": ok})
slogate_runs = [r for r in rows if "slogate_counted" in r]
checks.insert(0, {"run": "all slogate wrk runs", "runs": len(slogate_runs),
                  "wrk_requests": sum(r["requests"] for r in slogate_runs),
                  "slogate_counted": sum(r["slogate_counted"] for r in slogate_runs),
                  "ok": not any(c for c in checks if c.get("ok") is False and "slogate_counted" in c)})

# --- Markdown ---------------------------------------------------------------------------------------
md = []
add = md.append
f0 = lambda x: "-" if x is None else "{:,.0f}".format(x)
f1 = lambda x: "-" if x is None else "{:,.1f}".format(x)
f2 = lambda x: "-" if x is None else "{:,.2f}".format(x)
fr = lambda x: "-" if x is None else "{:.2f}".format(x)
pct = lambda x: "-" if x is None else "{:.0%}".format(x)
mb = lambda kb: "-" if kb is None else "{:,.1f}".format(kb / 1024)
add("# Scaling benchmark, %s" % meta["date"])
add("")
add("Machine: %s CPUs, %s, Linux %s; load average %s at the start, %s at the end.  "
    % (meta["nproc"], cpu_model, meta["kernel"], " ".join(meta["load_average_at_start"]) or "?",
       " ".join(meta["load_average_at_end"])))
add("nginx %s, wrk %s, %s (%s).  " % (meta["nginx"], meta["wrk"], meta["slogate"], meta["git"]))
add("Pinning: load generator on CPU %s, upstream (nginx, 1 process) on CPU %s, proxy under test on CPU %s; "
    "all at nice %s. nginx: 1 worker, JSON access log to a file. slogate: `--threads 1`, GraphQL "
    "inspection on, access log to a file, health checks off. %s runs per point, median shown."
    % (meta["pinning"]["load_generator"], meta["pinning"]["upstream"], meta["pinning"]["proxy"],
       meta["nice"], meta["repeat"]))
add("")
labels = {"direct": "direct (no proxy)", "nginx": "nginx", "slogate": "slogate"}

if summary["saturation"]:
    add("## 1. Saturation (closed loop, wrk -t1 -c%s, %s per run)" % (meta["saturation"]["connections"],
                                                                    meta["saturation"]["duration"]))
    add("")
    add("| configuration | req/s | req/s per run | p50 ms | p99 ms | p99.9 ms | proxy CPU s / 100k req | proxy CPU use |")
    add("|---|---:|---|---:|---:|---:|---:|---:|")
    for c in ("direct", "nginx", "slogate"):
        s = get("saturation", "c%s" % meta["saturation"]["connections"], c)
        if s:
            add("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                labels[c], f0(s["rps"]), ", ".join(map(str, s["rps_runs"])), f2(s["p50_ms"]), f2(s["p99_ms"]),
                f2(s.get("p999_ms")), "-" if c == "direct" else f2(s["cpu_seconds_per_100k"]),
                pct(s["cpu_utilisation"]) + (" (upstream)" if c == "direct" else "")))
    add("")

if summary["openloop"]:
    rate = meta["openloop"]["rate"]
    add("## 2. Open loop at %s req/s (slogate loadtest, %s per run; latency from the scheduled send time)"
        % (f0(rate), meta["openloop"]["duration"]))
    add("")
    add("%s req/s is %s of slogate's closed-loop saturation above, the same rate for all three."
        % (f0(rate), pct(meta["openloop"]["rate_fraction"]) if meta["openloop"]["rate_fraction"] else "-"))
    add("")
    add("| configuration | achieved req/s | p50 ms | p90 ms | p99 ms | service p99 ms | proxy CPU s / 100k req | proxy CPU use | errors |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in ("direct", "nginx", "slogate"):
        s = get("openloop", "r%s" % rate, c)
        if s:
            add("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                labels[c], f0(s["rps"]), f2(s["p50_ms"]), f2(s.get("p90_ms")), f2(s["p99_ms"]),
                f2(s.get("service_p99_ms")), "-" if c == "direct" else f2(s["cpu_seconds_per_100k"]),
                pct(s["cpu_utilisation"]) + (" (upstream)" if c == "direct" else ""), s["errors"]))
    add("")

if idle:
    add("## 3a. Memory with %s idle keep-alive connections (each completed one request)"
        % f0(meta["idle"]["connections"]))
    add("")
    add("| proxy | connections held | RSS before MB | RSS with the connections MB | growth MB | KB per connection | PSS with the connections MB | RSS after they closed MB |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in idle:
        grow = r["mem"]["rss_kb"] - r["mem_before"]["rss_kb"]
        add("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            labels[r["config"]] + (" (master + worker)" if r["config"] == "nginx" else ""), f0(r["established"]),
            mb(r["mem_before"]["rss_kb"]), mb(r["mem"]["rss_kb"]), mb(grow),
            f1(grow / max(1, r["opened"])), mb(r["mem"]["pss_kb"]), mb(r["mem_after_close"]["rss_kb"])))
    add("")

if stream:
    add("## 3b. Memory while a %s-byte GraphQL JSON response streams through (curl to /dev/null)"
        % f0(meta["stream"]["bytes"]))
    add("")
    add("| client | configuration | seconds | MB/s | RSS before MB | peak RSS MB (VmHWM) | peak RSS MB (sampled 5 ms) | growth MB | process CPU s |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in stream:
        c = r["curl"]
        who = "fast" if r["label"] == "fast" else "slow (%s/s)" % r["limit_rate"]
        add("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            who, "direct (upstream nginx alone)" if r["config"] == "direct" else labels[r["config"]], f2(c["seconds"]),
            f0(c["bytes"] / c["seconds"] / 1e6), mb(r["mem_before"]["rss_kb"]), mb(r["mem"]["hwm_kb"]),
            mb(r["sampled_peak"]["max_kb"]), mb(r["mem"]["hwm_kb"] - r["mem_before"]["rss_kb"]),
            f2(r["cpu_seconds"])))
    add("")

if summary["sizes"]:
    add("## 4. Response size (closed loop, wrk -t1 -c%s, %s per run; GraphQL JSON bodies)"
        % (meta["sizes"]["connections"], meta["sizes"]["duration"]))
    add("")
    add("| response | configuration | req/s | MB/s | p50 ms | p99 ms | proxy CPU µs / req | proxy CPU s / 100k req | proxy CPU use | CPU slogate/nginx |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in meta["sizes"]["sizes"]:
        ng = get("sizes", size, "nginx")
        for c in ("direct", "nginx", "slogate"):
            s = get("sizes", size, c)
            if not s:
                continue
            r = ratio(s, ng, "cpu_us_per_request") if c == "slogate" else None
            add("| %s (%s B) | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                size, f0(meta["sizes"]["bytes"].get(size)), labels[c], f0(s["rps"]), f1(s.get("mb_per_s")),
                f2(s["p50_ms"]), f2(s["p99_ms"]),
                "-" if c == "direct" else f1(s["cpu_us_per_request"]),
                "-" if c == "direct" else f2(s["cpu_seconds_per_100k"]),
                pct(s["cpu_utilisation"]) + (" (upstream)" if c == "direct" else ""), fr(r) if r else ""))
    add("")

if summary["ops"]:
    add("## 5. Distinct operation names (closed loop, wrk -t1 -c%s, %s per run; random names, "
        "`metrics.max_operations: %s`; a fresh proxy per row)"
        % (meta["ops"]["connections"], meta["ops"]["duration"], meta["ops"]["max_operations"]))
    add("")
    add("| configuration | names | req/s | p50 ms | p99 ms | proxy CPU µs / req | proxy CPU s / 100k req | RSS before → after MB | operation labels | requests as `(other)` |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in ("nginx", "slogate"):
        for n in meta["ops"]["names"]:
            s = get("ops", str(n), c)
            if not s:
                continue
            m = next((x for x in memory if x["label"] == "ops-%s" % n and x["config"] == c), None)
            add("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                labels[c], f0(n), f0(s["rps"]), f2(s["p50_ms"]), f2(s["p99_ms"]), f1(s["cpu_us_per_request"]),
                f2(s["cpu_seconds_per_100k"]),
                "%s → %s" % (mb(m["mem_before"]["rss_kb"]), mb(m["mem"]["rss_kb"])) if m else "-",
                s.get("labels_after", "-"), pct(s.get("other_share")) if c == "slogate" else "-"))
    add("")

# --- ratios -------------------------------------------------------------------------------------
ratios = {}
sat_l = "c%s" % meta["saturation"]["connections"]
for key, name in (("rps", "throughput"), ("p99_ms", "p99"), ("cpu_seconds_per_100k", "cpu_per_request")):
    r = ratio(get("saturation", sat_l, "slogate"), get("saturation", sat_l, "nginx"), key)
    if r is not None:
        ratios["saturation slogate/nginx " + name] = r
rl = "r%s" % meta["openloop"]["rate"]
for key, name in (("rps", "achieved throughput"), ("p50_ms", "p50"), ("p99_ms", "p99"),
                  ("cpu_seconds_per_100k", "cpu_per_request")):
    r = ratio(get("openloop", rl, "slogate"), get("openloop", rl, "nginx"), key)
    if r is not None:
        ratios["open loop slogate/nginx " + name] = r
for size in meta["sizes"]["sizes"]:
    for key, name in (("rps", "throughput"), ("p99_ms", "p99"), ("cpu_us_per_request", "cpu_per_request")):
        r = ratio(get("sizes", size, "slogate"), get("sizes", size, "nginx"), key)
        if r is not None:
            ratios["%s slogate/nginx %s" % (size, name)] = r
if meta["ops"]["names"]:
    nmax = str(meta["ops"]["names"][-1])
    for n in meta["ops"]["names"]:
        for key, name in (("rps", "throughput"), ("cpu_us_per_request", "cpu_per_request")):
            r = ratio(get("ops", str(n), "slogate"), get("ops", nmax, "nginx"), key)
            if r is not None:
                ratios["%s names slogate/nginx %s" % (n, name)] = r
if len(idle) == 2:
    ng, sg = ({r["config"]: r for r in idle}[k] for k in ("nginx", "slogate"))
    ratios["idle slogate/nginx RSS"] = sg["mem"]["rss_kb"] / ng["mem"]["rss_kb"]
    ratios["idle slogate/nginx RSS growth"] = ((sg["mem"]["rss_kb"] - sg["mem_before"]["rss_kb"])
                                               / max(1, ng["mem"]["rss_kb"] - ng["mem_before"]["rss_kb"]))
if ratios:
    add("## Ratios (slogate / nginx; below 1 is better for slogate except throughput)")
    add("")
    add("| ratio | value |")
    add("|---|---:|")
    for k, v in ratios.items():
        add("| %s | %.2f |" % (k, v))
    add("")
add("CPU: utime+stime of every thread of the proxy (nginx master + worker) from /proc/PID/stat "
    "around each run (10 ms ticks). RSS: VmRSS; PSS from smaps_rollup (nginx's master and worker "
    "share pages, RSS counts them twice). Peak RSS: VmHWM after resetting it (clear_refs 5) just "
    "before the transfer, and a 5 ms VmRSS sampler as a cross-check.")
add("")
add("Checks (%s):" % ("FAILED" if failed else "all passed"))
add("")
for ch in checks:
    add("- " + ", ".join("%s=%s" % (k, v) for k, v in ch.items()))
add("")

result = {"meta": meta, "summary": summary, "ratios": ratios, "idle": idle, "stream": stream,
          "memory": memory, "checks": checks, "runs": [r for r in rows if "rps" in r]}
json.dump(result, open(base + ".json", "w"), indent=2)
open(base + ".md", "w").write("\n".join(md))
print("\n".join(md))
print("written: %s.md %s.json" % (base, base), file=sys.stderr)
sys.exit(1 if failed else 0)
