# Portico appliance image, two ways from one file:
#
#   offline (first stage): a local Debian base made by
#     test-harness/base/build and a portico binary built on the host:
#       cargo build --release
#       docker build --target offline -t portico:offline .
#
#   release (last, so a plain `docker build .` and Home Assistant's local
#     add-on build produce it): everything from public images:
#       docker build -t portico .
#
# `offline` comes first so the classic builder, which runs every stage up to
# the target in order, never touches the public images. BuildKit only runs
# the stages the target needs. For the release image with the classic
# builder (DOCKER_BUILDKIT=0), which also runs the offline stage, point that
# stage at public inputs:
#   docker build --build-arg BASE_IMAGE=debian:12.11-slim \
#       --build-arg PORTICO_BIN=Cargo.toml -t portico .

ARG BASE_IMAGE=portico-base:bookworm
# The release image's public bases, pinned: the Rust toolchain the sources
# are tested with, and a Debian 12 point release (its nginx, s6 and openssl
# come from the bookworm archive at build time). Raise them together with
# the local toolchain and test-harness/base.
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG DEBIAN_IMAGE=debian:12.11-slim

FROM ${BASE_IMAGE} AS offline
# Path of the host-built binary inside the build context.
ARG PORTICO_BIN=target/release/portico
RUN useradd --system --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin portico \
    && mkdir -p /data \
    && ln -s /data/logs /var/log/portico
COPY rootfs/ /
COPY ${PORTICO_BIN} /usr/local/bin/portico
# The agent the panel serves at /download/ (panel.downloads_dir): this
# image's own binary under its platform's name.
RUN mkdir -p /usr/local/share/portico/downloads \
    && ln -s /usr/local/bin/portico \
        "/usr/local/share/portico/downloads/portico-linux-$(dpkg --print-architecture)"
EXPOSE 80 443 9292
VOLUME /data
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/portico", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portico-entry"]


FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# A host-built binary may be in the context (see .dockerignore); never use it.
RUN rm -rf target && cargo build --release --locked


FROM ${DEBIAN_IMAGE} AS release
# bookworm's nginx carries ssl, http_v2, auth_request and realip;
# nginx-light would only add the echo module.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx libjemalloc2 s6 execline ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin portico \
    && mkdir -p /data \
    && ln -s /data/logs /var/log/portico
COPY rootfs/ /
COPY --from=builder /src/target/release/portico /usr/local/bin/portico
RUN mkdir -p /usr/local/share/portico/downloads \
    && ln -s /usr/local/bin/portico \
        "/usr/local/share/portico/downloads/portico-linux-$(dpkg --print-architecture)"
EXPOSE 80 443 9292
VOLUME /data
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/portico", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portico-entry"]
