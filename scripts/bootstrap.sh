#!/usr/bin/env bash
# Set up a fresh machine for Wavry: uv (pinned) and the locked Python environment.
# Idempotent; safe to run again. Needs Python >= 3.11 and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"

# System packages (Xvfb for capture/input tests...). Installed only when missing; needs root
# (or sudo) and Debian/Ubuntu. Set WAVRY_SKIP_APT=1 to manage them yourself.
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/apt-packages.txt
if ((${#missing[@]})) && [[ "${WAVRY_SKIP_APT:-0}" != "1" ]]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [[ "$(id -u)" != "0" ]] && sudo_cmd="sudo"
    echo "bootstrap: installing system packages: ${missing[*]}" >&2
    if ! { $sudo_cmd apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null; }; then
      # The demo does not need them; the X11 capture/input tests do. In CI that is fatal.
      echo "bootstrap: could not install ${missing[*]} (tests that need an X server will fail)" >&2
      [[ "${CI:-}" == "true" ]] && exit 1
    fi
  else
    echo "bootstrap: please install: ${missing[*]} (no apt-get here)" >&2
  fi
fi
if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv ${UV_VERSION} with pip" >&2
  python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
export PATH="$HOME/.local/bin:$PATH"
# --locked: fail instead of silently changing uv.lock.
uv sync --locked --quiet
echo "bootstrap: environment ready ($(uv run python --version))" >&2
