"""Settings of the signaling WebSocket (``SignalingSettings``; env ``WAVRY_WS_*`` as the original).

Nested in ``GatewaySettings`` as ``settings.signaling``. What the gateway already configures is
not repeated here: the origin allow-list (``WAVRY_ALLOWED_ORIGINS``), Redis (``WAVRY_REDIS_URL``),
the master's URL (``WAVRY_GATEWAY_MASTER_URL``) and proxy trust (``WAVRY_TRUST_PROXY_HEADERS``).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wavry.gateway.signaling.messages import MAX_FRAME_BYTES

__all__ = ["SignalingSettings"]

SERVICE_TOKEN_MIN_LENGTH = 32


class SignalingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAVRY_WS_", extra="ignore", populate_by_name=True)

    # --- who may open a socket ---
    #: a browser's Origin must be on ``WAVRY_ALLOWED_ORIGINS``; with this on, a request without
    #: Origin (a native client) is refused unless ``allow_missing_origin``
    require_origin: bool = True
    #: accept sockets without an Origin header (native clients); off by default
    allow_missing_origin: bool = False
    #: open sockets per client address (per replica) -> HTTP 429
    max_per_ip: int = Field(default=16, ge=1, le=100_000)
    #: open sockets in total (per replica) -> HTTP 503
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)

    # --- per socket ---
    #: largest text frame; also the server's WebSocket frame limit (ws_max_size)
    max_frame_bytes: int = Field(default=MAX_FRAME_BYTES, ge=1024, le=MAX_FRAME_BYTES)
    #: messages per connection per window (over -> ERROR rate_limited and close)
    msg_rate_limit: int = Field(default=600, ge=1)
    msg_rate_window_secs: float = Field(default=60.0, gt=0)
    #: BIND must arrive within this many seconds of the upgrade (a timer, not the next message)
    bind_timeout_secs: float = Field(default=10.0, gt=0, le=300)
    #: BIND attempts per client address per window (shared through Redis when configured).
    #: Generous: every `wavry connect` binds, and a carrier-grade NAT puts many users behind
    #: one address; the per-account limit below is the tight one.
    bind_rate_limit: int = Field(default=60, ge=1)
    bind_rate_window_secs: float = Field(default=60.0, gt=0)
    #: successful-token BINDs per account per ``bind_rate_window_secs``
    account_bind_rate_limit: int = Field(default=20, ge=1)
    #: messages queued towards one socket; a socket that does not read is closed beyond it
    send_queue: int = Field(default=256, ge=8, le=65_536)
    #: how long a host may answer / send candidates to a client after that client's offer
    rendezvous_ttl_secs: float = Field(default=300.0, gt=0)
    #: clients one host connection remembers as offerers (oldest forgotten beyond it)
    rendezvous_max: int = Field(default=256, ge=1, le=65_536)

    #: how long an allowed (sender, target) pair is remembered before the database is asked
    #: again; a removed share stops new offers within this time (0: ask every time). Refusals
    #: are never cached, and a revoked or banned user's entries are dropped at once.
    policy_cache_secs: float = Field(default=5.0, ge=0, le=300)
    policy_cache_max: int = Field(default=65_536, ge=1, le=10_000_000)

    # --- relay requests ---
    #: REQUEST_RELAY per account per window
    relay_rate_limit: int = Field(default=10, ge=1)
    relay_rate_window_secs: float = Field(default=60.0, gt=0)
    #: bearer token for the master's ``POST /v1/leases/session`` (the master's
    #: ``WAVRY_MASTER_GATEWAY_TOKEN``); unset: REQUEST_RELAY answers relay_unavailable
    master_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("WAVRY_GATEWAY_MASTER_TOKEN"),
    )
    #: total time budget of one lease request to the master
    master_timeout_secs: float = Field(default=5.0, gt=0, le=60)

    # --- several replicas (Redis) ---
    #: a binding's directory entry lives this long unless its replica refreshes it
    binding_ttl_secs: float = Field(default=60.0, ge=5, le=3600)
    #: prefix of every Redis key and channel of signaling (separate gateway clusters sharing one
    #: Redis use different prefixes)
    redis_prefix: str = Field(default="wavry:sig", pattern=r"^[A-Za-z0-9:_\-]{1,64}$")

    @field_validator("master_token", mode="after")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        if len(token) < SERVICE_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"WAVRY_GATEWAY_MASTER_TOKEN must be at least {SERVICE_TOKEN_MIN_LENGTH} "
                "characters (the same value as WAVRY_MASTER_GATEWAY_TOKEN on the master)"
            )
        return SecretStr(token)

    @property
    def missing_origin_ok(self) -> bool:
        return self.allow_missing_origin or not self.require_origin
