#!/usr/bin/env bash
# Scaling benchmark (issue #5): the peer benchmark (benches/peer.sh: direct vs nginx vs
# slogate against a fast in-memory upstream) extended with
#   saturation  closed-loop wrk -c50 (as peer.sh): each configuration's saturation req/s
#   openloop    open-loop constant rate (RATE_FRACTION of slogate's saturation, the same
#               rate for direct, nginx and slogate) with `slogate loadtest`: achieved req/s,
#               p50/p90/p99 from the *scheduled* send time (no coordinated omission)
#   idle        RSS with IDLE_CONNS idle keep-alive client connections (each did 1 request)
#   stream      peak RSS while a 100 MB GraphQL JSON response streams through, fast client
#               and slow client (curl --limit-rate)
#   sizes       2 KB / 200 KB / 5 MB GraphQL JSON responses: req/s, p99, CPU per request
#   ops         10 / 1000 / 100k random operation names (label guard, document cache):
#               req/s, CPU per request, slogate's RSS after the run
# CPU is utime+stime of the proxy's processes (nginx master + worker) from /proc/PID/stat.
# One table on stdout, benches/results/scaling-<date>.md and .json (machine, date, raw runs).
#
# Environment (all optional):
#   SECTIONS="saturation openloop sizes ops idle stream"   a subset runs only those
#   REPEAT=3              runs per measured point (the median is reported)
#   SAT_DURATION=6s SAT_CONNECTIONS=50       closed-loop saturation runs
#   RATE_FRACTION=0.75    open-loop rate = this x slogate's saturation (or RATE=N req/s)
#   OPEN_DURATION=8s
#   SIZES="2k 200k 5m" SIZE_DURATION=5s SIZE_CONNECTIONS=16
#   OPS="10 1000 100000" OPS_DURATION=6s OPS_CONNECTIONS=50 MAX_OPERATIONS=1000
#   IDLE_CONNS=10000      (capped by `ulimit -Hn`, with a warning)
#   STREAM_SLOW_RATE=25M  curl --limit-rate of the slow-client stream (0: skip it)
#   LOADGEN_CPU, UPSTREAM_CPU, PROXY_CPU, NICE, SLOGATE_BIN, RESULTS_DIR, KEEP=1   as peer.sh
# Takes about 8 minutes with the defaults on 2 cores (REPEAT=2: about 6).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
here=$repo/benches/scaling
peer=$repo/benches/peer
SECTIONS=${SECTIONS:-saturation openloop sizes ops idle stream}
REPEAT=${REPEAT:-3}
SAT_DURATION=${SAT_DURATION:-6s}; SAT_CONNECTIONS=${SAT_CONNECTIONS:-50}
RATE_FRACTION=${RATE_FRACTION:-0.75}; RATE=${RATE:-}
OPEN_DURATION=${OPEN_DURATION:-8s}
SIZES=${SIZES:-2k 200k 5m}; SIZE_DURATION=${SIZE_DURATION:-5s}; SIZE_CONNECTIONS=${SIZE_CONNECTIONS:-16}
OPS=${OPS:-10 1000 100000}; OPS_DURATION=${OPS_DURATION:-6s}; OPS_CONNECTIONS=${OPS_CONNECTIONS:-50}
MAX_OPERATIONS=${MAX_OPERATIONS:-1000}
IDLE_CONNS=${IDLE_CONNS:-10000}
STREAM_SLOW_RATE=${STREAM_SLOW_RATE:-25M}
RESULTS_DIR=${RESULTS_DIR:-$repo/benches/results}
for v in SAT_DURATION OPEN_DURATION SIZE_DURATION OPS_DURATION; do
  [[ ${!v} =~ ^[0-9]+$ ]] && printf -v "$v" '%ss' "${!v}"
  [[ ${!v} =~ ^[0-9]+s$ ]] || { echo "scaling.sh: $v must be whole seconds (e.g. 6s)" >&2; exit 2; }
done

log() { echo "scaling.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
. "$repo/benches/lib.sh"
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
for s in $SECTIONS; do
  case $s in saturation|openloop|sizes|ops|idle|stream) ;; *) die "unknown section '$s' in SECTIONS" ;; esac
done
for s in $SIZES; do case $s in 2k|200k|5m|100m) ;; *) die "SIZES: $s is not one of 2k 200k 5m 100m" ;; esac; done

# --- tools -------------------------------------------------------------------------------------
need=(nginx wrk curl python3 taskset ss)
missing() { local m=(); for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || m+=("$t"); done; echo "${m[*]}"; }
if [ -n "$(missing)" ]; then
  log "missing: $(missing); running scripts/setup.sh to install them"
  "$repo/scripts/setup.sh" || true
  [ -z "$(missing)" ] || die "still missing: $(missing) (install nginx wrk curl python3 util-linux iproute2)"
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 7))' || die "python3 >= 3.7 is needed"
resolve_slogate_bin
"$SLOGATE_BIN" loadtest --help >/dev/null 2>&1 || die "$SLOGATE_BIN has no 'loadtest' subcommand (too old?)"

# --- limits, pinning, priority -------------------------------------------------------------------
# 10k idle connections need 10k descriptors in the client and in the proxy (plus upstream
# connections and files): raise the soft limit to the hard one and cap IDLE_CONNS if needed.
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=1048576
want_fds=$(( IDLE_CONNS + 1024 ))
[ "$hard" -ge "$want_fds" ] || want_fds=$hard
ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$hard" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ $(( NOFILE - 512 )) -lt "$IDLE_CONNS" ]; then
  log "warning: ulimit -n is $NOFILE (hard $hard): IDLE_CONNS lowered from $IDLE_CONNS to $(( NOFILE - 512 ))"
  IDLE_CONNS=$(( NOFILE - 512 ))
fi
# nginx closes idle keep-alive connections once fewer than 1/16 of worker_connections are
# free (ngx_drain_connections): leave it a quarter spare so none are reclaimed.
WORKER_CONNECTIONS=$(( IDLE_CONNS * 5 / 4 + 512 ))
[ "$WORKER_CONNECTIONS" -le "$NOFILE" ] || WORKER_CONNECTIONS=$NOFILE
pick_cpus
on_loadgen=("${prio[@]}" taskset -c "$LOADGEN_CPU")
on_proxy=("${prio[@]}" taskset -c "$PROXY_CPU")
HZ=$(getconf CLK_TCK)
export LOAD_AT_START; LOAD_AT_START=$(cut -d" " -f1-3 /proc/loadavg)

# --- processes -------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/slogate-scaling.XXXXXX)
pids=()      # every long-running process we started
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # SIGINT: fast shutdown (slogate's SIGTERM would wait out its grace period; nginx's
  # SIGINT is its fast shutdown too). Helpers (idle client, RSS sampler) get SIGTERM.
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then log "kept $work (logs, configs, raw outputs)"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

render() { python3 "$here/lib.py" render "$@"; }
wait_up() { # url what pid
  for _ in $(seq 1 200); do
    curl -fs -o /dev/null "$1" && return 0
    kill -0 "$3" 2>/dev/null || die "$2 exited at start; see $work"
    sleep 0.1
  done
  die "$2 did not come up ($1); logs in $work"
}
stop() { # pid...: SIGINT, wait, forget
  local p q keep
  for p in "$@"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "$@"; do
    wait "$p" 2>/dev/null || true
    keep=(); for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done; pids=("${keep[@]}")
  done
}
as_root=""; [ "$(id -u)" = 0 ] && as_root="user root;"

# Bodies: the peer's 2 KB response and the large GraphQL JSON responses.
files=$work/files
want_sizes="$SIZES"; want stream && want_sizes="$want_sizes 100m"
gen=(); for s in $want_sizes; do [ "$s" = 2k ] || gen+=("$s"); done
log "generating response bodies (${gen[*]:-2k only}) in $files"
python3 "$here/gen_bodies.py" "$files" "$peer/response.json" "${gen[@]}" || die "cannot generate the bodies"

# The upstream: one nginx process on the load generator's core (as peer.sh).
up_port=$(free_port)
render "$here/upstream.conf.template" PREFIX="$work" UPSTREAM_PORT="$up_port" FILES="$files" \
  RESPONSE_OK="@$peer/response.json" >"$work/upstream.conf"
"${prio[@]}" taskset -c "$UPSTREAM_CPU" nginx -p "$work" -c "$work/upstream.conf" -e "$work/upstream-stderr.log" \
  -g "daemon off; master_process off; $as_root" &
up_pid=$!; pids+=("$up_pid")
wait_up "http://127.0.0.1:$up_port/" "upstream nginx" "$up_pid"

# start_nginx NAME -> sets NG_PID (master), NG_WORKER, NG_PORT
start_nginx() {
  NG_PORT=$(free_port)
  local keepalive=$(( SAT_CONNECTIONS > 64 ? SAT_CONNECTIONS : 64 ))
  render "$here/nginx-proxy.conf.template" PREFIX="$work/ng-$1" PORT="$NG_PORT" UPSTREAM_PORT="$up_port" \
    KEEPALIVE="$keepalive" ACCESS_LOG="$work/ng-$1/access.log json" NOFILE="$NOFILE" \
    WORKER_CONNECTIONS="$WORKER_CONNECTIONS" >"$work/nginx-$1.conf"
  mkdir -p "$work/ng-$1"
  "${on_proxy[@]}" nginx -p "$work/ng-$1" -c "$work/nginx-$1.conf" -e "$work/ng-$1/stderr.log" \
    -g "daemon off; $as_root" &
  NG_PID=$!; pids+=("$NG_PID")
  wait_up "http://127.0.0.1:$NG_PORT/" "nginx ($1)" "$NG_PID"
  NG_WORKER=$(ps -o pid= --ppid "$NG_PID" | tr -d ' ' | head -1)
  [ -n "$NG_WORKER" ] || die "nginx ($1) has no worker process"
}
# start_slogate NAME [MAX_OPERATIONS] -> sets SG_PID, SG_PORT, SG_ADMIN
start_slogate() {
  SG_PORT=$(free_port); SG_ADMIN=$(free_port)
  render "$here/slogate.yaml.template" PREFIX="$work" NAME="$1" ACCESS_LOG="$work/slogate-$1-access.log" \
    MAX_OPERATIONS="${2:-$MAX_OPERATIONS}" >"$work/slogate-$1.yaml"
  "$SLOGATE_BIN" check --config "$work/slogate-$1.yaml" >/dev/null 2>"$work/slogate-$1.check" \
    || die "slogate rejects $work/slogate-$1.yaml: $(cat "$work/slogate-$1.check")"
  SLOGATE_LOG=warn "${on_proxy[@]}" "$SLOGATE_BIN" run --config "$work/slogate-$1.yaml" \
    --upstream "127.0.0.1:$up_port" --listen "127.0.0.1:$SG_PORT" --admin "127.0.0.1:$SG_ADMIN" \
    --threads 1 >"$work/slogate-$1.stdout" 2>"$work/slogate-$1.stderr" &
  SG_PID=$!; pids+=("$SG_PID")
  wait_up "http://127.0.0.1:$SG_ADMIN/ready" "slogate ($1)" "$SG_PID"
}

cpu_ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done; echo "$t"; }
mem() { python3 "$here/lib.py" mem "$@"; }
scrape() { curl -fs "http://127.0.0.1:$1/metrics" >"$2" || die "cannot scrape :$1/metrics"; }
# Sanity: a POST through PORT answers 200 with SIZE's body length.
probe() { # port size what
  local expect got
  expect=$(wc -c <"$files/body-$2.json")
  got=$(curl -fs -X POST -H 'Content-Type: application/json' -H "X-Bench-Size: $2" \
    --data-binary "@$peer/request.json" -o /dev/null -w '%{http_code} %{size_download}' \
    "http://127.0.0.1:$1/graphql") || die "probe of $3 (:$1, $2) failed"
  [ "$got" = "200 $expect" ] || die "probe of $3 (:$1, $2) answered '$got', expected '200 $expect'"
}

runs=$work/runs.jsonl; : >"$runs"
show() { tail -1 "$runs" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
cpu = r["cpu_seconds"] / r["requests"] * 1e5 if r.get("requests") else 0
print("  %-10s %-12s %-8s r%d %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  cpu %5.2fs (%6.2f s/100k)  errors %s" % (
    r["section"], r["label"], r["config"], r["round"], r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3,
    r["cpu_seconds"], cpu, r["errors_total"]))' >&2; }

# wrk_point SECTION CONFIG LABEL ROUND DURATION CONNECTIONS PORT "PIDS" ADMIN [ENV=VALUE...]
# ADMIN: slogate's admin port (metrics scraped before/after) or "-".
wrk_point() {
  local section=$1 cfg=$2 label=$3 round=$4 dur=$5 conns=$6 port=$7 ppids=$8 admin=$9
  shift 9
  local out=$work/wrk-$section-$label-$cfg-$round.txt before after ub ua extra=""
  [ "$admin" != - ] && scrape "$admin" "$out.m0"
  # shellcheck disable=SC2086
  before=$(cpu_ticks $ppids); ub=$(cpu_ticks "$up_pid")
  env BENCH_REQUEST="$peer/request.json" "$@" "${on_loadgen[@]}" \
    wrk -t1 -c"$conns" -d"$dur" --latency -s "$peer/graphql.lua" "http://127.0.0.1:$port/graphql" \
    >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  # shellcheck disable=SC2086
  after=$(cpu_ticks $ppids); ua=$(cpu_ticks "$up_pid")
  if [ "$admin" != - ]; then
    sleep 0.2; scrape "$admin" "$out.m1"
    extra=$(python3 -c '
import json, sys
sys.path.insert(0, sys.argv[1])
from lib import metrics_summary
a, b = metrics_summary(sys.argv[2]), metrics_summary(sys.argv[3])
d = {k: b["outcomes"].get(k, 0) - a["outcomes"].get(k, 0) for k in set(a["outcomes"]) | set(b["outcomes"])}
print(json.dumps({"slogate_counted": b["requests"] - a["requests"], "slogate_outcomes": {k: v for k, v in d.items() if v},
                  "labels_after": b["labels"], "other_counted": b["other"] - a["other"],
                  "inspection_limited": b["inspection_limited"] - a["inspection_limited"],
                  "access_log_dropped": b["access_log_dropped"] - a["access_log_dropped"]}))' "$here" "$out.m0" "$out.m1")
  fi
  python3 "$here/lib.py" record wrk "$out" "$section" "$cfg" "$label" "$round" "$((after - before))" "$HZ" \
    "$((ua - ub))" "$extra" >>"$runs"
  show
}

# Saturation and open-loop share one nginx and one slogate ("main").
port_of() { case $1 in direct) echo "$up_port" ;; nginx) echo "$NG_PORT" ;; slogate) echo "$SG_PORT" ;; esac; }
pids_of() { case $1 in direct) echo "$up_pid" ;; nginx) echo "$NG_PID $NG_WORKER" ;; slogate) echo "$SG_PID" ;; esac; }
admin_of() { case $1 in slogate) echo "$SG_ADMIN" ;; *) echo - ;; esac; }
configs=(direct nginx slogate)
rotate() { # round i -> the config at position i in this round's rotation
  echo "${configs[$(( ($2 + $1 - 1) % ${#configs[@]} ))]}"
}
log "pinning: load generator on CPU $LOADGEN_CPU, upstream on CPU $UPSTREAM_CPU, proxies on CPU $PROXY_CPU (nproc $ncpu), nice $NICE; ulimit -n $NOFILE"
log "sections: $SECTIONS; $REPEAT runs per point (median)"
median_rps() { # section label config
  python3 - "$runs" "$@" <<'PY'
import json, statistics, sys
f, section, label, config = sys.argv[1:]
xs = [r["rps"] for r in map(json.loads, open(f)) if r["section"] == section and r["label"] == label
      and r["config"] == config and r["round"] > 0]
print(round(statistics.median(xs)) if xs else 0)
PY
}

main_up=0
if want saturation || want openloop || want sizes; then
  start_nginx main; start_slogate main; main_up=1
  for cfg in "${configs[@]}"; do probe "$(port_of "$cfg")" 2k "$cfg"; done
fi

# --- 1. saturation (closed loop) -------------------------------------------------------------
if want saturation; then
  log "saturation: wrk -c$SAT_CONNECTIONS, $SAT_DURATION per run (1 s warm-up each first)"
  for cfg in "${configs[@]}"; do
    wrk_point saturation "$cfg" c"$SAT_CONNECTIONS" 0 1s "$SAT_CONNECTIONS" "$(port_of "$cfg")" "$(pids_of "$cfg")" "$(admin_of "$cfg")"
  done
  for ((round = 1; round <= REPEAT; round++)); do
    for i in 0 1 2; do
      cfg=$(rotate "$round" "$i")
      wrk_point saturation "$cfg" c"$SAT_CONNECTIONS" "$round" "$SAT_DURATION" "$SAT_CONNECTIONS" \
        "$(port_of "$cfg")" "$(pids_of "$cfg")" "$(admin_of "$cfg")"
    done
  done
fi

# --- 2. open loop at a fixed rate --------------------------------------------------------------
if want openloop; then
  if [ -z "$RATE" ]; then
    sat=$(median_rps saturation c"$SAT_CONNECTIONS" slogate)
    [ "$sat" -gt 0 ] || die "openloop needs RATE=N or the saturation section"
    RATE=$(python3 -c "print(max(100, int(round($sat * $RATE_FRACTION / 100.0)) * 100))")
    log "open loop: $RATE req/s = ${RATE_FRACTION} x slogate's saturation ($sat req/s), rounded to 100"
  fi
  python3 "$here/lib.py" scenario "$peer/request.json" >"$work/loadtest-scenario.yaml"
  # loadtest_point CONFIG ROUND DURATION
  loadtest_point() {
    local cfg=$1 round=$2 dur=$3 out=$work/loadtest-$1-$2.json before after ub ua
    local ppids; ppids=$(pids_of "$cfg")
    # shellcheck disable=SC2086
    before=$(cpu_ticks $ppids); ub=$(cpu_ticks "$up_pid")
    "${on_loadgen[@]}" "$SLOGATE_BIN" loadtest --scenario "$work/loadtest-scenario.yaml" \
      --target "http://127.0.0.1:$(port_of "$cfg")" --rate "$RATE" --duration "$dur" --json --quiet \
      >"$out" 2>"$out.stderr" || die "slogate loadtest against $cfg failed: $(tail -5 "$out.stderr")"
    # shellcheck disable=SC2086
    after=$(cpu_ticks $ppids); ua=$(cpu_ticks "$up_pid")
    python3 "$here/lib.py" record loadtest "$out" openloop "$cfg" "r$RATE" "$round" "$((after - before))" "$HZ" \
      "$((ua - ub))" "{\"target_rate\": $RATE}" >>"$runs"
    show
  }
  log "open loop: slogate loadtest --rate $RATE, $OPEN_DURATION per run"
  for cfg in "${configs[@]}"; do loadtest_point "$cfg" 0 1s; done
  for ((round = 1; round <= REPEAT; round++)); do
    for i in 0 1 2; do loadtest_point "$(rotate "$round" "$i")" "$round" "$OPEN_DURATION"; done
  done
fi

# --- 4. response sizes -------------------------------------------------------------------------
if want sizes; then
  log "sizes: $SIZES, wrk -c$SIZE_CONNECTIONS, $SIZE_DURATION per run"
  for size in $SIZES; do
    for cfg in "${configs[@]}"; do probe "$(port_of "$cfg")" "$size" "$cfg"; done
    for cfg in "${configs[@]}"; do
      wrk_point sizes "$cfg" "$size" 0 1s "$SIZE_CONNECTIONS" "$(port_of "$cfg")" "$(pids_of "$cfg")" \
        "$(admin_of "$cfg")" BENCH_SIZE="$size"
    done
    for ((round = 1; round <= REPEAT; round++)); do
      for i in 0 1 2; do
        cfg=$(rotate "$round" "$i")
        wrk_point sizes "$cfg" "$size" "$round" "$SIZE_DURATION" "$SIZE_CONNECTIONS" "$(port_of "$cfg")" \
          "$(pids_of "$cfg")" "$(admin_of "$cfg")" BENCH_SIZE="$size"
      done
    done
  done
fi
if [ "$main_up" = 1 ]; then
  echo "{\"section\": \"memory\", \"label\": \"after-throughput-sections\", \"config\": \"nginx\", \"mem\": $(mem "$NG_PID" "$NG_WORKER")}" >>"$runs"
  echo "{\"section\": \"memory\", \"label\": \"after-throughput-sections\", \"config\": \"slogate\", \"mem\": $(mem "$SG_PID")}" >>"$runs"
  stop "$SG_PID" "$NG_PID"
fi

# --- 5. distinct operations ------------------------------------------------------------------
if want ops; then
  log "ops: ${OPS// /, } random operation names, wrk -c$OPS_CONNECTIONS, $OPS_DURATION per run; a fresh proxy per point"
  for n in $OPS; do
    start_slogate "ops$n"
    m0=$(mem "$SG_PID")
    for ((round = 1; round <= REPEAT; round++)); do
      wrk_point ops slogate "$n" "$round" "$OPS_DURATION" "$OPS_CONNECTIONS" "$SG_PORT" "$SG_PID" "$SG_ADMIN" BENCH_OPS="$n"
    done
    sleep 0.5
    echo "{\"section\": \"memory\", \"label\": \"ops-$n\", \"config\": \"slogate\", \"mem_before\": $m0, \"mem\": $(mem "$SG_PID")}" >>"$runs"
    stop "$SG_PID"
  done
  nmax=${OPS##* }
  start_nginx ops
  m0=$(mem "$NG_PID" "$NG_WORKER")
  for ((round = 1; round <= REPEAT; round++)); do
    wrk_point ops nginx "$nmax" "$round" "$OPS_DURATION" "$OPS_CONNECTIONS" "$NG_PORT" "$NG_PID $NG_WORKER" - BENCH_OPS="$nmax"
  done
  echo "{\"section\": \"memory\", \"label\": \"ops-$nmax\", \"config\": \"nginx\", \"mem_before\": $m0, \"mem\": $(mem "$NG_PID" "$NG_WORKER")}" >>"$runs"
  stop "$NG_PID"
fi

# --- 3a. idle keep-alive connections ---------------------------------------------------------------
if want idle; then
  log "idle: $IDLE_CONNS keep-alive connections, one request each, then held idle; a fresh proxy each"
  idle_point() { # config port "pids"
    local cfg=$1 port=$2 ppids=$3 m0 m1 m2 established line opened failed
    # shellcheck disable=SC2086
    m0=$(mem $ppids)
    coproc IDLE { exec "${on_loadgen[@]}" python3 "$here/idle_conns.py" 127.0.0.1 "$port" "$IDLE_CONNS" "$peer/request.json" 2>"$work/idle-$cfg.stderr"; }
    local ipid=$IDLE_PID; pids+=("$ipid")
    read -r -t 180 line <&"${IDLE[0]}" || die "the idle client did not get ready against $cfg: $(cat "$work/idle-$cfg.stderr")"
    read -r _ opened failed <<<"$line"
    sleep 2   # let the proxy settle (timers, buffers released)
    # shellcheck disable=SC2086
    m1=$(mem $ppids)
    established=$(ss -Htn state established "( sport = :$port )" | wc -l)
    echo >&"${IDLE[1]}"
    read -r -t 60 line <&"${IDLE[0]}" || true
    wait "$ipid" 2>/dev/null || true
    stop "$ipid"
    sleep 1
    # shellcheck disable=SC2086
    m2=$(mem $ppids)
    echo "{\"section\": \"idle\", \"config\": \"$cfg\", \"label\": \"idle$IDLE_CONNS\", \"connections\": $IDLE_CONNS, \"opened\": $opened, \"failed\": $failed, \"established\": $established, \"mem_before\": $m0, \"mem\": $m1, \"mem_after_close\": $m2}" >>"$runs"
    log "  idle $cfg: $opened open ($failed failed, $established established at the proxy): RSS $(python3 -c "import json;a,b=json.loads('$m0'),json.loads('$m1');print('%d -> %d kB (PSS %s -> %s kB)' % (a['rss_kb'], b['rss_kb'], a['pss_kb'], b['pss_kb']))")"
    [ "$opened" -ge $(( IDLE_CONNS * 99 / 100 )) ] || die "only $opened of $IDLE_CONNS idle connections opened to $cfg: $(cat "$work/idle-$cfg.stderr")"
  }
  start_nginx idle; idle_point nginx "$NG_PORT" "$NG_PID $NG_WORKER"; stop "$NG_PID"
  start_slogate idle; idle_point slogate "$SG_PORT" "$SG_PID"; stop "$SG_PID"
fi

# --- 3b. 100 MB streamed response ---------------------------------------------------------------
if want stream; then
  log "stream: 100 MB GraphQL JSON response through each proxy, curl to /dev/null; peak RSS (VmHWM reset, and sampled every 5 ms)"
  stream_point() { # config port "pids" admin client(fast|slow)
    local cfg=$1 port=$2 ppids=$3 admin=$4 client=$5 p m0 m1 before after out=$work/stream-$1-$5 limit=() extra=""
    [ "$client" = slow ] && limit=(--limit-rate "$STREAM_SLOW_RATE")
    [ "$admin" != - ] && scrape "$admin" "$out.m0"
    # shellcheck disable=SC2086
    m0=$(mem $ppids)
    for p in $ppids; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done   # reset VmHWM
    # shellcheck disable=SC2086
    before=$(cpu_ticks $ppids)
    # shellcheck disable=SC2086
    "${on_loadgen[@]}" python3 "$here/lib.py" sample-rss "$out.peak" 5 $ppids &
    local sampler=$!; pids+=("$sampler")
    for _ in $(seq 1 100); do [ -s "$out.peak" ] && break; sleep 0.05; done
    [ -s "$out.peak" ] || die "the RSS sampler did not start (stream $cfg $client)"
    "${on_loadgen[@]}" curl -fsS -X POST -H 'Content-Type: application/json' -H 'X-Bench-Size: 100m' \
      --data-binary "@$peer/request.json" "${limit[@]}" -o /dev/null \
      -w '{"http_code": %{http_code}, "bytes": %{size_download}, "seconds": %{time_total}, "first_byte_s": %{time_starttransfer}}' \
      "http://127.0.0.1:$port/graphql" >"$out.curl" 2>"$out.curl.err" || die "streaming 100 MB through $cfg failed: $(cat "$out.curl.err")"
    # shellcheck disable=SC2086
    after=$(cpu_ticks $ppids)
    kill -TERM "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; stop "$sampler"
    # shellcheck disable=SC2086
    m1=$(mem $ppids)
    if [ "$admin" != - ]; then
      sleep 0.3; scrape "$admin" "$out.m1"
      extra=$(python3 -c '
import json, sys
sys.path.insert(0, sys.argv[1])
from lib import metrics_summary
a, b = metrics_summary(sys.argv[2]), metrics_summary(sys.argv[3])
print(json.dumps({"slogate_outcomes": {k: v - a["outcomes"].get(k, 0) for k, v in b["outcomes"].items() if v - a["outcomes"].get(k, 0)},
                  "inspection_limited": b["inspection_limited"] - a["inspection_limited"]}))' "$here" "$out.m0" "$out.m1")
    fi
    echo "{\"section\": \"stream\", \"config\": \"$cfg\", \"label\": \"$client\", \"limit_rate\": \"${limit[1]:-}\", \"curl\": $(cat "$out.curl"), \"mem_before\": $m0, \"mem\": $m1, \"sampled_peak\": $(cat "$out.peak"), \"cpu_seconds\": $(python3 -c "print(($after - $before) / $HZ)")${extra:+, \"metrics\": $extra}}" >>"$runs"
    python3 - "$runs" <<'PY' >&2
import json, sys
r = json.loads(open(sys.argv[1]).readlines()[-1])
c = r["curl"]
print("  stream     %-5s %-8s %6.2f s  %7.1f MB/s  RSS %6.1f -> peak %6.1f MB (sampled %6.1f)  cpu %.2fs" % (
    r["label"], r["config"], c["seconds"], c["bytes"] / c["seconds"] / 1e6, r["mem_before"]["rss_kb"] / 1024,
    r["mem"]["hwm_kb"] / 1024, r["sampled_peak"]["max_kb"] / 1024, r["cpu_seconds"]))
PY
    [ "$(python3 -c "import json;print(json.load(open('$out.curl'))['bytes'])")" = "$(wc -c <"$files/body-100m.json")" ] \
      || die "stream through $cfg: wrong size $(cat "$out.curl")"
  }
  clients=(fast); [ "$STREAM_SLOW_RATE" != 0 ] && clients+=(slow)
  for client in "${clients[@]}"; do stream_point direct "$up_port" "$up_pid" - "$client"; done
  for client in "${clients[@]}"; do
    # A fresh proxy per point: the peak is the transfer's, not left over from earlier load.
    start_nginx "stream-$client"; probe "$NG_PORT" 2k nginx
    stream_point nginx "$NG_PORT" "$NG_PID $NG_WORKER" - "$client"; stop "$NG_PID"
    start_slogate "stream-$client"; probe "$SG_PORT" 2k slogate
    stream_point slogate "$SG_PORT" "$SG_PID" "$SG_ADMIN" "$client"; stop "$SG_PID"
  done
fi

# --- report ------------------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
git_rev=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(cd "$repo" && git status --porcelain 2>/dev/null | grep -q . && echo "+dirty" || true)
export DATE_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ) NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //') \
  WRK_VERSION=$(wrk --version 2>&1 | head -1 | awk '{print $2}' || true) \
  SLOGATE_VERSION=$("$SLOGATE_BIN" --version 2>/dev/null || echo unknown) GIT_REV=$git_rev$git_dirty \
  SECTIONS REPEAT SAT_DURATION SAT_CONNECTIONS RATE RATE_FRACTION OPEN_DURATION SIZES SIZE_DURATION \
  SIZE_CONNECTIONS OPS OPS_DURATION OPS_CONNECTIONS MAX_OPERATIONS IDLE_CONNS STREAM_SLOW_RATE NICE \
  LOADGEN_CPU UPSTREAM_CPU PROXY_CPU NOFILE WORKER_CONNECTIONS
python3 "$here/report.py" "$runs" "$RESULTS_DIR/scaling-$stamp" "$files"
