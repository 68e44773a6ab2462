"""Bind policy shared by every Wavry service: loopback always, anything else only on opt-in.

A service that listens on a public address by accident exposes a remote-control surface, so
binding beyond loopback needs an explicit setting, and the refusal names that setting.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["BindPolicyError", "check_bind", "is_loopback"]


class BindPolicyError(Exception):
    """A non-loopback bind without the opt-in."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, *, allow_public: bool, flag: str, env: str) -> None:
    """Raise ``BindPolicyError`` unless ``host`` is loopback or the user opted in."""
    if is_loopback(host) or allow_public:
        return
    raise BindPolicyError(
        f"refusing to listen on {host}: only loopback is allowed by default. To accept "
        f"connections from other machines pass {flag} (or set {env}=1), and make sure pairing "
        f"(allow-list) is configured."
    )
