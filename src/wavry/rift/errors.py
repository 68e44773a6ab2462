"""Error taxonomy of the RIFT core.

Two families, as in h11: ``LocalProtocolError`` is *our* misuse of the API (a bug in the caller);
``RemoteProtocolError`` is the *peer's* (or the network's) fault. A remote error never escapes the
connection object: it becomes a dropped datagram counted under a ``DropReason``, or a close with a
reason.
"""

from __future__ import annotations

import enum

__all__ = [
    "DropReason",
    "HandshakeError",
    "HostKeyChangedError",
    "IdentityError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RiftError",
]


class DropReason(enum.Enum):
    """Why an incoming datagram was discarded. Each has its own counter."""

    TOO_SHORT = "too_short"
    OVERSIZE = "oversize"
    BAD_MAGIC = "bad_magic"
    BAD_VERSION = "bad_version"
    BAD_CRC = "bad_crc"
    UNKNOWN_ALIAS = "unknown_alias"
    UNKNOWN_HANDSHAKE = "unknown_handshake"
    HANDSHAKE_FAILED = "handshake_failed"
    DUPLICATE_HANDSHAKE = "duplicate_handshake"
    REPLAY = "replay"
    DECRYPT_FAILED = "decrypt_failed"
    MALFORMED_MESSAGE = "malformed_message"
    UNEXPECTED_MESSAGE = "unexpected_message"
    WRONG_STATE = "wrong_state"
    STALE_KEY_EPOCH = "stale_key_epoch"
    FEC_INVALID = "fec_invalid"
    MEDIA_INVALID = "media_invalid"
    CLOSED = "closed"
    RATE_LIMITED = "rate_limited"


class RiftError(Exception):
    """Base of every error raised by ``wavry.rift``."""


class LocalProtocolError(RiftError):
    """The caller used the API wrongly (wrong state, bad argument). A bug on our side."""


class RemoteProtocolError(RiftError):
    """The peer or the network sent something invalid. Carries the drop reason."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class HandshakeError(RemoteProtocolError):
    """A Noise handshake message failed to parse or authenticate."""

    def __init__(self, detail: str) -> None:
        super().__init__(DropReason.HANDSHAKE_FAILED, detail)


class IdentityError(RemoteProtocolError):
    """The peer's identity payload is missing, malformed or its signature does not verify."""

    def __init__(self, detail: str) -> None:
        super().__init__(DropReason.HANDSHAKE_FAILED, detail)


class HostKeyChangedError(RiftError):
    """A pinned host presented a different identity than the one recorded on first use."""

    def __init__(self, host: str, expected_id: str, presented_id: str) -> None:
        super().__init__(
            f"the identity of host {host!r} changed: known as {expected_id}, now presents "
            f"{presented_id}. This may be an attack (someone in the middle) or the host was "
            f"re-installed. If you trust the change, remove the entry for {host!r} from your "
            f"known-hosts file (wavry known-hosts forget {host}) and connect again."
        )
        self.host = host
        self.expected_id = expected_id
        self.presented_id = presented_id
