# syntax=docker/dockerfile:1
# goldengoose, the web server under test, as a static (musl) binary on
# distroless/static, running as a non-root user.
#   docker build -f deploy/docker/goldengoose.Dockerfile -t canarylab/goldengoose .
#   docker run --rm -p 8080:8080 canarylab/goldengoose --listen 0.0.0.0:8080 --track canary
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
    cargo build --release --locked -p goldengoose --bin goldengoose \
 && cp target/release/goldengoose /goldengoose

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /goldengoose /usr/local/bin/goldengoose
# numeric, so Kubernetes runAsNonRoot can verify it (distroless nonroot)
USER 65532:65532
# HTTP: the work endpoint, /metrics (Prometheus) and the admin API
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/goldengoose"]
# goldengoose listens on 127.0.0.1:8080 unless told otherwise; Kubernetes
# `args` replace this whole list, so they must say --listen too.
CMD ["--listen", "0.0.0.0:8080"]
