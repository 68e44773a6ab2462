"""Counters and gauges of the gateway, rendered as Prometheus text at ``/metrics``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["COUNTERS", "Metrics"]

#: every counter, with its help text (rendered even while zero)
COUNTERS: dict[str, str] = {
    "register_attempts": "Registration attempts",
    "register_success": "Accounts created",
    "login_attempts": "Login attempts",
    "login_success": "Successful logins",
    "login_failures": "Failed logins (unknown account, wrong password, wrong 2FA code)",
    "lockouts": "Login attempts refused by a lockout",
    "logout": "Sessions ended by logout",
    "totp_setup": "2FA set-ups started",
    "totp_enabled": "2FA enabled",
    "totp_disabled": "2FA disabled",
    "totp_replay_refused": "2FA codes refused as replays",
    "rate_limited": "Requests refused by a rate limit",
    "validation_errors": "Requests refused as malformed",
    "body_too_large": "Requests refused for their body size",
    "sessions_revoked": "Sessions revoked (user, admin, ban)",
    "bans": "Accounts banned",
    "wavry_id_bound": "Accounts bound to a Wavry ID",
    "admin_auth_failures": "Admin API calls with a missing or wrong token",
}

Gauge = Callable[[], Awaitable[float] | float]


class Metrics:
    """Named counters plus gauges registered by other parts (e.g. signaling connections)."""

    def __init__(self, prefix: str = "wavry_gateway") -> None:
        self.prefix = prefix
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._help = dict(COUNTERS)
        self._gauges: dict[str, tuple[str, Gauge]] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def add_counter(self, name: str, help_text: str) -> None:
        self.counters.setdefault(name, 0)
        self._help[name] = help_text

    def add_gauge(self, name: str, help_text: str, read: Gauge) -> None:
        """Register a gauge; ``read`` is called (and awaited if it returns an awaitable)."""
        self._gauges[name] = (help_text, read)

    async def render(self) -> str:
        lines: list[str] = []
        for name, value in sorted(self.counters.items()):
            full = f"{self.prefix}_{name}_total"
            lines += [f"# HELP {full} {self._help.get(name, name)}", f"# TYPE {full} counter",
                      f"{full} {value}"]  # fmt: skip
        for name, (help_text, read) in sorted(self._gauges.items()):
            raw = read()
            gauge: float = raw if isinstance(raw, int | float) else await raw
            full = f"{self.prefix}_{name}"
            lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge", f"{full} {gauge:g}"]
        return "\n".join(lines) + "\n"
