#!/usr/bin/env bash
# Builds slogate's release binary with profile-guided optimisation (PGO):
#   1. an instrumented build (rustc -Cprofile-generate),
#   2. a training run: the instrumented slogate in front of the mock upstream, loaded by
#      `slogate loadtest` with the scenarios in proxy-config/scenarios/ (a mix of GraphQL
#      queries, mutations, batches, persisted queries, GET, gzip, errors of every kind,
#      hostile input) — not the peer benchmark's request,
#   3. the profile merged with llvm-profdata (from Debian's llvm-19 package when missing; its
#      profile format must be one rustc's LLVM reads: checked, and said if not),
#   4. the release build using it (rustc -Cprofile-use).
#
#   scripts/pgo.sh                    # prints the binary's path on its last line
#   PGO_DIR=/tmp/pgo scripts/pgo.sh   # where the builds and profiles go (target/pgo)
#
# Each build is a full release build (fat LTO: 6-8 minutes each on 2 cores; ~17 minutes in all). The optimised
# binary behaves exactly as the plain one (same code; only the compiler's layout and
# inlining choices change); docs/performance.md has what it measured.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${PGO_DIR:-$repo/target/pgo}
say() { echo "pgo.sh: $*" >&2; }
die() { say "$*"; exit 1; }

profdata_tool() {
  local t
  for t in llvm-profdata-19 /usr/lib/llvm-19/bin/llvm-profdata; do
    command -v "$t" >/dev/null 2>&1 && { command -v "$t"; return; }
  done
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing llvm-19 (llvm-profdata) with apt-get"
    apt-get install -y -q llvm-19 >/dev/null || die "apt-get install llvm-19 failed"
    echo /usr/lib/llvm-19/bin/llvm-profdata
    return
  fi
  die "llvm-profdata is missing: install Debian's llvm-19 (or put an llvm-profdata matching rustc $(rustc -vV | awk '/LLVM/ {print $3}') on PATH as llvm-profdata-19)"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

rm -rf "$dir/raw" "$dir/discard"
mkdir -p "$dir/raw" "$dir/discard"
# Only the proxy's own runs are merged: the build scripts and proc macros the instrumented
# build runs write profiles here too (default_*.profraw), of other programs.
tool=$(profdata_tool)

say "1/4 instrumented build ($dir/gen)"
RUSTFLAGS="-Cprofile-generate=$dir/raw" \
  cargo build --release --locked --quiet --bin slogate --target-dir "$dir/gen" --manifest-path "$repo/Cargo.toml"
gen=$dir/gen/release/slogate

say "2/4 training: mock upstream, slogate, loadtest over every scenario"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
work=$(mktemp -d "$dir/train.XXXXXX")
for scenario in "$repo"/proxy-config/scenarios/*.yaml; do
  name=$(basename "$scenario" .yaml)
  mock=$(free_port); proxy=$(free_port); admin=$(free_port)
  # The mock and the load generator are slogate's own subcommands: their profiles are not
  # the proxy's, so they go to a directory that is thrown away.
  LLVM_PROFILE_FILE="$dir/discard/%p.profraw" "$gen" mock-upstream --scenario "$scenario" \
    --listen "127.0.0.1:$mock" >"$work/mock-$name.log" 2>&1 &
  pids+=($!); mock_pid=$!
  cat >"$work/$name.yaml" <<EOF
server:
  listen: ["127.0.0.1:$proxy"]
  threads: 2
  pid_file: "$work/slogate-$name.pid"
  upgrade_socket: "$work/slogate-$name-upgrade.sock"
admin:
  listen: "127.0.0.1:$admin"
upstream:
  name: rails
  backends: ["127.0.0.1:$mock"]
  health_check:
    enabled: false
graphql:
  paths: ["/graphql"]
access_log:
  target: "$work/access-$name.log"
EOF
  LLVM_PROFILE_FILE="$dir/raw/slogate-%p.profraw" SLOGATE_LOG=warn "$gen" run --config "$work/$name.yaml" \
    >"$work/slogate-$name.log" 2>&1 &
  pids+=($!); proxy_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # Closed loop on 32 connections for 15 s: tens of thousands of requests of the scenario's mix.
  LLVM_PROFILE_FILE="$dir/discard/%p.profraw" "$gen" loadtest --scenario "$scenario" \
    --target "http://127.0.0.1:$proxy" --connections 32 --duration 15s --quiet \
    >"$work/load-$name.log" 2>&1 || true   # the verdict does not matter here, the traffic does
  say "   $name: $(wc -l <"$work/access-$name.log" 2>/dev/null || echo 0) requests proxied"
  # SIGINT: slogate stops at once and writes its profile as it exits.
  kill -INT "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
  kill -TERM "$mock_pid"; wait "$mock_pid" 2>/dev/null || true
  pids=()
done
trap - EXIT
rm -rf "$dir/discard" "$work"
ls "$dir"/raw/slogate-*.profraw >/dev/null 2>&1 || die "the training wrote no profile"

say "3/4 merging $(ls "$dir"/raw/slogate-*.profraw | wc -l) profiles with $tool"
"$tool" merge -o "$dir/slogate.profdata" "$dir"/raw/slogate-*.profraw \
  || die "$tool cannot read rustc's profiles (rustc's LLVM: $(rustc -vV | awk '/LLVM/ {print $3}'))"

say "4/4 optimised build ($dir/use)"
RUSTFLAGS="-Cprofile-use=$dir/slogate.profdata" \
  cargo build --release --locked --quiet --bin slogate --target-dir "$dir/use" --manifest-path "$repo/Cargo.toml"
echo "$dir/use/release/slogate"
