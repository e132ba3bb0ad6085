#!/usr/bin/env bash
# Where slogate's CPU time goes under the peer benchmark's load: the same upstream, request
# and pinning as benches/peer.sh, slogate (--threads 1, access log to a file) under
# `perf record -e cpu-clock` (software event: works in VMs and containers without PMU).
#   benches/peer/profile.sh                   # 10 s profile, reports in benches/results/
#   DURATION=5 CONNECTIONS=50 ACCESS_LOG=off MODE=callgrind benches/peer/profile.sh
#   TARGET=nginx benches/peer/profile.sh      # the same for nginx (single process, for comparison)
#   TARGET=floor benches/peer/profile.sh      # the bare hyper forwarder (benches/floor): slogate's floor
# MODE=strace: system calls per request (strace -c), for slogate or nginx.
# CLOSE=1: every request on a new connection (as `benches/peer.sh conn`).
# UPSTREAM_CLIENT=hyper: slogate with hyper's upstream client (upstream.client).
# BENCH_SIZE=200k|5m: a large answer instead of the 2 KB one.
# MODE=perf (default) or callgrind (valgrind --tool=callgrind on a short run; ~50x slower,
# exact instruction counts; KEEP_DATA=1 keeps callgrind's file beside the report). The release profile has line tables, so symbols resolve.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
peer=$repo/benches/peer
DURATION=${DURATION:-10}; DURATION=${DURATION%s}
CONNECTIONS=${CONNECTIONS:-50}
ACCESS_LOG=${ACCESS_LOG:-file}
MODE=${MODE:-perf}
TARGET=${TARGET:-slogate}
RESULTS_DIR=${RESULTS_DIR:-$repo/benches/results}
die() { echo "profile.sh: $*" >&2; exit 1; }
case $TARGET in slogate|nginx|floor) ;; *) die "TARGET must be slogate, nginx or floor" ;; esac
# shellcheck source=benches/lib.sh
. "$repo/benches/lib.sh"
for t in nginx wrk curl python3 taskset; do command -v "$t" >/dev/null || die "$t is missing"; done
case $MODE in
  perf) command -v perf >/dev/null || die "perf is missing (linux-perf)" ;;
  callgrind) command -v valgrind >/dev/null || die "valgrind is missing" ;;
  strace) command -v strace >/dev/null || die "strace is missing" ;;
  *) die "MODE must be perf, callgrind or strace" ;;
esac
if [ "$TARGET" = nginx ]; then
  SLOGATE_BIN=none
elif [ "$TARGET" = floor ]; then
  SLOGATE_BIN=none
  resolve_floor_bin
else
  resolve_slogate_bin
fi
ncpu=$(nproc)
LOADGEN_CPU=${LOADGEN_CPU:-0}
PROXY_CPU=${PROXY_CPU:-$(( ncpu >= 2 ? 1 : 0 ))}

work=$(mktemp -d /tmp/slogate-profile.XXXXXX)
pids=()
cleanup() {
  # SIGINT: fast shutdown for both (slogate's SIGTERM would wait out its grace period).
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
render() {
  python3 - "$@" <<'PY'
import sys
text = open(sys.argv[1]).read()
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    if v.startswith("@"):
        v = open(v[1:]).read().strip()
    text = text.replace("{{%s}}" % k, v)
sys.stdout.write(text)
PY
}
wait_up() { for _ in $(seq 1 600); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; die "$1 did not come up"; }
as_root=""; [ "$(id -u)" = 0 ] && as_root="user root;"
up_port=$(free_port); port=$(free_port); admin=$(free_port)
# BENCH_SIZE=200k|5m: the answer is a generated GraphQL body of that size (as peer.sh SIZE=).
mkdir -p "$work/files"
if [ -n "${BENCH_SIZE:-}" ]; then
  python3 "$repo/benches/scaling/gen_bodies.py" "$work/files" "$peer/response.json" "$BENCH_SIZE" \
    || die "cannot generate the $BENCH_SIZE body"
fi
render "$peer/upstream.conf.template" PREFIX="$work" UPSTREAM_PORT="$up_port" FILES="$work/files" \
  RESPONSE_OK="@$peer/response.json" RESPONSE_ERRORS="@$peer/response-errors.json" >"$work/upstream.conf"
taskset -c "$LOADGEN_CPU" nginx -p "$work" -c "$work/upstream.conf" -e "$work/upstream-stderr.log" \
  -g "daemon off; master_process off; $as_root" &
pids+=($!)
target=$work/access.log; [ "$ACCESS_LOG" = off ] && target=off
render "$peer/slogate.yaml.template" PREFIX="$work" NAME=profile ACCESS_LOG="$target" \
  CLIENT="${UPSTREAM_CLIENT:-slogate}" >"$work/slogate.yaml"
nginx_log="$work/nginx-access.log json"; [ "$ACCESS_LOG" = off ] && nginx_log=off
render "$peer/nginx-proxy.conf.template" PREFIX="$work" PORT="$port" UPSTREAM_PORT="$up_port" \
  KEEPALIVE="$(( CONNECTIONS > 32 ? CONNECTIONS : 32 ))" ACCESS_LOG="$nginx_log" \
  NOFILE="$(ulimit -n)" WORKER_CONNECTIONS=4096 >"$work/nginx.conf"
# The process under test, as a command line (nginx as one process: master_process off).
if [ "$TARGET" = nginx ]; then
  cmd=(nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-stderr.log" -g "daemon off; master_process off; $as_root")
  ready="http://127.0.0.1:$port/"
elif [ "$TARGET" = floor ]; then
  cmd=("$FLOOR_BIN" "127.0.0.1:$port" "127.0.0.1:$up_port")
  ready="http://127.0.0.1:$port/"
else
  cmd=("$SLOGATE_BIN" run --config "$work/slogate.yaml" --upstream "127.0.0.1:$up_port"
       --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" --threads 1)
  ready="http://127.0.0.1:$admin/ready"
fi

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out=$RESULTS_DIR/profile-$TARGET-$MODE-$stamp.txt
close=(); [ "${CLOSE:-0}" = 1 ] && close=(-H 'Connection: close')
run_wrk() { BENCH_REQUEST="$peer/request.json" taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNECTIONS" -d"$1"s \
  "${close[@]}" --latency -s "$peer/graphql.lua" "http://127.0.0.1:$port/graphql" | grep -E 'Requests/sec|requests in|99%'; }

if [ "$MODE" = strace ]; then
  # System calls per request (strace -c: counts are exact, times are strace's, not real).
  SLOGATE_LOG=warn taskset -c "$PROXY_CPU" "${cmd[@]}" >"$work/target.out" 2>&1 &
  pids+=($!); sg=$!
  wait_up "$ready"
  run_wrk 2 >/dev/null
  strace -c -f -p "$sg" -o "$work/strace.txt" &
  st=$!
  sleep 0.5
  run_wrk "$DURATION" | tee "$work/wrk.txt"
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  {
    echo "# $TARGET system calls per request (strace -c -f): $DURATION s, $CONNECTIONS connections, access log $ACCESS_LOG, $(date -u)"
    cat "$work/wrk.txt"
    awk -v n="${reqs:-1}" '$1 ~ /^[0-9.]+$/ && NF >= 5 { c = $4; name = $NF; printf "%-16s %10d calls  %6.2f per request\n", name, c, c / n }' "$work/strace.txt" | sort -k4 -rn
  } >"$out"
  echo "profile.sh: written $out" >&2
  exit 0
fi

if [ "$MODE" = perf ]; then
  SLOGATE_LOG=warn taskset -c "$PROXY_CPU" "${cmd[@]}" >"$work/target.out" 2>&1 &
  pids+=($!); sg=$!
  wait_up "$ready"
  run_wrk 2 >/dev/null   # warm-up: document cache, connection pools
  # DWARF call graphs: the release build has no frame pointers; the self-time table
  # does not depend on them.
  perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$sg" -o "$work/perf.data" \
    -- sleep "$((DURATION + 1))" 2>"$work/perf-record.log" &
  perf_pid=$!
  sleep 0.5
  run_wrk "$DURATION" | tee "$work/wrk.txt"
  wait "$perf_pid" || true
  {
    echo "# $TARGET perf profile: $DURATION s, $CONNECTIONS connections, access log $ACCESS_LOG, $(date -u)"
    cat "$work/wrk.txt"
    echo; echo "## self time by symbol (perf report --no-children)"
    perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.5 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -60
    echo; echo "## self time by shared object"
    perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -15
    echo; echo "## inclusive time (children) by symbol, top 60"
    perf report -i "$work/perf.data" --children --sort symbol --stdio -g none --percent-limit 2 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -60
  } | sed -E 's/( +-)+ *$//; s/ +$//' >"$out"
else
  # callgrind: slow, so a short run at low concurrency; instructions, not time.
  SLOGATE_LOG=warn taskset -c "$PROXY_CPU" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "${cmd[@]}" >"$work/target.out" 2>&1 &
  pids+=($!); sg=$!
  wait_up "$ready"
  run_wrk 1 >/dev/null   # warm-up; callgrind counts from here are zeroed below
  callgrind_control --zero "$sg" >/dev/null 2>&1 || true
  run_wrk "$DURATION" | tee "$work/wrk.txt"
  kill -INT "$sg"; wait "$sg" 2>/dev/null || true
  # KEEP_DATA=1: keep the raw data beside the report (callgrind_annotate --tree=caller ...).
  if [ "${KEEP_DATA:-0}" = 1 ]; then cp "$work/callgrind.out" "${out%.txt}.callgrind"; fi
  {
    echo "# $TARGET callgrind profile (user-space instructions only): $DURATION s, $CONNECTIONS connections, access log $ACCESS_LOG, $(date -u)"
    cat "$work/wrk.txt"
    total=$(awk '/^summary:/ {s += $2} END {print s + 0}' "$work"/callgrind.out*)
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    echo "user-space instructions after the warm-up: $total for $reqs requests = $(( total / (reqs > 0 ? reqs : 1) )) per request"
    # The first rows of the exclusive list are thread/task entry points that callgrind_annotate
    # charges with inlined async code; the rows below them are true self costs.
    echo; echo "## exclusive instructions (top 60)"
    callgrind_annotate --inclusive=no --threshold=100 "$work"/callgrind.out* 2>/dev/null \
      | grep -E '^ *[0-9,]+ \(' | head -60 || true
    echo; echo "## inclusive instructions (top 60)"
    callgrind_annotate --inclusive=yes --threshold=100 "$work"/callgrind.out* 2>/dev/null \
      | grep -E '^ *[0-9,]+ \(' | head -60 || true
  } | sed -E 's/( +-)+ *$//; s/ +$//' >"$out"
fi
echo "profile.sh: written $out" >&2
