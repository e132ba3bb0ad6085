#!/usr/bin/env bash
# Soak benchmark (issue #11; a benchmark, not a test): slogate in front of the mock upstream
# for DURATION at RATE_FRACTION of its saturation, with the incident's faults (system errors
# under HTTP 200, 500s, 503s, connection resets). At the end the three views (client,
# slogate's metrics, the mock's ground truth) must agree exactly; slogate's RSS and the open
# file descriptors no connection explains must stay flat (within ±FLAT_PCT % of their value at
# minute 2) from minute 2 to the end, and once the clients leave and the pooled upstream
# connections idle out, slogate holds the fds it held before the load. The raw fd count is
# reported too: it follows the connections (the clients' and the upstream pool's, which grows
# with the upstream's concurrency and shrinks after upstream.idle_timeout). The load is an open loop over a fixed population of CLIENTS keep-alive
# connections (wrk2's model: each sends its share of the rate at its scheduled times, and a
# late answer counts in the next one's latency), so the connections slogate holds follow the
# clients, not the load generator's scheduling hiccups.
#   benches/soak.sh                           # 10 minutes, ~12 minutes in all
#   DURATION=60s benches/soak.sh              # a quick look (flatness then from 1/5 of the run)
# Environment: SLOGATE_BIN (default: a release build of this checkout), DURATION=600s,
# RATE_FRACTION=0.5 (or RATE=N req/s), SAT_CONNECTIONS=32, SAMPLE=10 (seconds between RSS/fd
# samples), FLAT_PCT=10, THREADS=1 (slogate's worker threads), CLIENTS=64.
# Writes benches/results/soak-<date>.md and .json; exit 1 when a check fails.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "soak.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
. "$repo/benches/lib.sh"
DURATION=${DURATION:-600s}
secs=${DURATION%s}
[[ $secs =~ ^[0-9]+$ ]] || die "DURATION must be whole seconds, e.g. 600s (got $DURATION)"
RATE_FRACTION=${RATE_FRACTION:-0.5}
SAT_CONNECTIONS=${SAT_CONNECTIONS:-32}
SAMPLE=${SAMPLE:-10}
FLAT_PCT=${FLAT_PCT:-10}
THREADS=${THREADS:-1}
CLIENTS=${CLIENTS:-64}
scenario=$repo/benches/soak/scenario.yaml
resolve_slogate_bin
pick_cpus

work=$(mktemp -d /tmp/slogate-soak.XXXXXX)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

wait_up() { for _ in $(seq 1 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; die "$1 did not come up"; }
# A fresh mock and slogate (counts start at zero): sets mock_port, port, admin, sg.
start_pair() {
  mock_port=$(free_port); port=$(free_port); admin=$(free_port)
  "${prio[@]}" taskset -c "$UPSTREAM_CPU" "$SLOGATE_BIN" mock-upstream --scenario "$scenario" \
    --listen "127.0.0.1:$mock_port" >"$work/mock.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$mock_port/__mock/stats"
  cat >"$work/slogate.yaml" <<EOF
server:
  pid_file: $work/slogate.pid
  upgrade_socket: $work/upgrade.sock
upstream:
  name: rails
access_log:
  target: $work/access.log
EOF
  SLOGATE_LOG=warn "${prio[@]}" taskset -c "$PROXY_CPU" "$SLOGATE_BIN" run --config "$work/slogate.yaml" \
    --upstream "127.0.0.1:$mock_port" --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" \
    --threads "$THREADS" >"$work/slogate.log" 2>&1 &
  sg=$!; pids+=($sg)
  wait_up "http://127.0.0.1:$admin/ready"
}
loadtest() { # extra args...
  taskset -c "$LOADGEN_CPU" "$SLOGATE_BIN" loadtest --scenario "$scenario" --target "http://127.0.0.1:$port" \
    --metrics "http://127.0.0.1:$admin/metrics" --mock-stats "http://127.0.0.1:$mock_port/__mock/stats" \
    --proxy-config "$work/slogate.yaml" --json --quiet "$@"
}

# 1. Saturation: closed loop on SAT_CONNECTIONS connections for 15 s.
start_pair
loadtest --connections "$SAT_CONNECTIONS" --duration 15s >"$work/saturation.json" || true
saturation=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["achieved_rate"]))' "$work/saturation.json")
stop_all
rate=${RATE:-$(python3 -c "print(max(1, round($saturation * $RATE_FRACTION)))")}
echo "soak.sh: saturation $saturation req/s (closed loop, $SAT_CONNECTIONS connections); soaking at $rate req/s for ${secs}s" >&2

# 2. The soak, sampling slogate's RSS and open fds every SAMPLE seconds.
start_pair
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
# Client and upstream connections open, from slogate's gauges: "client,upstream".
conns() {
  curl -fs "http://127.0.0.1:$admin/metrics" | awk '
    /^slogate_connections_open / {c += $2}
    /^slogate_upstream_connections_open\{/ {u += $2}
    END {printf "%d,%d", c, u}'
}
fds_before=$(fds "$sg")
echo "t_s,rss_kib,fds,clients,upstreams" >"$work/samples.csv"
(
  t0=$(date +%s)
  while kill -0 "$sg" 2>/dev/null; do
    # The fds and the gauges are read a moment apart: read again while a connection opened
    # or closed in between.
    for _ in 1 2 3 4 5; do
      c1=$(conns); f=$(fds "$sg"); c2=$(conns)
      [ "$c1" = "$c2" ] && break
    done
    echo "$(( $(date +%s) - t0 )),$(rss_kib "$sg"),$f,$c2" >>"$work/samples.csv"
    sleep "$SAMPLE"
  done
) &
sampler=$!
set +e
loadtest --rate "$rate" --connections "$CLIENTS" --duration "${secs}s" >"$work/soak.json"
agree_exit=$?
set -e
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
echo "$secs,$(rss_kib "$sg"),$(fds "$sg"),$(conns)" >>"$work/samples.csv"
# Once the clients are gone and the pooled upstream connections sat idle for
# upstream.idle_timeout (15 s by default), slogate holds what it held before the load.
for _ in $(seq 1 60); do
  fds_after=$(fds "$sg")
  [ "$fds_after" -le "$fds_before" ] && break
  sleep 0.5
done
stop_all

mkdir -p "$repo/benches/results"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out=$repo/benches/results/soak-$stamp
python3 - "$work" "$out" "$secs" "$rate" "$saturation" "$FLAT_PCT" "$agree_exit" "$SLOGATE_BIN" "$THREADS" "$CLIENTS" "$fds_before" "$fds_after" <<'PY'
import csv, json, os, platform, sys, time
work, out, secs, rate, sat, flat_pct, agree_exit, binary, threads, clients, fds_before, fds_after = sys.argv[1:]
secs, rate, sat, flat_pct, agree_exit = int(secs), int(rate), int(sat), float(flat_pct), int(agree_exit)
clients, fds_before, fds_after = int(clients), int(fds_before), int(fds_after)
report = json.load(open(f"{work}/soak.json"))
# t, RSS KiB, fds, client connections, upstream connections
rows = [(int(r["t_s"]), int(r["rss_kib"]), int(r["fds"]), int(r["clients"] or 0), int(r["upstreams"] or 0))
        for r in csv.DictReader(open(f"{work}/samples.csv"))]
start = min(120, secs // 5)  # minute 2 of a 10-minute run
# The last row is taken after the load ended; flatness is judged while it runs.
window = [r for r in rows[:-1] if r[0] >= start]
base = window[0] if window else rows[-1]
def spread(vals, at):
    lo, hi = min(vals), max(vals)
    return lo, hi, max(abs(hi - at), abs(at - lo)), (max(abs(hi - at), abs(at - lo)) / at * 100 if at else 0.0)
rss_lo, rss_hi, _, rss_pct = spread([r[1] for r in window], base[1])
fd_lo, fd_hi, _, fd_pct = spread([r[2] for r in window], base[2])
# What no connection explains: listeners, the log file, the runtime's descriptors...
other = [r[2] - r[3] - r[4] for r in window]
other_lo, other_hi, _, other_pct = spread(other, other[0])
cl_lo, cl_hi = min(r[3] for r in window), max(r[3] for r in window)
up_lo, up_hi = min(r[4] for r in window), max(r[4] for r in window)
checks = {
    "the three views agree exactly": report.get("agree", False) and agree_exit == 0,
    f"RSS flat within ±{flat_pct:g}% from t={start}s": rss_pct <= flat_pct,
    f"fds beyond open connections flat within ±{flat_pct:g}% from t={start}s": other_pct <= flat_pct,
    f"client connections stay the {clients} clients": cl_lo == cl_hi == clients,
    f"upstream connections bounded by the clients ({up_hi} at most)": up_hi <= clients,
    f"fds back to their count before the load ({fds_before}) once idle connections close": fds_after <= fds_before,
}
client = {k: 0 for k in ("success", "client_error", "system_error")}
for op in report["operations"]:
    for k in client:
        client[k] += op.get("client", {}).get(k, 0)
md = []
md.append(f"# Soak: slogate in front of the mock upstream, {secs} s at {rate} req/s, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
md.append(f"Machine: {os.cpu_count()} CPUs, {platform.platform()}; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}.  ")
md.append(f"slogate `{binary}`, --threads {threads}; scenario `benches/soak/scenario.yaml` (the incident mix: system errors under HTTP 200, 500s, 503s, resets; millisecond latencies).  ")
md.append(f"Saturation (closed loop): {sat} req/s; soak rate {rate} req/s (open loop).\n")
md.append("| figure | value |")
md.append("|---|---:|")
md.append(f"| requests sent | {report['http_requests']} |")
md.append(f"| achieved rate | {report['achieved_rate']:.1f} req/s |")
md.append(f"| client view: success / client error / system error | {client['success']} / {client['client_error']} / {client['system_error']} |")
md.append(f"| transport errors (resets the scenario injects) / client timeouts | {report['transport_errors']} / {report['client_timeouts']} |")
md.append(f"| operations whose views differ | {sum(1 for o in report['operations'] if o.get('differences'))} |")
md.append(f"| RSS at t={base[0]} s / min / max after | {base[1]/1024:.1f} / {rss_lo/1024:.1f} / {rss_hi/1024:.1f} MiB (±{rss_pct:.1f}%) |")
md.append(f"| open fds at t={base[0]} s / min / max after | {base[2]} / {fd_lo} / {fd_hi} (±{fd_pct:.1f}%) |")
md.append(f"| of which client connections (min / max) | {cl_lo} / {cl_hi} |")
md.append(f"| of which upstream connections, in use or pooled (min / max) | {up_lo} / {up_hi} |")
md.append(f"| fds beyond connections at t={base[0]} s / min / max after | {other[0]} / {other_lo} / {other_hi} (±{other_pct:.1f}%) |")
md.append(f"| fds before the load / after it, idle connections closed | {fds_before} / {fds_after} |")
md.append("\nChecks:\n")
for k, ok in checks.items():
    md.append(f"- {'ok' if ok else 'FAILED'}: {k}")
md.append("\nThe open fds follow the connections: the clients' (fixed) and the upstream pool's, which")
md.append("grows with the upstream's concurrency and closes connections idle for `upstream.idle_timeout`;")
md.append("a leak is what the connections do not explain, or what stays once they are gone.")
md.append("\nSamples (t s, RSS KiB, fds, client connections, upstream connections): " + "; ".join(f"{t},{r},{f},{c},{u}" for t, r, f, c, u in rows))
open(f"{out}.md", "w").write("\n".join(md) + "\n")
json.dump({"rate": rate, "saturation": sat, "seconds": secs, "clients": clients, "samples": rows,
           "fds_before": fds_before, "fds_after": fds_after, "checks": checks,
           "report": report}, open(f"{out}.json", "w"), indent=1)
print("\n".join(md))
sys.exit(0 if all(checks.values()) else 1)
PY
status=$?
echo "soak.sh: written $out.md and $out.json" >&2
exit $status
