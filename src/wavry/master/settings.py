"""Settings of ``wavry master`` (pydantic-settings; env ``WAVRY_MASTER_*``, reference §6.4).

Secrets are ``SecretStr``. Zero configuration works on loopback for a local try-out;
``insecure_problems()`` lists what that mode leaves open, and the CLI refuses a public bind while
any of it is unresolved (unless ``WAVRY_MASTER_INSECURE_DEV=1``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wavry import paths

__all__ = ["ADMIN_TOKEN_MIN_LENGTH", "MasterSettings"]

ADMIN_TOKEN_MIN_LENGTH = 32
LEASE_TTL_MIN = 60
LEASE_TTL_MAX = 3600


class MasterSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WAVRY_MASTER_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    #: HTTP listen address, ``host:port``
    listen: str = "127.0.0.1:8080"
    allow_public_bind: bool = False
    #: run without the protections a public deployment needs (dev only; refused checks listed)
    insecure_dev: bool = False
    #: database URL; default SQLite at ``DATA_DIR/master.db``
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("WAVRY_DATABASE_URL")
    )
    data_dir: Path = Field(
        default_factory=paths.data_dir,
        validation_alias=AliasChoices("WAVRY_DATA_DIR"),
    )

    # --- signing keys (leases) ---
    #: hex Ed25519 seed (32 bytes) or seed‖public key (64 bytes, as the original)
    signing_key: SecretStr | None = None
    #: file holding the same hex
    key_file: Path | None = None
    #: key id; default ``k`` + hex(public_key[:8])
    key_id: str | None = None
    #: other public keys relays must keep accepting (rotation grace): ``kid:hex32,kid:hex32``
    trusted_public_keys: str = ""

    # --- service / admin auth ---
    #: bearer token relays present on register and heartbeat (``WAVRY_RELAY_MASTER_TOKEN``)
    relay_auth_token: SecretStr | None = None
    #: bearer token of the gateway (``WAVRY_GATEWAY_MASTER_TOKEN`` there) for the service lease
    #: route ``POST /v1/leases/session``; unset disables that route; >= 32 characters
    gateway_token: SecretStr | None = None
    admin_panel_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ADMIN_PANEL_TOKEN"),
    )
    #: key of the HMAC that hashes actor addresses in the audit log; default derived from the
    #: signing key, so hashes stay comparable across restarts
    audit_ip_key: SecretStr | None = None

    # --- leases ---
    lease_ttl_secs: int = 900
    lease_soft_kbps: int = Field(default=50_000, ge=1000)
    lease_hard_kbps: int = Field(default=100_000, ge=1000)
    #: leases per requester per sliding window
    lease_rate_limit: int = Field(default=10, ge=1)
    lease_rate_window_secs: float = Field(default=60.0, gt=0)

    # --- relays ---
    min_relay_bitrate_kbps: int = Field(default=10_000, ge=0)
    heartbeat_interval_ms: int = Field(default=5000, ge=500)
    #: a relay that missed this many heartbeats gets no new leases (long before quarantine)
    selection_missed_heartbeats: int = Field(default=3, ge=2, le=100)
    quarantine_after_secs: float = Field(default=120.0, gt=0)
    purge_after_secs: float = Field(default=600.0, gt=0)
    sweep_interval_secs: float = Field(default=30.0, gt=0)
    #: consecutive healthy heartbeats that take a relay from probation to active
    probation_heartbeats: int = Field(default=3, ge=1)
    degraded_load_pct: int = Field(default=95, ge=1, le=100)
    #: at most this many relays per network (0 = no limit)
    sybil_max_per_subnet: int = Field(default=5, ge=0)
    sybil_ipv4_prefix: int = Field(default=24, ge=8, le=32)
    sybil_ipv6_prefix: int = Field(default=48, ge=16, le=128)

    # --- identities ---
    challenge_ttl_secs: float = Field(default=300.0, gt=0)
    challenge_table_max: int = Field(default=10_000, ge=1)
    #: outstanding challenges per Wavry ID
    challenges_per_identity: int = Field(default=5, ge=1)
    token_ttl_secs: float = Field(default=86_400.0, gt=0)
    #: requests per client address per minute on the /v1/auth endpoints
    auth_rate_limit_per_min: int = Field(default=60, ge=1)
    #: feedback submissions per client address per minute (per Wavry ID when the gateway
    #: forwards them with its service token)
    feedback_rate_limit_per_min: int = Field(default=120, ge=1)

    @field_validator("lease_ttl_secs")
    @classmethod
    def _clamp_ttl(cls, value: int) -> int:
        return max(LEASE_TTL_MIN, min(LEASE_TTL_MAX, value))

    @field_validator("relay_auth_token", "signing_key", "audit_ip_key", mode="after")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("admin_panel_token", mode="after")
    @classmethod
    def _admin_token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        if len(token) < ADMIN_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"ADMIN_PANEL_TOKEN must be at least {ADMIN_TOKEN_MIN_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`); unset it to disable the admin API"
            )
        return SecretStr(token)

    @field_validator("gateway_token", mode="after")
    @classmethod
    def _gateway_token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        if len(token) < ADMIN_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"WAVRY_MASTER_GATEWAY_TOKEN must be at least {ADMIN_TOKEN_MIN_LENGTH} characters "
                "(e.g. `openssl rand -hex 32`); unset it to disable the gateway lease route"
            )
        return SecretStr(token)

    @model_validator(mode="after")
    def _consistent(self) -> MasterSettings:
        if self.lease_hard_kbps < self.lease_soft_kbps:
            raise ValueError("WAVRY_MASTER_LEASE_HARD_KBPS must be >= WAVRY_MASTER_LEASE_SOFT_KBPS")
        if self.purge_after_secs <= self.quarantine_after_secs:
            raise ValueError(
                "WAVRY_MASTER_PURGE_AFTER_SECS must exceed WAVRY_MASTER_QUARANTINE_AFTER_SECS"
            )
        return self

    @property
    def listen_host(self) -> str:
        host, _, _ = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        _, _, port = self.listen.rpartition(":")
        return int(port)

    @property
    def key_configured(self) -> bool:
        return self.signing_key is not None or self.key_file is not None

    def insecure_problems(self) -> list[str]:
        """What a public deployment would leave open with these settings."""
        problems = []
        if self.relay_auth_token is None:
            problems.append(
                "anyone can register relays: set WAVRY_MASTER_RELAY_AUTH_TOKEN (and the same "
                "value as WAVRY_RELAY_MASTER_TOKEN on each relay)"
            )
        if not self.key_configured:
            problems.append(
                "leases are signed with a key generated into the data directory: provision one "
                "with WAVRY_MASTER_SIGNING_KEY or WAVRY_MASTER_KEY_FILE"
            )
        return problems
