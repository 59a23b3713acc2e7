# syntax=docker/dockerfile:1
# etcdboard image: build on Debian 12 (bookworm) with Rust, run on distroless/cc-debian12 — the
# same glibc (2.36), no shell, no package manager, user 65532 (nonroot).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t etcdboard .
#
# scripts/build-image.sh runs the same build steps without a container engine (CI runs it).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# etcd-client compiles etcd's .proto files at build time.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, against placeholder sources, so this layer is reused until Cargo.toml or
# Cargo.lock change. The placeholders cover every target the manifest names.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/it \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/listing.rs \
 && echo 'fn main() {}' > benches/etcd_cost.rs \
 && touch tests/it/main.rs \
 && cargo build --release --locked --bin etcdboard \
 && rm -rf src benches tests \
      target/release/etcdboard target/release/deps/etcdboard-* target/release/deps/libetcdboard-* \
      target/release/.fingerprint/etcdboard-*

# The real sources (see .dockerignore); askama templates and static files are compiled in.
# Debug info stays out of the image (symbols stay, so backtraces still name functions).
COPY . .
RUN cargo build --release --locked --bin etcdboard \
 && ./target/release/etcdboard --version \
 && mkdir -p /out \
 && objcopy --strip-debug target/release/etcdboard /out/etcdboard

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/etcdboard/etcdboard
ARG REVISION=unknown
LABEL org.opencontainers.image.title="etcdboard" \
      org.opencontainers.image.description="A web dashboard for etcd clusters on Kubernetes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/etcdboard /usr/local/bin/etcdboard
# Writes nothing to the root filesystem: runs with readOnlyRootFilesystem (deploy/ mounts /tmp).
USER 65532:65532
ENV ETCDBOARD_LISTEN=0.0.0.0:8080 \
    ETCDBOARD_LOG_FORMAT=json
EXPOSE 8080
# Exec form, no shell: SIGTERM reaches etcdboard directly and starts its graceful shutdown.
ENTRYPOINT ["/usr/local/bin/etcdboard"]
CMD ["serve"]
