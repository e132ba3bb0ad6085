#!/usr/bin/env bash
# Installs what slogate's build, tests, demo and benchmarks need, and only what is missing.
# Safe to run again: it checks each tool first. Used by `make` targets and by .ci/run.
set -euo pipefail

# tool -> Debian package
declare -A NEED=(
  [cmake]=cmake                 # pingora's zlib-ng build
  [cc]=build-essential
  [pkg-config]=pkg-config
  [ruby]=ruby
  [puma]=puma                   # the Rails fixture's server
  [prometheus]=prometheus       # end-to-end SLO tests
  [promtool]=prometheus         # exposition and rule checks
  [nginx]=nginx                 # parity tests and peer benchmarks
  [haproxy]=haproxy             # peer benchmarks
  [python3]=python3             # Datadog validation (slo datadog)
  [wrk]=wrk                     # peer benchmarks
  [redis-server]=redis-server   # Sidekiq job SLIs
  [sha256sum]=coreutils
  [curl]=curl
)
# Ruby libraries the fixtures require (Debian packages, no Bundler, no network gems).
RUBY_LIBS=(
  "rails:ruby-railties"
  "action_controller:ruby-actionpack"
  "action_cable:ruby-actioncable"
  "graphql:ruby-graphql"
  "sidekiq:ruby-sidekiq"
)

# `setup.sh --packages`: every Debian package above, one per line (what .ci/run installs).
if [ "${1:-}" = --packages ]; then
  { printf '%s\n' "${NEED[@]}"; for pair in "${RUBY_LIBS[@]}"; do echo "${pair##*:}"; done; } | sort -u
  exit 0
fi

missing=()
for tool in "${!NEED[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${NEED[$tool]}")
done
if command -v ruby >/dev/null 2>&1; then
  for pair in "${RUBY_LIBS[@]}"; do
    lib=${pair%%:*}; pkg=${pair##*:}
    ruby -e "require '$lib'" >/dev/null 2>&1 || missing+=("$pkg")
  done
else
  for pair in "${RUBY_LIBS[@]}"; do missing+=("${pair##*:}"); done
fi

if ((${#missing[@]})); then
  # shellcheck disable=SC2207
  uniq=($(printf '%s\n' "${missing[@]}" | sort -u))
  echo "setup: installing ${uniq[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${uniq[@]}" >/dev/null
fi

# Debian starts these services on install where it can; slogate's tests start their own
# instances on ephemeral ports and need none of them.
for svc in nginx redis-server prometheus; do
  if command -v service >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done

# The Datadog validation (crates/slogate-slo/tests/datadog/validate.py) runs on
# datadog-api-client and datadog-checks-base from PyPI, in a virtualenv under target/
# (crates/slogate-slo/tests find it there), installed only when an import fails.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SLOGATE_SLO_VENV:-$ROOT/target/slo-venv}"
PY_CHECK='import datadog_api_client, yaml; from datadog_checks.base.checks.openmetrics.v2.base import OpenMetricsBaseCheckV2'
if ! "$VENV/bin/python" -c "$PY_CHECK" >/dev/null 2>&1; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  echo "setup: installing the Datadog Python libraries into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    -r "$ROOT/crates/slogate-slo/tests/datadog/requirements.txt"
  "$VENV/bin/python" -c "$PY_CHECK"
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo (Rust stable) is required: https://rustup.rs" >&2; exit 1; }
echo "setup: ok" >&2
