"""Wavry gateway: accounts (Argon2id, TOTP 2FA, sessions), host sharing, Wavry ID binding,
admin API and signaling. ``create_app(settings)`` builds the FastAPI application.

The names below are imported on first use: ``wavry --help`` and every other subcommand import
this package to register their parsers, and the app (FastAPI, SQLAlchemy) costs seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavry.gateway.app import GatewayContext, create_app
    from wavry.gateway.sessions import Principal
    from wavry.gateway.settings import GatewaySettings

__all__ = ["GatewayContext", "GatewaySettings", "Principal", "create_app"]

_LAZY = {
    "GatewayContext": "wavry.gateway.app",
    "create_app": "wavry.gateway.app",
    "Principal": "wavry.gateway.sessions",
    "GatewaySettings": "wavry.gateway.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wavry.gateway' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
