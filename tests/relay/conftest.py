"""Shared relay test helpers: a test master key that signs leases (no master needed)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from wavry.relay.lease import LeaseClaims, LeaseVerifier, public_key_from_private, sign_lease
from wavry.rift.identity import Identity

RELAY_ID = "relay-test-1"
WALL0 = 1_700_000_000.0


@pytest.fixture(autouse=True, scope="module")
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Relays persist trust-on-first-use key pins under WAVRY_DATA_DIR: never the user's own.

    Module scope (not monkeypatch) so hypothesis tests in these modules can use it."""
    old = os.environ.get("WAVRY_DATA_DIR")
    os.environ["WAVRY_DATA_DIR"] = str(tmp_path_factory.mktemp("relay-data"))
    yield
    if old is None:
        os.environ.pop("WAVRY_DATA_DIR", None)
    else:
        os.environ["WAVRY_DATA_DIR"] = old


def wavry_id(seed_byte: int) -> str:
    return Identity.from_seed(bytes([seed_byte]) * 32).wavry_id


@dataclass
class Master:
    """Signs leases with a fixed test key."""

    seed: bytes = bytes(range(32))
    kid: str = "k-test"

    @property
    def public_key(self) -> bytes:
        return public_key_from_private(self.seed)

    def verifier(self, **kwargs: float) -> LeaseVerifier:
        return LeaseVerifier({self.kid: self.public_key}, **kwargs)

    def lease(
        self,
        sid: bytes,
        role: str,
        *,
        sub: str | None = None,
        rid: str = RELAY_ID,
        now: float = WALL0,
        ttl: float = 900.0,
        nbf: float | None = None,
        slimit: int = 50_000,
        hlimit: int = 100_000,
    ) -> str:
        claims = LeaseClaims(
            sub=sub or wavry_id(1 if role == "client" else 2),
            sid=str(uuid.UUID(bytes=sid)),
            role=role,
            rid=rid,
            iat=now,
            nbf=now - 5 if nbf is None else nbf,
            exp=now + ttl,
            slimit=slimit,
            hlimit=hlimit,
        )
        return sign_lease(claims, self.seed, self.kid)


@dataclass
class Sids:
    n: int = 0
    seen: list[bytes] = field(default_factory=list)

    def new(self) -> bytes:
        self.n += 1
        sid = uuid.UUID(int=(0xABCD << 64) | self.n).bytes
        self.seen.append(sid)
        return sid
