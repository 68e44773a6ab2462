"""Wavry gateway: accounts (Argon2id, TOTP 2FA, sessions), host sharing, Wavry ID binding,
admin API and signaling. ``create_app(settings)`` builds the FastAPI application."""

from __future__ import annotations

from wavry.gateway.app import GatewayContext, create_app
from wavry.gateway.sessions import Principal
from wavry.gateway.settings import GatewaySettings

__all__ = ["GatewayContext", "GatewaySettings", "Principal", "create_app"]
