"""Where Wavry keeps its state: one per-user data directory.

``WAVRY_DATA_DIR`` overrides it for every command and service (tests, containers, several
identities on one machine); otherwise the XDG data dir (``~/.local/share/wavry`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["allowed_clients_path", "data_dir", "identity_path", "known_hosts_path"]

ENV_DATA_DIR = "WAVRY_DATA_DIR"


def data_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    override = env.get(ENV_DATA_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("wavry", appauthor=False))


def identity_path(env: dict[str, str] | None = None) -> Path:
    return data_dir(env) / "identity.key"


def known_hosts_path(env: dict[str, str] | None = None) -> Path:
    return data_dir(env) / "known_hosts"


def allowed_clients_path(env: dict[str, str] | None = None) -> Path:
    return data_dir(env) / "allowed_clients"
