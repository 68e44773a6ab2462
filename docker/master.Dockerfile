# syntax=docker/dockerfile:1
# wavry master: relay registry, relay selection and signed relay leases (docs/master.md).
# Build context: the release tool's wavry-master-<version>-linux-any.context.tar.gz (this file,
# the wheel and requirements.txt with pinned hashes from uv.lock). See docs/release.md.
# Run read-only: docker run --read-only --tmpfs /tmp -v wavry-master:/var/lib/wavry \
#   --cap-drop ALL --security-opt no-new-privileges -p 8080:8080 --env-file master.env IMAGE

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
LABEL org.opencontainers.image.title="wavry-master" \
      org.opencontainers.image.version="${WAVRY_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/wavry wavry \
 && mkdir -p /var/lib/wavry \
 && chown 10001:10001 /var/lib/wavry
COPY --from=build /opt/wavry /opt/wavry
# The container's network namespace is the boundary: listening on all its interfaces is the
# deliberate opt-in. The master still refuses to start without real secrets (signing key, relay
# token, admin token) unless WAVRY_MASTER_INSECURE_DEV=1.
ENV PATH=/opt/wavry/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WAVRY_DATA_DIR=/var/lib/wavry \
    WAVRY_MASTER_LISTEN=0.0.0.0:8080 \
    WAVRY_MASTER_ALLOW_PUBLIC_BIND=1
# Only the data directory (SQLite, generated key) and /tmp are written: run with --read-only.
VOLUME ["/var/lib/wavry"]
USER 10001:10001
EXPOSE 8080/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["wavry"]
CMD ["master"]
