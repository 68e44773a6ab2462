"""Settings of ``wavry relay`` (pydantic-settings; env ``WAVRY_RELAY_*``, reference §5.5).

Every knob of the original keeps its name and default, except where ``docs/relay.md`` says why:
``WAVRY_RELAY_LISTEN`` defaults to loopback (the original's 0.0.0.0 was refused by its own bind
policy), ``WAVRY_RELAY_ALLOW_HOST_PROD_BIND`` is gone (the public-bind opt-in is the decision),
and the original's CLI-only knobs (``--max-sessions`` …) are env knobs too. Zero configuration
runs on loopback for a local try-out; ``insecure_problems()`` lists what that leaves open.
"""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wavry import paths
from wavry.relay.core import RelayConfig
from wavry.relay.lease import key_id_for
from wavry.relay.pins import PIN_FILENAME

__all__ = ["RelaySettings", "parse_hostport", "parse_public_keys"]


def parse_hostport(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise ValueError(f"bad address {text!r}")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"address {text!r} needs a port")
        return host, default_port
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host or "127.0.0.1", port


def parse_public_keys(text: str) -> dict[str, bytes]:
    """``hex32`` or ``kid:hex32[,kid:hex32…]`` → {kid: key}. A bare key gets the default kid."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kid, sep, hexkey = item.rpartition(":")
        raw = bytes.fromhex(hexkey.strip())
        if len(raw) == 64:  # seed‖public as the original's key files: keep the public half
            raw = raw[32:]
        if len(raw) != 32:
            raise ValueError("a master public key is 32 bytes (64 hex characters)")
        keys[kid.strip() if sep else key_id_for(raw)] = raw
    return keys


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WAVRY_RELAY_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    #: UDP listen address
    listen: str = "127.0.0.1:4000"
    #: /health, /ready, /metrics listen address
    health_listen: str = "127.0.0.1:9091"
    master_url: str = Field(
        default="http://localhost:8080",
        validation_alias=AliasChoices("WAVRY_MASTER_URL", "WAVRY_RELAY_MASTER_URL"),
    )
    #: trusted lease keys: hex, or ``kid:hex,kid:hex`` during a rotation. Unset: trust the key the
    #: master returns at the first registration (pinned with a warning, and persisted in
    #: ``pin_file`` so a restart trusts the same key)
    master_public_key: str | None = None
    data_dir: Path = Field(
        default_factory=paths.data_dir,
        validation_alias=AliasChoices("WAVRY_DATA_DIR"),
    )
    #: where trust-on-first-use pins are kept; default ``$WAVRY_DATA_DIR/relay_master_pins.json``
    pin_file: Path | None = None
    #: bearer token for register/heartbeat (the master's WAVRY_MASTER_RELAY_AUTH_TOKEN)
    master_token: SecretStr | None = None
    #: do not register with a master at all (tests, benchmarks; needs master_public_key)
    no_master: bool = False
    allow_public_bind: bool = False
    #: accept a public bind without a master token or a configured key (not for production)
    allow_insecure_dev: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "WAVRY_RELAY_ALLOW_INSECURE_DEV",
            "WAVRY_ALLOW_INSECURE_RELAY",
        ),
    )
    #: default: a new UUIDv4 per start; `wavry relay` keeps one in DATA_DIR/relay_id instead
    relay_id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        min_length=1,
        max_length=64,
        validation_alias=AliasChoices("WAVRY_RELAY_ID", "WAVRY_RELAY_RELAY_ID"),
    )
    #: endpoints announced to the master, ``host:port`` comma list; default: the bound address,
    #: or for a wildcard bind the local address that routes to the master
    advertise: str = ""
    region: str | None = None
    asn: int | None = Field(default=None, ge=0, le=4_294_967_295)
    max_bitrate: int = Field(default=20_000, ge=0)
    ip_rate_limit_pps: int = Field(default=1000, ge=1)
    identity_rate_limit_pps: int = Field(default=200, ge=1)
    packet_queue_capacity: int = 2048
    max_sessions: int = Field(default=100, ge=1)
    idle_timeout: float = Field(default=60.0, gt=0)
    cleanup_interval_secs: float = Field(default=10.0, gt=0)
    lease_duration_secs: float = Field(default=300.0, gt=0)
    stats_log_interval_secs: float = 30.0
    load_shed_threshold_pct: int = 95
    #: Wavry IDs refused with reject 5 (comma list)
    banned_ids: str = ""
    log_level: str = "info"
    #: native FORWARD fast path: auto (on when the extension is built), on (required), off
    fastpath: str = "auto"

    @field_validator("packet_queue_capacity")
    @classmethod
    def _queue_min(cls, value: int) -> int:
        return max(64, value)

    @field_validator("fastpath")
    @classmethod
    def _fastpath_mode(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("auto", "on", "off"):
            raise ValueError("fastpath must be auto, on or off")
        return value

    @field_validator("stats_log_interval_secs")
    @classmethod
    def _stats_min(cls, value: float) -> float:
        return max(5.0, value)

    @field_validator("load_shed_threshold_pct")
    @classmethod
    def _clamp_pct(cls, value: int) -> int:
        return max(50, min(100, value))

    @field_validator("master_token", mode="after")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("master_public_key")
    @classmethod
    def _keys_parse(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_public_keys(value)
        return value

    @field_validator("listen", "health_listen")
    @classmethod
    def _addr_parses(cls, value: str) -> str:
        parse_hostport(value)
        return value

    @property
    def listen_addr(self) -> tuple[str, int]:
        return parse_hostport(self.listen)

    @property
    def health_addr(self) -> tuple[str, int]:
        return parse_hostport(self.health_listen)

    @property
    def trusted_keys(self) -> dict[str, bytes]:
        return parse_public_keys(self.master_public_key or "")

    @property
    def pin_path(self) -> Path:
        return self.pin_file or self.data_dir / PIN_FILENAME

    @property
    def banned(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.banned_ids.split(",") if part.strip())

    def core_config(self) -> RelayConfig:
        return RelayConfig(
            max_sessions=self.max_sessions,
            load_shed_threshold_pct=self.load_shed_threshold_pct,
            ip_rate_limit_pps=self.ip_rate_limit_pps,
            identity_rate_limit_pps=self.identity_rate_limit_pps,
            idle_timeout=self.idle_timeout,
            lease_duration=self.lease_duration_secs,
            cleanup_interval=self.cleanup_interval_secs,
        )

    def insecure_problems(self) -> list[str]:
        """What a public deployment would leave open with these settings."""
        problems = []
        if not self.no_master and self.master_token is None:
            problems.append(
                "registration is unauthenticated: set WAVRY_RELAY_MASTER_TOKEN (the master's "
                "WAVRY_MASTER_RELAY_AUTH_TOKEN)"
            )
        if self.master_public_key is None:
            problems.append(
                "the lease-signing key is trusted on first use from whoever answers at "
                f"{self.master_url}: set WAVRY_RELAY_MASTER_PUBLIC_KEY"
            )
        if not self.no_master and self.master_url.startswith("http://"):
            host = self.master_url[7:].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
            if not _is_loopback_name(host):
                problems.append(
                    f"the master is reached over plain HTTP ({self.master_url}): the service "
                    "token and the pinned key travel unencrypted; use https://"
                )
        return problems


def _is_loopback_name(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
