# syntax=docker/dockerfile:1
# wavry relay: blind UDP forwarder for peers that cannot reach each other (docs/relay.md).
# Build context: the release tool's wavry-relay-<version>-linux-any.context.tar.gz (this file,
# the wheel and requirements.txt with pinned hashes from uv.lock). See docs/release.md.
# Run read-only: docker run --read-only --tmpfs /tmp -v wavry-relay:/var/lib/wavry \
#   --cap-drop ALL --security-opt no-new-privileges -p 4000:4000/udp -p 9091:9091 \
#   --env-file relay.env IMAGE

FROM python:3.11.14-slim-bookworm AS build
# evdev (a host-side dependency) ships as source only: the build stage compiles it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /src/
COPY *.whl /src/
RUN python -m venv /opt/wavry \
 && /opt/wavry/bin/pip install --no-cache-dir --no-deps --require-hashes -r /src/requirements.txt \
 && /opt/wavry/bin/python -m compileall -q /opt/wavry

FROM python:3.11.14-slim-bookworm
ARG WAVRY_VERSION=unknown
LABEL org.opencontainers.image.title="wavry-relay" \
      org.opencontainers.image.version="${WAVRY_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/wavry wavry \
 && mkdir -p /var/lib/wavry \
 && chown 10001:10001 /var/lib/wavry
COPY --from=build /opt/wavry /opt/wavry
# The container's network namespace is the boundary: listening on all its interfaces is the
# deliberate opt-in. The relay still refuses a public bind without a master token and a pinned
# master key unless WAVRY_RELAY_ALLOW_INSECURE_DEV=1.
ENV PATH=/opt/wavry/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WAVRY_DATA_DIR=/var/lib/wavry \
    WAVRY_RELAY_LISTEN=0.0.0.0:4000 \
    WAVRY_RELAY_HEALTH_LISTEN=0.0.0.0:9091 \
    WAVRY_RELAY_ALLOW_PUBLIC_BIND=1
VOLUME ["/var/lib/wavry"]
USER 10001:10001
EXPOSE 4000/udp 9091/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9091/health', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["wavry"]
CMD ["relay"]
