# slogate: `make demo` shows it working, `make test` runs every test.
# Both install what they need first (Debian packages via apt-get) when it is missing.

CARGO ?= cargo

.PHONY: setup demo test lint unit bench release run clean

setup:
	@./scripts/setup.sh

## The one-command demo: a mock Rails upstream, slogate in front, an incident, the SLI table.
demo: setup
	$(CARGO) run --release --quiet -- demo

## Every test: formatting, lints, unit, property, golden and integration tests (real Rails,
## Puma, Prometheus, nginx, Sidekiq and Redis).
## The end-to-end tests run twice: through slogate's own upstream client (the default), then
## through hyper's (`upstream.client: hyper`), until hyper's is retired.
test: setup lint
	$(CARGO) test --workspace --no-fail-fast
	SLOGATE_TEST_UPSTREAM_CLIENT=hyper $(CARGO) test --test e2e --no-fail-fast

## The tests that need no external program: every test except those under a `needs` module.
## The rule: a test that runs a program the workspace does not build (Ruby/Puma, nginx,
## Prometheus, Redis, Python...) goes under `needs::<program>` (docs/architecture.md, "Tests");
## nothing is listed here. One cargo invocation, the build `make test` uses; doc-tests are left
## to `make test`. Warm: about 55 s on the 2-core dev machine, 47 s of it the e2e binary's
## own:: tests (faults under load and the harness's load runs, which mostly wait).
unit:
	$(CARGO) test --workspace --tests -- --skip needs::

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings

## Benchmarks: criterion for the core, the peer benchmark (direct vs nginx vs HAProxy vs hyper
## alone vs slogate), then the scaling benchmark (open loop, memory, response size, distinct
## operations). ~16 minutes. slogate is built plainly here; the README's figures are for the
## binary `make release` builds: `SLOGATE_BIN=$(./scripts/pgo.sh) make bench` measures that one.
bench: setup
	$(CARGO) bench -p slogate-core
	CONFIGS="direct nginx haproxy floor slogate" ./benches/peer.sh
	./benches/scaling.sh

## The release binary to deploy: optimised with a profile of slogate's own load test (PGO,
## scripts/pgo.sh: an instrumented build, a training run over proxy-config/scenarios, the
## optimised build; ~17 minutes on 2 cores). 14-16 % less CPU per proxied request than a plain
## `cargo build --release` (docs/performance.md). Prints the binary's path.
release: setup
	./scripts/pgo.sh

## slogate in front of a local Rails on :3000.
run:
	$(CARGO) run --release -- run --upstream 127.0.0.1:3000

clean:
	$(CARGO) clean
