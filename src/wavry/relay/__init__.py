"""``wavry relay``: the blind UDP forwarder peers meet at when no direct path can be punched.

Layers: ``wire`` (20-byte relay header and messages), ``lease`` (PASETO v4.public leases shared
with the master), ``core`` (sans-IO decisions and counters), ``settings`` (WAVRY_RELAY_* knobs),
``server`` (asyncio UDP, health/metrics HTTP, master registration) and ``cli``.
"""

from __future__ import annotations

from wavry.relay.core import OUTCOMES, Counters, RelayConfig, RelayCore, SessionInfo
from wavry.relay.lease import (
    LeaseClaims,
    LeaseRejected,
    LeaseVerifier,
    key_id_for,
    public_key_from_private,
    sign_lease,
)
from wavry.relay.wire import MessageType, RejectCode, RelayWireError, Role

__all__ = [
    "OUTCOMES",
    "Counters",
    "LeaseClaims",
    "LeaseRejected",
    "LeaseVerifier",
    "MessageType",
    "RejectCode",
    "RelayConfig",
    "RelayCore",
    "RelayWireError",
    "Role",
    "SessionInfo",
    "key_id_for",
    "public_key_from_private",
    "sign_lease",
]
