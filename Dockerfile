# syntax=docker/dockerfile:1.7
# Distribute container images: one build stage compiles both release binaries, two small
# runtime stages ship one binary each.
#
#   docker build --target node     -t distribute:dev .
#   docker build --target operator -t distribute-operator:dev .
#
# The runtime stages hold no compiler, no package manager caches and no shell tools beyond
# Debian's base; they run as the unprivileged user 10001. Health is left to Kubernetes probes
# (the node's /health and /ready on 9090, the operator's /health on 8081), so no HEALTHCHECK.
# Base images are pinned to exact versions; pin them by digest (@sha256:…) in a release
# pipeline that can resolve one.

ARG RUST_IMAGE=docker.io/library/rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:12.12-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The registry, git checkouts and the target dir live in cache mounts, so a rebuild after a
# source change recompiles only the workspace crates. The binaries are copied out of the
# target cache within the same step (a cache mount is not part of the layer).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p distribute -p distribute-operator \
 && mkdir -p /out \
 && cp target/release/distribute target/release/distribute-operator /out/ \
 && mkdir -p /out/data

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
RUN groupadd --system --gid 10001 distribute \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin distribute

# ---------------------------------------------------------------------------------------------
FROM runtime AS node
COPY --from=builder /out/distribute /usr/local/bin/distribute
COPY --from=builder --chown=10001:10001 /out/data /data
ENV DISTRIBUTE_REPO=/data
VOLUME ["/data"]
# 4001 swarm (TCP and QUIC), 5001 RPC API, 8080 gateway, 9090 metrics and probes
EXPOSE 4001/tcp 4001/udp 5001/tcp 8080/tcp 9090/tcp
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/distribute", "node"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS operator
COPY --from=builder /out/distribute-operator /usr/local/bin/distribute-operator
# 8081 metrics and health
EXPOSE 8081/tcp
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/distribute-operator"]
CMD ["run"]
