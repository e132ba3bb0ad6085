#!/usr/bin/env bash
# Where slogate's time (perf), instructions (callgrind) or memory (massif) go under the
# scaling benchmark's workloads; the same upstream, bodies, configuration and pinning as
# benches/scaling.sh. Reports go to benches/results/profile-scaling-<workload>-<mode>-<date>.txt
# with a summary grouped by component (kernel, malloc, slogate's own code, pingora, tokio...).
#   benches/scaling/profile.sh                           # perf, WORKLOAD=size5m, 8 s
#   WORKLOAD=ops100k benches/scaling/profile.sh          # 100k random operation names
#   WORKLOAD=base MODE=callgrind benches/scaling/profile.sh   # instructions per request
#   WORKLOAD=idle MODE=massif IDLE_CONNS=2000 benches/scaling/profile.sh  # heap per idle connection
#   TARGET=nginx WORKLOAD=size5m benches/scaling/profile.sh   # the same load on nginx (perf)
# WORKLOAD: base (2 KB response, 1 operation), size200k, size5m, ops100k, idle (massif only)
# MODE: perf (cpu-clock, DWARF call graphs) | callgrind | massif
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/benches/scaling
peer=$repo/benches/peer
WORKLOAD=${WORKLOAD:-size5m}
MODE=${MODE:-perf}
TARGET=${TARGET:-slogate}
DURATION=${DURATION:-8}; DURATION=${DURATION%s}
IDLE_CONNS=${IDLE_CONNS:-2000}
RESULTS_DIR=${RESULTS_DIR:-$repo/benches/results}
die() { echo "profile.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
. "$repo/benches/lib.sh"
case $WORKLOAD in
  base) wenv=(); conns=${CONNECTIONS:-50} ;;
  size200k) wenv=(BENCH_SIZE=200k); conns=${CONNECTIONS:-16} ;;
  size5m) wenv=(BENCH_SIZE=5m); conns=${CONNECTIONS:-16} ;;
  ops100k) wenv=(BENCH_OPS=100000); conns=${CONNECTIONS:-50} ;;
  idle) [ "$MODE" = massif ] || die "WORKLOAD=idle needs MODE=massif"; wenv=(); conns=1 ;;
  *) die "WORKLOAD must be base, size200k, size5m, ops100k or idle" ;;
esac
case $TARGET in slogate|nginx) ;; *) die "TARGET must be slogate or nginx" ;; esac
[ "$TARGET" = nginx ] && [ "$MODE" != perf ] && die "TARGET=nginx is perf only"
for t in nginx wrk curl python3 taskset; do command -v "$t" >/dev/null || die "$t is missing"; done
case $MODE in
  perf) command -v perf >/dev/null || die "perf is missing (linux-perf)" ;;
  callgrind) command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || die "valgrind is missing" ;;
  massif) command -v valgrind >/dev/null && command -v ms_print >/dev/null && command -v vgdb >/dev/null || die "valgrind (massif, vgdb, ms_print) is missing" ;;
  *) die "MODE must be perf, callgrind or massif" ;;
esac
[ "$TARGET" = slogate ] && resolve_slogate_bin
ncpu=$(nproc)
LOADGEN_CPU=${LOADGEN_CPU:-0}
PROXY_CPU=${PROXY_CPU:-$(( ncpu >= 2 ? 1 : 0 ))}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d /tmp/slogate-scaling-profile.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then echo "profile.sh: kept $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
render() { python3 "$here/lib.py" render "$@"; }
wait_up() { for _ in $(seq 1 900); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; die "$1 did not come up"; }
as_root=""; [ "$(id -u)" = 0 ] && as_root="user root;"

files=$work/files
case $WORKLOAD in size200k) gen=(200k) ;; size5m) gen=(5m) ;; *) gen=() ;; esac
python3 "$here/gen_bodies.py" "$files" "$peer/response.json" "${gen[@]}"
up_port=$(free_port); port=$(free_port); admin=$(free_port)
render "$here/upstream.conf.template" PREFIX="$work" UPSTREAM_PORT="$up_port" FILES="$files" \
  RESPONSE_OK="@$peer/response.json" >"$work/upstream.conf"
taskset -c "$LOADGEN_CPU" nginx -p "$work" -c "$work/upstream.conf" -e "$work/upstream-stderr.log" \
  -g "daemon off; master_process off; $as_root" &
pids+=($!)
render "$here/slogate.yaml.template" PREFIX="$work" NAME=profile ACCESS_LOG="$work/access.log" \
  MAX_OPERATIONS=1000 >"$work/slogate.yaml"
render "$here/nginx-proxy.conf.template" PREFIX="$work" PORT="$port" UPSTREAM_PORT="$up_port" \
  KEEPALIVE=64 ACCESS_LOG="$work/nginx-access.log json" NOFILE="$(ulimit -n)" WORKER_CONNECTIONS=4096 >"$work/nginx.conf"
if [ "$TARGET" = nginx ]; then
  cmd=(nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-stderr.log" -g "daemon off; master_process off; $as_root")
  ready="http://127.0.0.1:$port/"
else
  cmd=("$SLOGATE_BIN" run --config "$work/slogate.yaml" --upstream "127.0.0.1:$up_port"
       --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" --threads 1)
  ready="http://127.0.0.1:$admin/ready"
fi

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
name=profile-scaling-$WORKLOAD-$MODE; [ "$TARGET" = nginx ] && name=profile-scaling-nginx-$WORKLOAD-$MODE
out=$RESULTS_DIR/$name-$stamp.txt
run_wrk() { env BENCH_REQUEST="$peer/request.json" "${wenv[@]}" taskset -c "$LOADGEN_CPU" wrk -t1 -c"$conns" \
  -d"$1"s --latency -s "$peer/graphql.lua" "http://127.0.0.1:$port/graphql" | grep -E 'Requests/sec|requests in|99%'; }
header() { echo "# $TARGET $MODE profile, workload $WORKLOAD: $DURATION s, wrk -c$conns, $(date -u), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"; }

if [ "$MODE" = perf ]; then
  SLOGATE_LOG=warn taskset -c "$PROXY_CPU" "${cmd[@]}" >"$work/target.out" 2>&1 &
  pids+=($!); sg=$!
  wait_up "$ready"
  run_wrk 2 >/dev/null   # warm-up: document cache, connection pools
  perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$sg" -o "$work/perf.data" \
    -- sleep "$((DURATION + 1))" 2>"$work/perf-record.log" &
  perf_pid=$!
  sleep 0.5
  run_wrk "$DURATION" | tee "$work/wrk.txt"
  wait "$perf_pid" || true
  perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0 2>/dev/null \
    | grep -v '^#' | grep -v '^$' >"$work/self.txt"
  {
    set +e +o pipefail   # head closes pipes early: SIGPIPE is fine here
    header
    cat "$work/wrk.txt"
    echo; echo "## self time grouped by component (perf report --no-children --sort dso,symbol)"
    python3 "$here/group_profile.py" perf "$work/self.txt"
    echo; echo "## self time by symbol (top 50)"
    head -50 "$work/self.txt"
    echo; echo "## inclusive time (children) of slogate's own functions (top 30)"
    perf report -i "$work/perf.data" --children --sort symbol --stdio -g none --percent-limit 0.3 2>/dev/null \
      | grep -v '^#' | grep -E 'slogate_|SlogateProxy as|slogate::' | grep -v '(inlined)' | head -30
    echo; echo "## inclusive time (children) by symbol, top 40"
    perf report -i "$work/perf.data" --children --sort symbol --stdio -g none --percent-limit 3 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | grep -v '(inlined)' | head -40
  } | sed -E 's/( +-)+ *$//; s/ +$//' >"$out"
elif [ "$MODE" = callgrind ]; then
  SLOGATE_LOG=warn taskset -c "$PROXY_CPU" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "${cmd[@]}" >"$work/target.out" 2>&1 &
  pids+=($!); sg=$!
  wait_up "$ready"
  run_wrk 1 >/dev/null
  callgrind_control --zero "$sg" >/dev/null 2>&1 || true
  run_wrk "$DURATION" | tee "$work/wrk.txt"
  kill -INT "$sg"; wait "$sg" 2>/dev/null || true
  callgrind_annotate --inclusive=yes --threshold=100 "$work"/callgrind.out* 2>/dev/null | grep -E '^ *[0-9,]+ \(' >"$work/incl.txt"
  {
    set +e +o pipefail   # head closes pipes early: SIGPIPE is fine here
    header
    cat "$work/wrk.txt"
    total=$(awk '/^summary:/ {s += $2} END {print s + 0}' "$work"/callgrind.out*)
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    echo "user-space instructions after the warm-up: $total for $reqs requests = $(( total / (reqs > 0 ? reqs : 1) )) per request"
    echo; echo "## exclusive instructions grouped by component"
    python3 "$here/group_profile.py" callgrind-raw "$work"/callgrind.out*
    echo; echo "## inclusive instructions of slogate's hooks and own functions (top 40)"
    grep -E 'slogate_|SlogateProxy|slogate::' "$work/incl.txt" | grep -E '\[[^]]+\] *$' | grep -v 'core::ops::function' | sed -E 's/ \[[^]]+\] *$//' | head -40
    echo; echo "## exclusive instructions by function (top 50, from the raw callgrind.out)"
    python3 "$here/group_profile.py" callgrind-raw "$work"/callgrind.out* --top 50
  } | sed -E 's/( +-)+ *$//; s/ +$//' >"$out"
else
  # massif: heap snapshot with IDLE_CONNS idle keep-alive connections open.
  SLOGATE_LOG=warn taskset -c "$PROXY_CPU" valgrind --tool=massif --vgdb=yes --massif-out-file="$work/massif.out" \
    --depth=40 --threshold=0.5 "${cmd[@]}" >"$work/target.out" 2>&1 &
  pids+=($!); sg=$!
  wait_up "$ready"
  vgdb --pid="$sg" detailed_snapshot "$work/massif-before.out" >/dev/null
  coproc IDLE { exec taskset -c "$LOADGEN_CPU" python3 "$here/idle_conns.py" 127.0.0.1 "$port" "$IDLE_CONNS" "$peer/request.json" 50; }
  ipid=$IDLE_PID; pids+=("$ipid")
  read -r -t 600 line <&"${IDLE[0]}" || die "the idle client did not get ready"
  sleep 2
  vgdb --pid="$sg" detailed_snapshot "$work/massif-idle.out" >/dev/null
  rss=$(awk '/VmRSS/ {print $2}' /proc/"$sg"/status)
  echo >&"${IDLE[1]}"; wait "$ipid" 2>/dev/null || true
  {
    set +e +o pipefail   # head closes pipes early: SIGPIPE is fine here
    header
    echo "$line idle connections (opened, failed); process RSS under valgrind ${rss} kB"
    echo; echo "## heap before the connections"
    ms_print "$work/massif-before.out" 2>/dev/null | grep -E '^ *[0-9]+ +[0-9,]+ +[0-9,]+' | head -3
    echo; echo "## heap with $IDLE_CONNS idle connections: allocation tree (ms_print, >= 0.5%)"
    ms_print --threshold=0.5 "$work/massif-idle.out" 2>/dev/null | sed -n '/^ *n *time/,$p' | cut -c1-260 | head -200
  } >"$out"
fi
echo "profile.sh: written $out" >&2
