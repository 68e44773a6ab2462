#!/usr/bin/env bash
# Set up a fresh machine for Wavry: uv (pinned) and the locked Python environment.
# Idempotent; safe to run again. Needs Python >= 3.11 and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"
if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv ${UV_VERSION} with pip" >&2
  python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
export PATH="$HOME/.local/bin:$PATH"
# --locked: fail instead of silently changing uv.lock.
uv sync --locked --quiet
echo "bootstrap: environment ready ($(uv run python --version))" >&2
