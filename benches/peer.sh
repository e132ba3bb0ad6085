#!/usr/bin/env bash
# Peer benchmark (issue #3): wrk against a fast fixed-response upstream, three ways in one run
#   direct        wrk -> upstream                          (the upstream's ceiling)
#   nginx         wrk -> nginx (1 worker, JSON access log to a file, upstream keepalive)
#   slogate       wrk -> slogate --threads 1 (GraphQL inspection on, access log to a file)
#   slogate-nolog the same with access_log.target: off
# Configurations are interleaved (rotating order) and repeated; medians are reported.
# The request is a ~1 KB GraphQL POST to /graphql (operationName, variables), the response
# a ~2 KB GraphQL JSON body (VARIANT=errors: the same with an `errors` array).
#
# Environment (all optional):
#   DURATION=10s      length of each measured run
#   CONNECTIONS=50    wrk connections (one wrk thread: THREADS=1)
#   REPEAT=3          runs per configuration (the median is reported)
#   WARMUP=2s         one unmeasured run per configuration first
#   VARIANT=ok        ok | errors (response with an errors array)
#   CONFIGS="direct nginx slogate slogate-nolog"
#   LOADGEN_CPU, UPSTREAM_CPU, PROXY_CPU   cores for wrk, the upstream and the proxy under
#                     test (default on 2 cores: wrk+upstream on 0, proxy on 1; on 3+: 0, 1, 2)
#   NICE              nice value for every benchmark process (default -10 as root, else 0):
#                     a shared machine's builds then disturb the measurement less
#   SLOGATE_BIN       use this binary instead of `cargo build --release --bin slogate`
#   RESULTS_DIR=benches/results   where peer-<date>.md / .json are written
#   KEEP=1            keep the temp dir (configs, logs, raw wrk output)
# Takes about 2.5 minutes with the defaults.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
peer=$repo/benches/peer
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-2s}
VARIANT=${VARIANT:-ok}
CONFIGS=${CONFIGS:-direct nginx slogate slogate-nolog}
RESULTS_DIR=${RESULTS_DIR:-$repo/benches/results}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
[[ $WARMUP =~ ^[0-9]+$ ]] && WARMUP=${WARMUP}s
case $VARIANT in ok|errors) ;; *) echo "peer.sh: VARIANT must be ok or errors" >&2; exit 2 ;; esac

log() { echo "peer.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=benches/lib.sh
. "$repo/benches/lib.sh"

# --- tools -------------------------------------------------------------------------------
need=(nginx wrk curl python3 taskset)
missing() { local m=(); for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || m+=("$t"); done; echo "${m[*]}"; }
if [ -n "$(missing)" ]; then
  log "missing: $(missing); running scripts/setup.sh to install them"
  "$repo/scripts/setup.sh" || true
  [ -z "$(missing)" ] || die "still missing: $(missing) (install them: nginx wrk curl python3 util-linux)"
fi

want() { [[ " $CONFIGS " == *" $1 "* ]]; }
if ! want slogate && ! want slogate-nolog; then
  SLOGATE_BIN=${SLOGATE_BIN:-none}
else
  resolve_slogate_bin
fi

# --- CPU pinning ---------------------------------------------------------------------------
pick_cpus

# --- processes -------------------------------------------------------------------------------
work=$(mktemp -d /tmp/slogate-peer.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  # SIGINT: fast shutdown for both (slogate's SIGTERM would wait out its grace period).
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_up() { # url what
  for _ in $(seq 1 150); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "$2 did not come up ($1); logs in $work (KEEP=1 keeps them)"
}
render() { # template KEY=VALUE...
  python3 - "$@" <<'PY'
import sys
text = open(sys.argv[1]).read()
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    if v.startswith("@"):
        v = open(v[1:]).read().strip()
    text = text.replace("{{%s}}" % k, v)
if "{{" in text:
    sys.exit("peer.sh: unsubstituted placeholder in " + sys.argv[1])
sys.stdout.write(text)
PY
}
as_root=""
[ "$(id -u)" = 0 ] && as_root="user root;"

up_port=$(free_port); ng_port=$(free_port)
sg_port=$(free_port); sg_admin=$(free_port)
sn_port=$(free_port); sn_admin=$(free_port)

# The upstream: nginx returning the fixed GraphQL response from memory. master_process off:
# a single process, so its CPU time is one pid.
render "$peer/upstream.conf.template" PREFIX="$work" UPSTREAM_PORT="$up_port" \
  RESPONSE_OK="@$peer/response.json" RESPONSE_ERRORS="@$peer/response-errors.json" >"$work/upstream.conf"
"${prio[@]}" taskset -c "$UPSTREAM_CPU" nginx -p "$work" -c "$work/upstream.conf" -e "$work/upstream-stderr.log" \
  -g "daemon off; master_process off; $as_root" &
pids+=($!); up_pid=$!

# nginx under test: master + 1 worker (the production shape).
keepalive=$(( CONNECTIONS > 32 ? CONNECTIONS : 32 ))
render "$peer/nginx-proxy.conf.template" PREFIX="$work" PORT="$ng_port" UPSTREAM_PORT="$up_port" \
  KEEPALIVE="$keepalive" ACCESS_LOG="$work/nginx-access.log json" >"$work/nginx.conf"
"${prio[@]}" taskset -c "$PROXY_CPU" nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-stderr.log" \
  -g "daemon off; $as_root" &
pids+=($!); ng_pid=$!

# slogate under test, with and without the access log.
start_slogate() { # name port admin access_log
  render "$peer/slogate.yaml.template" PREFIX="$work" NAME="$1" ACCESS_LOG="$4" >"$work/slogate-$1.yaml"
  "$SLOGATE_BIN" check --config "$work/slogate-$1.yaml" >/dev/null \
    || die "slogate rejects $work/slogate-$1.yaml"
  SLOGATE_LOG=warn "${prio[@]}" taskset -c "$PROXY_CPU" "$SLOGATE_BIN" run --config "$work/slogate-$1.yaml" \
    --upstream "127.0.0.1:$up_port" --listen "127.0.0.1:$2" --admin "127.0.0.1:$3" \
    --threads 1 >"$work/slogate-$1.stdout" 2>"$work/slogate-$1.stderr" &
  pids+=($!)
}
sg_pid=""; sn_pid=""
if want slogate; then start_slogate log "$sg_port" "$sg_admin" "$work/slogate-access.log"; sg_pid=$!; fi
if want slogate-nolog; then start_slogate nolog "$sn_port" "$sn_admin" off; sn_pid=$!; fi

wait_up "http://127.0.0.1:$up_port/" "upstream nginx"
wait_up "http://127.0.0.1:$ng_port/" "nginx (proxy)"
want slogate && wait_up "http://127.0.0.1:$sg_admin/ready" "slogate (admin)"
want slogate-nolog && wait_up "http://127.0.0.1:$sn_admin/ready" "slogate-nolog (admin)"
ng_worker=$(ps -o pid= --ppid "$ng_pid" | tr -d ' ' | head -1)
[ -n "$ng_worker" ] || die "no nginx worker process"

# Sanity: every path answers the fixed GraphQL response.
variant_header=(); [ "$VARIANT" = errors ] && variant_header=(-H 'X-Bench-Variant: errors')
expect=$(wc -c <"$peer/response.json"); [ "$VARIANT" = errors ] && expect=$(wc -c <"$peer/response-errors.json")
probe_ports=("$up_port" "$ng_port")
want slogate && probe_ports+=("$sg_port")
want slogate-nolog && probe_ports+=("$sn_port")
for port in "${probe_ports[@]}"; do
  got=$(curl -fs -X POST -H 'Content-Type: application/json' "${variant_header[@]}" \
    --data-binary "@$peer/request.json" -o "$work/probe.json" -w '%{http_code} %{size_download}' \
    "http://127.0.0.1:$port/graphql") || die "probe of :$port failed"
  [ "$got" = "200 $expect" ] || die "probe of :$port answered '$got', expected '200 $expect'"
done

port_of() { case $1 in direct) echo "$up_port" ;; nginx) echo "$ng_port" ;; slogate) echo "$sg_port" ;; slogate-nolog) echo "$sn_port" ;; *) die "unknown config $1" ;; esac; }
pids_of() { case $1 in direct) echo "$up_pid" ;; nginx) echo "$ng_pid $ng_worker" ;; slogate) echo "$sg_pid" ;; slogate-nolog) echo "$sn_pid" ;; esac; }
cpu_ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done; echo "$t"; }
# Context switches (voluntary + involuntary) of every thread of the given processes.
ctx_switches() { local p; for p in "$@"; do cat /proc/"$p"/task/*/status; done | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }
scrape() { curl -fs "http://127.0.0.1:$1/metrics" >"$2" || die "cannot scrape :$1/metrics"; }

want slogate && scrape "$sg_admin" "$work/metrics-slogate-before.txt"
want slogate-nolog && scrape "$sn_admin" "$work/metrics-slogate-nolog-before.txt"

runs="$work/runs.jsonl"; : >"$runs"
# bench CONFIG DURATION PHASE ROUND
bench() {
  local cfg=$1 dur=$2 phase=$3 round=$4 port out before after up_before up_after cs_before cs_after
  port=$(port_of "$cfg"); out="$work/wrk-$cfg-$phase-$round.txt"
  # shellcheck disable=SC2046
  before=$(cpu_ticks $(pids_of "$cfg")); up_before=$(cpu_ticks "$up_pid")
  # shellcheck disable=SC2046
  cs_before=$(ctx_switches $(pids_of "$cfg"))
  BENCH_REQUEST="$peer/request.json" BENCH_VARIANT="$VARIANT" "${prio[@]}" taskset -c "$LOADGEN_CPU" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency -s "$peer/graphql.lua" \
    "http://127.0.0.1:$port/graphql" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  # shellcheck disable=SC2046
  after=$(cpu_ticks $(pids_of "$cfg")); up_after=$(cpu_ticks "$up_pid")
  # shellcheck disable=SC2046
  cs_after=$(ctx_switches $(pids_of "$cfg"))
  python3 - "$out" "$cfg" "$phase" "$round" "$((after - before))" "$((up_after - up_before))" \
    "$(getconf CLK_TCK)" "$((cs_after - cs_before))" >>"$runs" <<'PY'
import json, sys
out, cfg, phase, rnd, ticks, up_ticks, hz, cs = sys.argv[1:]
line = next((l for l in open(out) if l.startswith("WRK_JSON ")), None)
if line is None:
    sys.exit("peer.sh: no summary in " + out)
r = json.loads(line[len("WRK_JSON "):])
r.update(config=cfg, phase=phase, round=int(rnd),
         cpu_seconds=int(ticks) / int(hz), upstream_cpu_seconds=int(up_ticks) / int(hz),
         context_switches=int(cs))
print(json.dumps(r))
PY
  tail -1 "$runs" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("  %-14s %-6s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5.2fs  errors %s" % (
    r["config"], r["phase"], r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["cpu_seconds"],
    sum(r["errors"].values())))' >&2
}

read -r -a cfgs <<<"$CONFIGS"
log "pinning: wrk on CPU $LOADGEN_CPU, upstream on CPU $UPSTREAM_CPU, proxies on CPU $PROXY_CPU (nproc $ncpu), nice $NICE"
log "warm-up ($WARMUP each), then $REPEAT x ${#cfgs[@]} runs of $DURATION, $CONNECTIONS connections, variant $VARIANT"
for cfg in "${cfgs[@]}"; do bench "$cfg" "$WARMUP" warmup 0; done
for ((round = 1; round <= REPEAT; round++)); do
  n=${#cfgs[@]}
  for ((i = 0; i < n; i++)); do
    # Rotate the order each round so no configuration always runs first or last.
    bench "${cfgs[$(( (i + round - 1) % n ))]}" "$DURATION" run "$round"
  done
done
sleep 1 # let the access log writer and in-flight requests settle
want slogate && scrape "$sg_admin" "$work/metrics-slogate-after.txt"
want slogate-nolog && scrape "$sn_admin" "$work/metrics-slogate-nolog-after.txt"

# --- report and checks -------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
[ "$VARIANT" = ok ] || stamp="$stamp-$VARIANT"
nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$(wrk --version 2>&1 | head -1 | awk '{print $2}' || true)
slogate_version=$("$SLOGATE_BIN" --version 2>/dev/null || echo "slogate (not run)")
git_rev=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(cd "$repo" && git status --porcelain 2>/dev/null | grep -q . && echo "+dirty" || true)
export DATE_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ) NGINX_VERSION=$nginx_version WRK_VERSION=$wrk_version \
  SLOGATE_VERSION=$slogate_version GIT_REV=$git_rev$git_dirty DURATION CONNECTIONS THREADS REPEAT \
  VARIANT CONFIGS NICE LOADGEN_CPU UPSTREAM_CPU PROXY_CPU PEER_DIR=$peer
python3 - "$runs" "$work" "$RESULTS_DIR/peer-$stamp" <<'PY'
import json, re, statistics, sys, os
runs_file, work, base = sys.argv[1:]
env = os.environ
runs = [json.loads(l) for l in open(runs_file)]
cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
peer = env["PEER_DIR"]
connections = int(env["CONNECTIONS"])
meta = {
    "date": env["DATE_UTC"], "nproc": os.cpu_count(), "cpu_model": cpu_model,
    "kernel": os.uname().release, "nginx": env["NGINX_VERSION"], "wrk": env["WRK_VERSION"],
    "slogate": env["SLOGATE_VERSION"], "git": env["GIT_REV"],
    "duration": env["DURATION"], "connections": connections, "wrk_threads": int(env["THREADS"]),
    "repeat": int(env["REPEAT"]), "variant": env["VARIANT"],
    "request_bytes": os.path.getsize(peer + "/request.json"),
    "response_bytes": os.path.getsize(peer + ("/response.json" if env["VARIANT"] == "ok" else "/response-errors.json")),
    "pinning": {"wrk": env["LOADGEN_CPU"], "upstream": env["UPSTREAM_CPU"], "proxy": env["PROXY_CPU"]},
    "nice": int(env["NICE"]),
    "load_average_at_end": open("/proc/loadavg").read().split()[:3],
}
configs = env["CONFIGS"].split()
summary = {}
for c in configs:
    rs = [r for r in runs if r["config"] == c and r["phase"] == "run"]
    if not rs:
        continue
    med = lambda k: statistics.median(r[k] for r in rs)
    reqs = sum(r["requests"] for r in rs)
    cpu = sum(r["cpu_seconds"] for r in rs)
    dur = sum(r["duration_us"] for r in rs) / 1e6
    summary[c] = {
        "rps": med("rps"), "p50_ms": med("p50_us") / 1e3, "p90_ms": med("p90_us") / 1e3,
        "p99_ms": med("p99_us") / 1e3, "p999_ms": med("p999_us") / 1e3,
        "rps_runs": [round(r["rps"]) for r in rs],
        "p99_runs_ms": [round(r["p99_us"] / 1e3, 2) for r in rs],
        "requests": reqs, "errors": sum(sum(r["errors"].values()) for r in rs),
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_100k": round(cpu / reqs * 1e5, 3) if reqs else None,
        "cpu_us_per_request": round(cpu / reqs * 1e6, 2) if reqs else None,
        # Requests one fully used core would serve at this cost: the capacity figure that
        # machine noise (other tenants, wake-up latency) disturbs least.
        "requests_per_cpu_second": round(reqs / cpu) if cpu else None,
        "cpu_utilisation": round(cpu / dur, 3) if dur else None,
        "upstream_cpu_utilisation": round(sum(r["upstream_cpu_seconds"] for r in rs) / dur, 3) if dur else None,
        "context_switches_per_request": round(sum(r["context_switches"] for r in rs) / reqs, 2) if reqs else None,
    }

def ratio(a, b, k):
    if a in summary and b in summary and summary[b][k]:
        return round(summary[a][k] / summary[b][k], 3)
ratios = {}
for s in ("slogate", "slogate-nolog"):
    for k, name in (("rps", "throughput"), ("p99_ms", "p99"), ("p50_ms", "p50"), ("cpu_seconds_per_100k", "cpu_per_request"), ("requests_per_cpu_second", "requests_per_cpu_second")):
        r = ratio(s, "nginx", k)
        if r is not None:
            ratios[f"{s}/nginx {name}"] = r
r = ratio("nginx", "direct", "rps")
if r is not None:
    ratios["nginx/direct throughput"] = r

# Proof the inspection ran: slogate's request counter vs what wrk completed.
def counters(path):
    total, by_outcome = 0.0, {}
    for line in open(path):
        m = re.match(r'slogate_requests_total\{([^}]*)\} (\S+)', line)
        if not m or 'operation="CourseDashboard"' not in m.group(1):
            continue
        v = float(m.group(2)); total += v
        o = re.search(r'outcome="([^"]+)"', m.group(1)).group(1)
        by_outcome[o] = by_outcome.get(o, 0) + v
    return total, by_outcome
checks, failed = [], False
expect_outcome = "success" if env["VARIANT"] == "ok" else "client_error"
for c in ("slogate", "slogate-nolog"):
    if c not in configs:
        continue
    b, _ = counters(f"{work}/metrics-{c}-before.txt")
    a, outcomes = counters(f"{work}/metrics-{c}-after.txt")
    wrk_total = sum(r["requests"] for r in runs if r["config"] == c)
    counted = a - b
    nruns = sum(1 for r in runs if r["config"] == c)
    # wrk stops with up to CONNECTIONS requests in flight per run: slogate may count those.
    ok = wrk_total > 0 and wrk_total * 0.99 <= counted <= wrk_total * 1.01 + connections * nruns
    ok = ok and max(outcomes, key=outcomes.get) == expect_outcome
    failed |= not ok
    checks.append({"config": c, "wrk_requests": wrk_total, "slogate_requests_total": counted,
                   "outcomes": outcomes, "ok": ok})
for c, path in (("nginx", "nginx-access.log"), ("slogate", "slogate-access.log")):
    if c in configs and os.path.exists(f"{work}/{path}"):
        lines = sum(1 for _ in open(f"{work}/{path}"))
        wrk_total = sum(r["requests"] for r in runs if r["config"] == c)
        checks.append({"config": c, "access_log_lines": lines, "wrk_requests": wrk_total,
                       "ok": lines >= wrk_total * 0.99})
        failed |= lines < wrk_total * 0.99

result = {"meta": meta, "summary": summary, "ratios": ratios, "checks": checks, "runs": runs}
json.dump(result, open(base + ".json", "w"), indent=2)

labels = {"direct": "direct (no proxy)", "nginx": "nginx, access log on",
          "slogate": "slogate, inspection + access log on", "slogate-nolog": "slogate, inspection on, access log off"}
md = []
md.append(f"# Peer benchmark, {meta['date']}")
md.append("")
md.append(f"Machine: {meta['nproc']} CPUs, {cpu_model}, Linux {meta['kernel']}; load average at the end {' '.join(meta['load_average_at_end'])}.  ")
md.append(f"nginx {meta['nginx']}, wrk {meta['wrk']}, {meta['slogate']} ({meta['git']}).  ")
md.append(f"wrk -t{meta['wrk_threads']} -c{meta['connections']} -d{meta['duration']}, {meta['repeat']} interleaved runs per configuration (median shown), "
          f"POST /graphql {meta['request_bytes']} B request, {meta['response_bytes']} B response (variant `{meta['variant']}`).  ")
md.append(f"Pinning: wrk on CPU {meta['pinning']['wrk']}, upstream on CPU {meta['pinning']['upstream']}, proxy under test on CPU {meta['pinning']['proxy']}; all at nice {meta['nice']}.")
md.append("")
md.append("| configuration | req/s | p50 ms | p99 ms | p99.9 ms | req/s per run | proxy CPU s / 100k req | req per proxy CPU-second | proxy CPU use | ctx switches / req | errors |")
md.append("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for c in configs:
    s = summary.get(c)
    if not s:
        continue
    cpu = "-" if c == "direct" else f"{s['cpu_seconds_per_100k']:.2f}"
    cap = "-" if c == "direct" else f"{s['requests_per_cpu_second']}"
    use = f"{s['cpu_utilisation']:.0%}" + (" (upstream)" if c == "direct" else "")
    md.append(f"| {labels.get(c, c)} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['p999_ms']:.2f} | "
              f"{', '.join(str(x) for x in s['rps_runs'])} | {cpu} | {cap} | {use} | {s['context_switches_per_request']:.2f} | {s['errors']} |")
md.append("")
md.append("CPU: utime+stime of the proxy (every thread; nginx master + worker) from /proc/PID/stat around each run. "
          "`req per proxy CPU-second` = requests / CPU seconds, what one saturated core would serve: on a shared "
          "machine it is steadier than req/s, which also depends on how fast the proxy gets its core back after each wait. "
          "The `direct` row's CPU use and context switches are the upstream's.")
md.append("")
if ratios:
    md.append("| ratio | value |")
    md.append("|---|---:|")
    for k, v in ratios.items():
        md.append(f"| {k} | {v:.3f} |")
    md.append("")
md.append("Checks (slogate's metrics and the access logs against wrk's request counts, warm-up included):")
md.append("")
for ch in checks:
    md.append("- " + ", ".join(f"{k}={v}" for k, v in ch.items()))
md.append("")
open(base + ".md", "w").write("\n".join(md))
print("\n".join(md))
print(f"written: {base}.md {base}.json", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
