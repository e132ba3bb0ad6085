# syntax=docker/dockerfile:1
# slogate container image. UNTESTED: written without a Docker engine at hand; the build
# steps are the ones CI runs natively (cargo build --release --locked).
#
#   docker build -t slogate .
#   docker run --rm -p 8080:8080 -p 9090:9090 slogate --config /etc/slogate/slogate.yaml \
#       --admin 0.0.0.0:9090 --upstream rails:3000
#
# Stopping: on SIGTERM slogate stops accepting, waits server.grace_period (5s) and then
# gives in-flight requests server.graceful_shutdown_timeout (10s): up to ~15s, more than
# `docker stop`'s default 10s, so use `docker stop -t 20` (Kubernetes: see proxy-config/k8s.yaml).

############################ build ############################
FROM rust:1-bookworm AS build
# cmake: pingora's zlib-ng (libz-ng-sys) is built from source. llvm-19 (llvm-profdata),
# python3 and curl: the profile-guided build (scripts/pgo.sh).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake llvm-19 python3 curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# PGO=1 (default): the binary `make release` builds, optimised with a profile of slogate's
# own load test (three steps, ~17 minutes on 2 cores; 14-16 % less CPU per request).
# --build-arg PGO=0: a plain release build.
ARG PGO=1
# BuildKit cache mounts keep the registry and the target dir between builds; the binary is
# copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    if [ "$PGO" = 1 ]; then \
      PGO_DIR=/src/target/pgo scripts/pgo.sh >/tmp/pgo.out && bin=$(tail -n 1 /tmp/pgo.out); \
    else \
      cargo build --release --locked --bin slogate && bin=target/release/slogate; \
    fi \
 && install -D -m 0755 "$bin" /out/slogate

############################ runtime ############################
FROM debian:bookworm-slim
# ca-certificates: TLS to upstreams (and anything else that verifies certificates).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 slogate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin slogate
COPY --from=build /out/slogate /usr/local/bin/slogate
# The example configurations (SLO specs, scenarios) and the default config. Mount your own
# over /etc/slogate/slogate.yaml (a Kubernetes ConfigMap does exactly that).
COPY proxy-config/ /usr/share/slogate/proxy-config/
COPY proxy-config/slogate.yaml /etc/slogate/slogate.yaml
USER 10001:10001
# 8080: traffic. 9090: admin (/metrics, /health, /ready).
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# No HEALTHCHECK: the slim image has no curl/wget and slogate has no probe subcommand;
# orchestrators probe GET /health and GET /ready on the admin port themselves.
ENTRYPOINT ["slogate", "run"]
# The example config keeps the admin listener on loopback (metrics are not for the public
# internet); inside a container it has to listen on 0.0.0.0:9090 to be scraped at all, so
# the default command overrides it. Keep port 9090 off any public Service/Ingress.
CMD ["--config", "/etc/slogate/slogate.yaml", "--admin", "0.0.0.0:9090"]
