# syntax=docker/dockerfile:1
# The canarylab CLI (sim, merge, test, cluster, ...) as a static (musl)
# binary on distroless/static, running as a non-root user, with the shipped
# scenario catalog so `canarylab sim` runs without arguments.
#   docker build -f deploy/docker/canarylab.Dockerfile -t canarylab/canarylab .
#   docker run --rm -v "$PWD/review:/opt/canarylab/out" canarylab/canarylab sim --runs 1000
#   docker run --rm -v "$PWD/shards:/shards" canarylab/canarylab sim --shard 0/4 --out /shards
ARG RUST_VERSION=1.95

# rust:alpine's host target is *-unknown-linux-musl: the binary is static,
# for whichever architecture the image is built for. gcc and musl-dev build
# ring (rustls, for the Kubernetes API client).
FROM rust:${RUST_VERSION}-alpine AS build
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
# no debug info, stripped: the image holds the binary alone
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p canarylab --bin canarylab \
 && cp target/release/canarylab /canarylab \
 && mkdir -p /empty

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /canarylab /usr/local/bin/canarylab
COPY scenarios/catalog /opt/canarylab/scenarios/catalog
# the default --out (out/, below the working directory), writable by the user
COPY --from=build --chown=65532:65532 /empty /opt/canarylab/out
WORKDIR /opt/canarylab
# numeric, so Kubernetes runAsNonRoot can verify it (distroless nonroot)
USER 65532:65532
# canarylab serves nothing (local mode binds loopback inside the container).
# `canarylab cluster run` and `local` clean up on SIGINT (Ctrl-C); `docker
# stop` sends SIGINT instead of SIGTERM for that.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/canarylab"]
CMD ["--help"]
