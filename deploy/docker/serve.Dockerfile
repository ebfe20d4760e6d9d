# syntax=docker/dockerfile:1
# `canarylab serve`: the judge as an HTTP service (Kayenta remote judge,
# Argo Rollouts web provider, Flagger webhooks), a static (musl) binary on
# distroless/static, non-root.
#   docker build -f deploy/docker/serve.Dockerfile -t canarylab/serve .
#   docker run --rm -p 8080:8080 canarylab/serve --prometheus http://prometheus:9090
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p canarylab --bin canarylab \
 && cp target/release/canarylab /canarylab

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /canarylab /usr/local/bin/canarylab
COPY examples/canary-config.json /etc/canarylab/configs/goldengoose.json
# numeric, so Kubernetes runAsNonRoot can verify it (distroless nonroot)
USER 65532:65532
EXPOSE 8080
# serve drains in-flight requests on SIGTERM (and on SIGINT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/canarylab", "serve", "--listen", "0.0.0.0:8080", "--config-dir", "/etc/canarylab/configs"]
