"""Request and response bodies of the master's HTTP API (published at ``/openapi.json``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_HEX = r"^[0-9a-fA-F]*$"
_Issue = Annotated[str, Field(max_length=64)]
_Feature = Annotated[str, Field(max_length=32)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str
    detail: list[dict[str, Any]] | None = None


class HealthBody(BaseModel):
    status: str
    ready: bool
    uptime_secs: float
    relays_registered: int
    relays_assignable: int
    signing_key_id: str
    provisioned_signing_key: bool
    lease_ttl_secs: int


class ReadyBody(BaseModel):
    ready: bool
    relays_assignable: int
    provisioned_signing_key: bool
    signing_key_id: str


class PublicKeyEntry(BaseModel):
    key_id: str
    public_key: str
    active: bool


class WellKnownBody(BaseModel):
    public_key: str
    key_id: str
    version: str
    keys: list[PublicKeyEntry]


class RelayRegisterRequest(_Body):
    relay_id: str = Field(min_length=1, max_length=64)
    endpoints: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=8)
    region: str | None = Field(default=None, max_length=64)
    asn: int | None = Field(default=None, ge=0, le=4_294_967_295)
    max_sessions: int = Field(default=100, ge=1, le=1_000_000)
    max_bitrate_kbps: int = Field(ge=0, le=100_000_000)
    features: list[_Feature] = Field(default_factory=list, max_length=16)


class RelayRegisterResponse(BaseModel):
    relay_id: str
    state: str
    heartbeat_interval_ms: int
    #: hex of the active lease-signing public key
    master_public_key: str
    master_key_id: str
    #: every key id -> hex public key relays must accept (rotation grace period included)
    trusted_keys: dict[str, str]


class HeartbeatRequest(_Body):
    relay_id: str = Field(min_length=1, max_length=64)
    load_pct: int = Field(ge=0, le=100)


class HeartbeatResponse(BaseModel):
    ok: bool
    state: str
    heartbeat_interval_ms: int


class RelayInfo(BaseModel):
    relay_id: str
    endpoints: list[str]
    region: str | None
    asn: int | None
    load_pct: int
    last_seen_ms_ago: int
    max_sessions: int
    max_bitrate_kbps: int
    state: str
    #: signed session feedback so far (docs/master.md): reports above 50 count as successes
    success_count: int = 0
    failure_count: int = 0
    #: EWMA of the reported quality scores, 50 before any report
    feedback_score: float = 50.0


class RegisterRequest(_Body):
    wavry_id: str = Field(min_length=1, max_length=64)
    display_name: str = Field(default="", max_length=64)


class LoginRequest(_Body):
    wavry_id: str = Field(min_length=1, max_length=64)


class ChallengeResponse(BaseModel):
    wavry_id: str
    #: hex of 32 random bytes; sign context + these bytes (see docs/master.md)
    challenge: str
    expires_at: float
    ttl_secs: float


class VerifyRequest(_Body):
    wavry_id: str = Field(min_length=1, max_length=64)
    challenge: str = Field(min_length=64, max_length=64, pattern=_HEX)
    signature_hex: str = Field(min_length=128, max_length=128, pattern=_HEX)


class RegisteredResponse(BaseModel):
    wavry_id: str
    display_name: str
    registered: bool


class LoginResponse(BaseModel):
    wavry_id: str
    token: str
    expires_at: float


class SessionRequest(_Body):
    target_wavry_id: str = Field(min_length=1, max_length=64)
    #: the role the requester will present to the relay
    role: Literal["client", "server"] = "client"
    region: str | None = Field(default=None, max_length=64)


class LeaseResponse(BaseModel):
    session_id: str
    relay_id: str
    relay_addr: str
    wavry_id: str
    role: str
    token: str
    key_id: str
    issued_at: float
    expires_at: float
    soft_kbps: int
    hard_kbps: int


class FeedbackRequest(_Body):
    session_id: str = Field(min_length=1, max_length=36)
    relay_id: str = Field(min_length=1, max_length=64)
    wavry_id: str = Field(min_length=1, max_length=64)
    quality_score: int = Field(ge=0, le=100)
    issues: list[_Issue] = Field(default_factory=list, max_length=16)
    signature: str = Field(min_length=128, max_length=128, pattern=_HEX)


class FeedbackResponse(BaseModel):
    accepted: bool


class UpdateStateRequest(_Body):
    relay_id: str = Field(min_length=1, max_length=64)
    new_state: Literal[
        "new", "probation", "active", "degraded", "draining", "quarantined", "banned"
    ]


class UpdateStateResponse(BaseModel):
    relay_id: str
    state: str


class RevokeRequest(_Body):
    wavry_id: str = Field(min_length=1, max_length=64)


class RevokeResponse(BaseModel):
    wavry_id: str
    banned: bool
    was_registered: bool


class AuditEntry(BaseModel):
    id: int
    created_at: float
    actor: str
    action: str
    target_type: str
    target_id: str | None
    outcome: str
    actor_ip_hash: str
    details: dict[str, Any] | None
