# syntax=docker/dockerfile:1
# wavry gateway: accounts, 2FA, signaling and the admin dashboard (docs/gateway.md).
# Build context: the release tool's wavry-gateway-<version>-linux-any.context.tar.gz (this file,
# the wheel and requirements.txt with pinned hashes from uv.lock). See docs/release.md.
# Run read-only: docker run --read-only --tmpfs /tmp -v wavry-gateway:/var/lib/wavry \
#   --cap-drop ALL --security-opt no-new-privileges -p 3000:3000 --env-file gateway.env IMAGE

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
LABEL org.opencontainers.image.title="wavry-gateway" \
      org.opencontainers.image.version="${WAVRY_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/wavry wavry \
 && mkdir -p /var/lib/wavry \
 && chown 10001:10001 /var/lib/wavry
COPY --from=build /opt/wavry /opt/wavry
# The container's network namespace is the boundary: listening on all its interfaces is the
# deliberate opt-in. The gateway still refuses to start with insecure settings (admin token,
# token, admin token) unless WAVRY_MASTER_INSECURE_DEV=1.
ENV PATH=/opt/wavry/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WAVRY_DATA_DIR=/var/lib/wavry \
    WAVRY_GATEWAY_LISTEN=0.0.0.0:3000 \
    WAVRY_GATEWAY_ALLOW_PUBLIC_BIND=1
# Only the data directory (SQLite) and /tmp are written: run with --read-only.
VOLUME ["/var/lib/wavry"]
USER 10001:10001
EXPOSE 3000/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:3000/health', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["wavry"]
CMD ["gateway"]
