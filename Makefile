# slogate: `make demo` shows it working, `make test` runs every test.
# Both install what they need first (Debian packages via apt-get) when it is missing.

CARGO ?= cargo

.PHONY: setup demo test lint unit bench run clean

setup:
	@./scripts/setup.sh

## The one-command demo: a mock Rails upstream, slogate in front, an incident, the SLI table.
demo: setup
	$(CARGO) run --release --quiet -- demo

## Every test: formatting, lints, unit, property, golden and integration tests (real Rails,
## Puma, Prometheus, nginx, Sidekiq and Redis).
test: setup lint
	$(CARGO) test --workspace --no-fail-fast

## The tests that need no external program (no Ruby/Puma, nginx, Prometheus, Redis, HAProxy,
## Python): every crate's unit tests, and the integration tests that run only slogate's own
## binaries. The tests in those files that need such a program are left out by name (they
## call require_tool, crates/slogate-test-support, and fail saying what is missing); `make
## test` installs everything and runs every test. One cargo invocation over the workspace, so
## the build is the one `make test` uses. Once built: 32 s on the 2-core dev
## machine (21 s of it harness.rs's load runs against the in-process mock).
UNIT_TESTS = --lib --bins --test errors --test fixtures --test properties --test cli \
	--test dashboard --test golden --test simulate --test validation --test report \
	--test datadog --test follow --test redis --test harness --test nginx_import --test slo_ops
UNIT_SKIP = --skip check_rules_and_dashboard_write_files --skip report_reads_a_real_prometheus \
	--skip every_generated_object_builds_with_datadog_api_client \
	--skip the_validation_catches_what_the_client_lets_through \
	--skip redis_down_is_retried_and_queues_are_read_when_it_is_up \
	--skip rails_fixture_client_and_proxy_agree \
	--skip imported_configs_pass_check_and_behave_like_nginx \
	--skip datadog_agent_check_reads_slogate_metrics --skip the_page_fires_when_simulate_says
unit:
	$(CARGO) test --workspace $(UNIT_TESTS) -- $(UNIT_SKIP)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings

## Benchmarks: criterion for the core, the peer benchmark (direct vs nginx vs slogate), then
## the scaling benchmark (open loop, memory, response size, distinct operations). ~15 minutes.
bench: setup
	$(CARGO) bench -p slogate-core
	./benches/peer.sh
	./benches/scaling.sh

## slogate in front of a local Rails on :3000.
run:
	$(CARGO) run --release -- run --upstream 127.0.0.1:3000

clean:
	$(CARGO) clean
