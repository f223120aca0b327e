# syntax=docker/dockerfile:1
# `opaas serve` in a container: a Rust build stage, then a small Debian runtime that runs as a
# non-root user with its data in the /data volume. No Docker socket, no privileges: OPaaS
# fetches and verifies indices and .debs itself.
#
#   docker build -t opaas .
#   docker run -d -p 8000:8000 -v opaas-data:/data -e OPAAS_MIRROR_PRESET=tuna opaas
#
# Mirrors are configuration (see the README): set OPAAS_MIRROR_<FAMILY> /
# OPAAS_SECURITY_MIRROR_<FAMILY>, or OPAAS_MIRROR_PRESET, or mount a config file and pass --config.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# web/dist (the UI, committed) is embedded into the binary
# The image gets a stripped binary (about 15 MB instead of 103 MB, most of it line tables); the
# debug info stays in the build stage as opaas.debug, linked by a debuglink, for symbolising
# backtraces: `docker build --target build -o out .` exports it.
RUN cargo build --release --locked -p opaas \
 && objcopy --only-keep-debug target/release/opaas target/release/opaas.debug \
 && objcopy --strip-all --add-gnu-debuglink=target/release/opaas.debug target/release/opaas

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates debian-archive-keyring \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin opaas \
 && mkdir -p /data/logs \
 && chown -R opaas:opaas /data
COPY --from=build /src/target/release/opaas /usr/local/bin/opaas
USER opaas
WORKDIR /data
ENV OPAAS_LISTEN=0.0.0.0:8000 \
    OPAAS_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000 && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && grep -q "\"ok\"" <&3'
STOPSIGNAL SIGTERM
CMD ["opaas", "serve", "--data-dir", "/data"]
