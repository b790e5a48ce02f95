# syntax=docker/dockerfile:1
# Cohort container image (needs BuildKit, the default since Docker 23):
#   docker build -t cohort .
#   docker run -p 8080:8080 -v cohort-data:/data -e COHORT_JWT_SECRET=... cohort
# Defaults: SQLite at /data/cohort.db, JSON logs, listening on 0.0.0.0:8080. Point
# COHORT_DATABASE_URL at postgres://... to use PostgreSQL instead.

# Keep in step with the toolchain CI uses; override with --build-arg RUST_VERSION=...
ARG RUST_VERSION=1.95

# ---- build --------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The cargo registry and the target dir live in BuildKit cache mounts, so a rebuild only compiles
# what changed. Cache mounts are not part of any layer: the binary is copied out of the cached
# target dir within the same RUN.
RUN --mount=type=cache,id=cohort-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=cohort-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=cohort-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p cohort \
 && install -D -m 0755 /src/target/release/cohort /out/cohort

# ---- runtime ------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to PostgreSQL. curl: only for the HEALTHCHECK below, because the
# binary has no health subcommand and the slim image has no HTTP client.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 cohort \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin cohort \
 && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=builder /out/cohort /usr/local/bin/cohort

USER 10001:10001
WORKDIR /data
ENV COHORT_LISTEN=0.0.0.0:8080 \
    COHORT_DATABASE_URL=sqlite:///data/cohort.db \
    COHORT_LOG_FORMAT=json
EXPOSE 8080
# Checks http://127.0.0.1:8080/healthz. The port follows COHORT_LISTEN (8080 unless overridden).
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD port="${COHORT_LISTEN##*:}"; curl -fsS -o /dev/null "http://127.0.0.1:${port:-8080}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/cohort"]
CMD ["serve"]
