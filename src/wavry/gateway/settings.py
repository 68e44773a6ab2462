"""Settings of ``wavry gateway`` (pydantic-settings; env ``WAVRY_GATEWAY_*`` plus the original's
names where it had one: ``ADMIN_PANEL_TOKEN``, ``WAVRY_TOTP_KEY_B64``, ``WAVRY_ALLOWED_ORIGINS``,
``WAVRY_TRUST_PROXY_HEADERS``, ``WAVRY_REDIS_URL``, ``WAVRY_DATABASE_URL``, ...; reference §7).

Secrets are ``SecretStr``. Zero configuration works on loopback for a local try-out;
``insecure_problems()`` lists what that leaves open and the CLI refuses a public bind while any of
it is unresolved.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wavry import paths
from wavry.gateway.signaling.settings import SignalingSettings

__all__ = [
    "ADMIN_TOKEN_MIN_LENGTH",
    "DEFAULT_ALLOWED_ORIGINS",
    "GatewaySettings",
    "TotpKeyError",
]

ADMIN_TOKEN_MIN_LENGTH = 32
DEFAULT_ALLOWED_ORIGINS = (
    "http://localhost:1420",
    "http://127.0.0.1:1420",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "tauri://localhost",
)


class TotpKeyError(ValueError):
    """``WAVRY_TOTP_KEY_B64`` is not 32 bytes of base64."""


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WAVRY_GATEWAY_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    # --- listening ---
    #: HTTP listen address, ``host:port``
    listen: str = "127.0.0.1:3000"
    #: allow a non-loopback listen address (the original's ``WAVRY_ALLOW_PUBLIC_BIND``)
    allow_public_bind: bool = Field(
        default=False,
        validation_alias=_alias("WAVRY_ALLOW_PUBLIC_BIND", "WAVRY_GATEWAY_ALLOW_PUBLIC_BIND"),
    )  # fmt: skip
    #: run a public bind with the insecure defaults (dev only)
    insecure_dev: bool = False
    #: ``production`` turns every insecure fallback off (``WAVRY_ENVIRONMENT``)
    environment: str = Field(default="development", validation_alias=_alias("WAVRY_ENVIRONMENT"))

    # --- storage ---
    #: database URL; default SQLite at ``DATA_DIR/gateway.db``
    database_url: str | None = Field(default=None, validation_alias=_alias("WAVRY_DATABASE_URL"))
    data_dir: Path = Field(
        default_factory=paths.data_dir, validation_alias=_alias("WAVRY_DATA_DIR")
    )
    #: Redis for shared rate limits and signaling fan-out across replicas (unset: in-process)
    redis_url: SecretStr | None = Field(default=None, validation_alias=_alias("WAVRY_REDIS_URL"))

    # --- secrets ---
    admin_panel_token: SecretStr | None = Field(
        default=None, validation_alias=_alias("ADMIN_PANEL_TOKEN")
    )
    #: 32 bytes, base64: encrypts TOTP secrets at rest
    totp_key_b64: SecretStr | None = Field(
        default=None, validation_alias=_alias("WAVRY_TOTP_KEY_B64")
    )
    #: previous TOTP keys (comma-separated base64, 32 bytes each) still accepted for reading
    #: during a rotation; `wavry gateway db rekey-totp` re-seals every secret under the current
    #: key, then remove them
    totp_previous_keys_b64: SecretStr | None = Field(
        default=None, validation_alias=_alias("WAVRY_TOTP_PREVIOUS_KEYS_B64")
    )
    #: store TOTP secrets in plaintext when no key is set (refused when production)
    allow_insecure_totp: bool = Field(
        default=False, validation_alias=_alias("WAVRY_ALLOW_INSECURE_TOTP")
    )
    #: HMAC key for the actor-address hashes in the audit log and the per-IP lockout keys; set
    #: the same value on every replica. Unset: a key generated into ``DATA_DIR``.
    audit_ip_key: SecretStr | None = None

    # --- HTTP edge ---
    #: origins allowed for CORS and for the signaling WebSocket (comma-separated)
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_ORIGINS),
        validation_alias=_alias("WAVRY_ALLOWED_ORIGINS"),
    )
    cors_allow_any: bool = Field(default=False, validation_alias=_alias("WAVRY_CORS_ALLOW_ANY"))
    #: take the client address from X-Forwarded-For / X-Real-IP (only behind a trusted proxy)
    trust_proxy_headers: bool = Field(
        default=False, validation_alias=_alias("WAVRY_TRUST_PROXY_HEADERS")
    )
    #: how many trusted proxies append to X-Forwarded-For (the client is that many from the right)
    trusted_proxy_hops: int = Field(default=1, ge=1, le=10)
    #: largest accepted request body
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=10 * 1024 * 1024)
    #: the master, for "relays as the master sees them" and relay leases (e.g. http://127.0.0.1:8080)
    master_url: str | None = None

    #: the signaling WebSocket (env ``WAVRY_WS_*``, see docs/signaling.md)
    signaling: SignalingSettings = Field(default_factory=SignalingSettings)

    # --- sessions ---
    session_ttl_secs: float = Field(default=86_400.0, gt=0)
    #: sessions one account may hold; the oldest is revoked beyond it
    max_sessions_per_user: int = Field(default=20, ge=1, le=1000)
    sweep_interval_secs: float = Field(default=300.0, gt=0)

    # --- passwords (Argon2id; production defaults m=19456 KiB, t=2, p=1) ---
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    #: concurrent Argon2 computations (each holds memory_kib): excess logins queue
    argon2_max_concurrency: int = Field(default=4, ge=1, le=256)

    # --- lockout (per account and per IP) ---
    lockout_threshold: int = Field(default=5, ge=1)
    #: first lock duration; doubles with each further failure
    lockout_base_secs: float = Field(default=60.0, gt=0)
    lockout_max_secs: float = Field(default=3600.0, gt=0)
    #: failures older than this are forgotten
    lockout_reset_secs: float = Field(default=86_400.0, gt=0)

    # --- rate limits (fixed windows) ---
    auth_rate_limit: int = Field(default=20, ge=1)
    auth_rate_window_secs: float = Field(default=60.0, gt=0)
    #: per-account attempts (login, 2FA) per window
    account_rate_limit: int = Field(default=10, ge=1)
    account_rate_window_secs: float = Field(default=60.0, gt=0)
    post_auth_rate_limit: int = Field(default=60, ge=1)
    post_auth_rate_window_secs: float = Field(default=60.0, gt=0)
    admin_rate_limit: int = Field(default=60, ge=1)
    admin_rate_window_secs: float = Field(default=60.0, gt=0)
    #: every request per client address (except /, /health, /ready, /metrics)
    global_rate_limit: int = Field(default=600, ge=1)
    global_rate_window_secs: float = Field(default=60.0, gt=0)
    rate_max_keys: int = Field(default=100_000, ge=16)

    # --- TOTP ---
    #: seconds a generated-but-not-enabled TOTP secret stays pending
    totp_setup_ttl_secs: float = Field(default=600.0, gt=0)
    totp_issuer: str = Field(default="Wavry", min_length=1, max_length=64)

    # --- Wavry ID binding challenge ---
    challenge_ttl_secs: float = Field(default=300.0, gt=0)
    challenges_per_user: int = Field(default=5, ge=1)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator(
        "redis_url", "totp_key_b64", "totp_previous_keys_b64", "audit_ip_key", mode="after"
    )
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("master_url", mode="after")
    @classmethod
    def _master_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("WAVRY_GATEWAY_MASTER_URL must start with http:// or https://")
        return value

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

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        self.totp_key()  # raises on a malformed key
        self.totp_previous_keys()
        if self.production and self.allow_insecure_totp:
            raise ValueError(
                "WAVRY_ALLOW_INSECURE_TOTP is refused when WAVRY_ENVIRONMENT=production"
            )
        if self.lockout_max_secs < self.lockout_base_secs:
            raise ValueError("lockout_max_secs must be >= lockout_base_secs")
        self.listen_port  # noqa: B018 - validates the port
        return self

    @property
    def production(self) -> bool:
        return self.environment.strip().lower() in ("production", "prod")

    def totp_key(self) -> bytes | None:
        """The 32-byte TOTP encryption key, or ``None`` when unset."""
        if self.totp_key_b64 is None:
            return None
        try:
            key = base64.b64decode(self.totp_key_b64.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise TotpKeyError("WAVRY_TOTP_KEY_B64 is not valid base64") from None
        if len(key) != 32:
            raise TotpKeyError(f"WAVRY_TOTP_KEY_B64 must decode to 32 bytes, not {len(key)}")
        return key

    def totp_previous_keys(self) -> list[bytes]:
        """The previous TOTP keys of a rotation (``WAVRY_TOTP_PREVIOUS_KEYS_B64``)."""
        if self.totp_previous_keys_b64 is None:
            return []
        keys = []
        for n, part in enumerate(self.totp_previous_keys_b64.get_secret_value().split(","), 1):
            try:
                key = base64.b64decode(part.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise TotpKeyError(
                    f"WAVRY_TOTP_PREVIOUS_KEYS_B64 entry {n} is not base64"
                ) from None
            if len(key) != 32:
                raise TotpKeyError(
                    f"WAVRY_TOTP_PREVIOUS_KEYS_B64 entry {n} must decode to 32 bytes, "
                    f"not {len(key)}"
                )
            keys.append(key)
        return keys

    @property
    def totp_plaintext_allowed(self) -> bool:
        return self.allow_insecure_totp and not self.production

    @property
    def listen_host(self) -> str:
        host, _, _ = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        _, _, port = self.listen.rpartition(":")
        try:
            value = int(port)
        except ValueError:
            raise ValueError(f"listen address {self.listen!r} needs host:port") from None
        if not 0 <= value <= 65535:
            raise ValueError(f"port {value} out of range")
        return value

    def resolved_database_url(self) -> str:
        from wavry.storage.engine import database_url

        return self.database_url or database_url(
            {"WAVRY_DATA_DIR": str(self.data_dir)}, filename="gateway.db"
        )

    def insecure_problems(self) -> list[str]:
        """What a public deployment would leave open with these settings (refused unless
        ``insecure_dev``)."""
        problems = []
        if self.allow_insecure_totp and self.totp_key_b64 is None:
            problems.append(
                "WAVRY_ALLOW_INSECURE_TOTP=1 stores TOTP secrets in plaintext: set "
                "WAVRY_TOTP_KEY_B64 instead (`openssl rand -base64 32`)"
            )
        if self.cors_allow_any:
            problems.append("WAVRY_CORS_ALLOW_ANY=1 lets any web origin call the API")
        return problems

    def warnings(self) -> list[str]:
        """Missing optional pieces worth a start-up warning."""
        notes = []
        if self.totp_key_b64 is None and not self.allow_insecure_totp:
            notes.append(
                "2FA cannot be enabled: set WAVRY_TOTP_KEY_B64 (32 random bytes, base64: "
                "`openssl rand -base64 32`)"
            )
        if self.admin_panel_token is None:
            notes.append("admin API disabled: set ADMIN_PANEL_TOKEN (at least 32 characters)")
        if self.audit_ip_key is None:
            notes.append(
                "WAVRY_GATEWAY_AUDIT_IP_KEY unset: address hashes use a key generated into the "
                "data directory (set one shared value when running several replicas)"
            )
        return notes
