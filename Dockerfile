# syntax=docker/dockerfile:1.7
# ws-chat container image: a release build of the ws-chat binary on distroless.
#   DOCKER_BUILDKIT=1 docker build --build-arg WSCHAT_GIT_SHA=$(git rev-parse --short HEAD) -t ws-chat .
# (`make image`.) BuildKit is required: the build caches crates and the target
# directory in cache mounts, so a source change recompiles only ws-chat.

ARG RUST_VERSION=1.85

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The whole workspace (ws-chat and loadtest/) must be present for cargo to
# resolve it; .dockerignore keeps target/, .git, charts and docs out.
COPY . .
# Shown by wschat_build_info{git_sha}; read by the crate with option_env!.
ARG WSCHAT_GIT_SHA=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    WSCHAT_GIT_SHA="${WSCHAT_GIT_SHA}" \
    cargo build --release --locked -p ws-chat --bin ws-chat \
 && install -D -m 0755 target/release/ws-chat /out/ws-chat

# glibc, libgcc and CA certificates, nothing else: no shell, no package
# manager. Debian 12 matches the builder's glibc.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ws-chat /usr/local/bin/ws-chat
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# 8080: the page, /healthz and the WebSocket endpoint /chat.
# 8081: admin (/metrics, /healthz, /readyz); keep it off public ingress.
EXPOSE 8080 8081
# For Docker and Compose; Kubernetes ignores it and uses the chart's probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/ws-chat", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ws-chat"]
