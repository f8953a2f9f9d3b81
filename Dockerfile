# syntax=docker/dockerfile:1
# One image with kvnode, kvctl and kv-operator.
#   docker build -t ghcr.io/ringkv/ringkv:0.1.0 .
# Multi-stage: the toolchain stays in the builder; the runtime is a slim Debian
# (it needs /bin/sh for the node's start line) running as an unprivileged user.

FROM rust:1.90-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ringkv-node -p ringkv-client -p ringkv-operator \
        --bin kvnode --bin kvctl --bin kv-operator \
 && mkdir -p /out \
 && cp target/release/kvnode target/release/kvctl target/release/kv-operator /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ringkv \
 && useradd --system --uid 10001 --gid ringkv --home-dir /var/lib/ringkv --shell /usr/sbin/nologin ringkv \
 && mkdir -p /var/lib/ringkv /etc/ringkv \
 && chown ringkv:ringkv /var/lib/ringkv
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/ringkv
# gRPC, node HTTP (/api/v1, /metrics, /healthz, /readyz), operator HTTP.
EXPOSE 7100 7180 8080
# No ENTRYPOINT: the StatefulSet runs kvnode, the operator Deployment runs kv-operator.
CMD ["kvnode", "serve", "--data-dir", "/var/lib/ringkv", "--grpc-addr", "0.0.0.0:7100", "--http-addr", "0.0.0.0:7180"]
