# Shared by the benchmark scripts (benches/peer.sh, benches/scaling.sh and their profile.sh):
# sourced after the script defines `repo` and `die`.

# The slogate binary under test: $SLOGATE_BIN if set (must be executable), else a release
# build of this checkout. Sets SLOGATE_BIN to an absolute path.
resolve_slogate_bin() {
  if [ -n "${SLOGATE_BIN:-}" ]; then
    [ -x "$SLOGATE_BIN" ] || die "SLOGATE_BIN=$SLOGATE_BIN is not an executable"
    return
  fi
  command -v cargo >/dev/null || die "cargo is missing (or set SLOGATE_BIN)"
  echo "building slogate (cargo build --release --bin slogate)" >&2
  (cd "$repo" && cargo build --release --quiet --bin slogate) || die "cargo build failed"
  SLOGATE_BIN=${CARGO_TARGET_DIR:-$repo/target}/release/slogate
  [[ $SLOGATE_BIN = /* ]] || SLOGATE_BIN=$repo/$SLOGATE_BIN
}

# The floor (benches/floor: hyper alone, forwarding with nothing else), built in release mode
# beside the other build outputs. Sets FLOOR_BIN to an absolute path.
resolve_floor_bin() {
  command -v cargo >/dev/null || die "cargo is missing (the floor is built from benches/floor)"
  local target=${CARGO_TARGET_DIR:-$repo/target}/floor
  [[ $target = /* ]] || target=$repo/$target
  echo "building benches/floor (cargo build --release)" >&2
  cargo build --release --quiet --manifest-path "$repo/benches/floor/Cargo.toml" --target-dir "$target" \
    || die "cannot build benches/floor"
  FLOOR_BIN=$target/release/floor
}

# CPU pinning: the load generator, the upstream and the proxy under test each get a core when
# there are three; with two, the proxy has one to itself and the others share the other; with
# one, everything shares it (ratios only). LOADGEN_CPU, UPSTREAM_CPU, PROXY_CPU override.
# Also NICE (-10 as root, so other work on a shared machine disturbs the runs less) and the
# `prio` command prefix. `nice` and `taskset` exec the command: $! is the process itself.
pick_cpus() {
  ncpu=$(nproc)
  if [ "$ncpu" -ge 3 ]; then
    LOADGEN_CPU=${LOADGEN_CPU:-0}; UPSTREAM_CPU=${UPSTREAM_CPU:-1}; PROXY_CPU=${PROXY_CPU:-2}
  elif [ "$ncpu" -eq 2 ]; then
    LOADGEN_CPU=${LOADGEN_CPU:-0}; UPSTREAM_CPU=${UPSTREAM_CPU:-0}; PROXY_CPU=${PROXY_CPU:-1}
  else
    LOADGEN_CPU=${LOADGEN_CPU:-0}; UPSTREAM_CPU=${UPSTREAM_CPU:-0}; PROXY_CPU=${PROXY_CPU:-0}
    echo "warning: 1 CPU: load generator, upstream and proxy share it; ratios only" >&2
  fi
  NICE=${NICE:-$([ "$(id -u)" = 0 ] && echo -10 || echo 0)}
  prio=(nice -n "$NICE")
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
