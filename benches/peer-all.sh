#!/usr/bin/env bash
# Every figure of issue #10's targets, one benches/peer.sh mode after another (each writes its
# own benches/results/peer-<date>[-<size>][-<mode>].md and .json):
#   keep-alive throughput (2 KB answer), latency at a paced load (PACE_MS, default 2: every proxy
#   at about the same rate), RSS per idle connection (10,000), CPU per new connection, then the
#   throughput mode with 200 KB and 5 MB answers.
#   benches/peer-all.sh                      # all six, about 20-23 minutes on 2 cores
#   STEPS="rps idle" benches/peer-all.sh     # a subset: rps paced idle conn 200k 5m
# The environment (SLOGATE_BIN, CONFIGS, REPEAT, DURATION, ...) is passed on to peer.sh; a step
# that fails is reported and the next one still runs; the exit status is 1 if any failed.
# Without CONFIGS, every step also measures the floor (benches/floor: hyper alone, no slogate
# work), so the figures say what hyper costs and what slogate adds; the keep-alive step also
# measures slogate with hyper's upstream client (slogate-hyper) beside its own.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STEPS=${STEPS:-rps paced idle conn 200k 5m}
failed=()
configs() { # mode
  if [ -n "${CONFIGS:-}" ]; then echo "$CONFIGS"
  elif [ "$1" = idle ]; then echo "nginx haproxy floor slogate"
  elif [ "$1" = rps ]; then echo "direct nginx haproxy floor slogate slogate-hyper"
  else echo "direct nginx haproxy floor slogate"; fi
}
for step in $STEPS; do
  echo "peer-all.sh: === $step ($(date -u +%H:%M:%S)) ===" >&2
  case $step in
    rps) SIZE=2k CONFIGS=$(configs rps) "$here/peer.sh" rps ;;
    paced) SIZE=2k PACE_MS=${PACE_MS:-2} CONFIGS=$(configs paced) "$here/peer.sh" rps ;;
    idle) SIZE=2k CONFIGS=$(configs idle) "$here/peer.sh" idle ;;
    conn) SIZE=2k CONFIGS=$(configs conn) "$here/peer.sh" conn ;;
    200k|5m) SIZE=$step CONFIGS=$(configs rps) "$here/peer.sh" rps ;;
    *) echo "peer-all.sh: unknown step '$step' (rps paced idle conn 200k 5m)" >&2; false ;;
  esac || failed+=("$step")
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "peer-all.sh: failed: ${failed[*]}" >&2
  exit 1
fi
