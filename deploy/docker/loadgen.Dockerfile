# syntax=docker/dockerfile:1
# loadgen, the weighted-traffic load generator, as a static (musl) binary on
# distroless/static, running as a non-root user.
#   docker build -f deploy/docker/loadgen.Dockerfile -t canarylab/loadgen .
#   docker run --rm canarylab/loadgen --target app=http://host.docker.internal:8080/ --rate 100 -d 30s
#   docker run --rm -v "$PWD:/results" canarylab/loadgen merge /results/loadgen-0.json /results/loadgen-1.json
ARG RUST_VERSION=1.95

# rust:alpine's host target is *-unknown-linux-musl: the binary is static,
# for whichever architecture the image is built for.
FROM rust:${RUST_VERSION}-alpine AS build
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
# no debug info, stripped: the image holds the binary alone
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p loadgen --bin loadgen \
 && cp target/release/loadgen /loadgen

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /loadgen /usr/local/bin/loadgen
# numeric, so Kubernetes runAsNonRoot can verify it (distroless nonroot)
USER 65532:65532
# loadgen serves nothing unless given --metrics-addr ADDR (e.g. 0.0.0.0:9464),
# so no port is exposed by default.
# loadgen ends a run early on SIGINT (Ctrl-C), still writing the summary and
# --json; `docker stop` sends SIGINT instead of SIGTERM for that.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/loadgen"]
