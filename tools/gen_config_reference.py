"""Generate docs/configuration.md from the settings models of every component.

Usage: uv run python -m tools.gen_config_reference [--check]

The code is the source of truth. Gateway, signaling, master and relay settings are
pydantic-settings models: their environment variable names come from ``env_prefix``,
``validation_alias`` / ``AliasChoices`` and ``env_nested_delimiter`` exactly as pydantic-settings
resolves them; types, defaults and constraints from the field definitions; descriptions from
``Field(description=...)`` or the ``#:`` comment block above the field in the source. The host
and client settings are frozen dataclasses filled from ``wavry host`` / ``wavry connect`` flags:
their flags are taken from the real argparse parsers. ``--check`` exits 1 when the committed file
differs from what this would write (tests/tools/test_config_reference.py runs it).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

#: descriptions for fields whose source has neither ``description=`` nor a ``#:`` comment
#: ("Model.field"); a field with neither is an error (so a new knob is never undocumented)
EXTRA_DESCRIPTIONS: dict[str, str] = {
    # gateway
    "GatewaySettings.data_dir": "data directory: SQLite database, generated address-hash key",
    "GatewaySettings.admin_panel_token": "admin API and `/admin` dashboard bearer token "
    "(unset: admin API disabled)",
    "GatewaySettings.cors_allow_any": "allow any web origin (refused on a public bind "
    "without `--insecure-dev`)",
    "GatewaySettings.session_ttl_secs": "lifetime of a login session",
    "GatewaySettings.sweep_interval_secs": "purge of expired sessions, stale lockout failures, "
    "ended bans, expired challenges",
    "GatewaySettings.argon2_memory_kib": "Argon2id memory cost (KiB)",
    "GatewaySettings.argon2_time_cost": "Argon2id iterations",
    "GatewaySettings.argon2_parallelism": "Argon2id lanes",
    "GatewaySettings.lockout_threshold": "failures (per account and per address) before a lock",
    "GatewaySettings.lockout_max_secs": "longest lock",
    "GatewaySettings.auth_rate_limit": "register, login and 2FA requests per client address "
    "per window",
    "GatewaySettings.auth_rate_window_secs": "window of `auth_rate_limit`",
    "GatewaySettings.account_rate_window_secs": "window of `account_rate_limit`",
    "GatewaySettings.post_auth_rate_limit": "logout and share requests per account per window",
    "GatewaySettings.post_auth_rate_window_secs": "window of `post_auth_rate_limit`",
    "GatewaySettings.admin_rate_limit": "admin API requests per client address per window "
    "(checked before the token)",
    "GatewaySettings.admin_rate_window_secs": "window of `admin_rate_limit`",
    "GatewaySettings.global_rate_window_secs": "window of `global_rate_limit`",
    "GatewaySettings.rate_max_keys": "keys of the in-memory rate limiter table (full: pruned, "
    "then refused)",
    "GatewaySettings.totp_issuer": "issuer shown by authenticator apps",
    "GatewaySettings.challenge_ttl_secs": "lifetime of a Wavry ID binding challenge",
    "GatewaySettings.challenges_per_user": "pending binding challenges per account",
    # signaling
    "SignalingSettings.msg_rate_window_secs": "window of `msg_rate_limit`",
    "SignalingSettings.bind_rate_window_secs": "window of `bind_rate_limit`",
    "SignalingSettings.policy_cache_max": "entries of the policy cache",
    "SignalingSettings.relay_rate_window_secs": "window of `relay_rate_limit`",
    # master
    "MasterSettings.allow_public_bind": "allow a non-loopback listen address",
    "MasterSettings.data_dir": "data directory: SQLite database, generated signing key",
    "MasterSettings.admin_panel_token": "admin API bearer token (unset: admin API disabled)",
    "MasterSettings.lease_ttl_secs": "lease validity",
    "MasterSettings.lease_soft_kbps": "soft bitrate cap written into leases (reported by relays)",
    "MasterSettings.lease_hard_kbps": "hard bitrate cap written into leases (enforced by relays)",
    "MasterSettings.lease_rate_window_secs": "sliding window of `lease_rate_limit`",
    "MasterSettings.min_relay_bitrate_kbps": "registration refuses relays advertising less",
    "MasterSettings.heartbeat_interval_ms": "heartbeat interval told to relays",
    "MasterSettings.quarantine_after_secs": "a silent relay is quarantined after this",
    "MasterSettings.purge_after_secs": "a silent relay (not banned) is deleted after this",
    "MasterSettings.sweep_interval_secs": "how often the sweeper quarantines and purges",
    "MasterSettings.degraded_load_pct": "load at which a relay becomes `degraded`",
    "MasterSettings.sybil_ipv4_prefix": "IPv4 network size for the sybil limit",
    "MasterSettings.sybil_ipv6_prefix": "IPv6 network size for the sybil limit",
    "MasterSettings.challenge_ttl_secs": "lifetime of an identity challenge",
    "MasterSettings.challenge_table_max": "outstanding identity challenges in total",
    "MasterSettings.token_ttl_secs": "lifetime of an identity login token",
    # relay
    "RelaySettings.master_url": "the master's base URL (use https:// beyond loopback)",
    "RelaySettings.data_dir": "data directory: the trust-on-first-use key pin file",
    "RelaySettings.allow_public_bind": "allow a non-loopback UDP or health address",
    "RelaySettings.region": "region sent at registration (selection prefers the peer's region)",
    "RelaySettings.asn": "autonomous system number sent at registration (at most 2 relays per "
    "ASN among the candidates)",
    "RelaySettings.max_bitrate": "kbit/s advertised to the master (which refuses less than its "
    "`min_relay_bitrate_kbps`)",
    "RelaySettings.ip_rate_limit_pps": "control messages and non-peer FORWARDs per source "
    "address per second",
    "RelaySettings.identity_rate_limit_pps": "lease presents and renews per Wavry ID per second",
    "RelaySettings.packet_queue_capacity": "inbound datagram queue (full: "
    "`backpressure_dropped_packets`)",
    "RelaySettings.max_sessions": "session table size",
    "RelaySettings.idle_timeout": "seconds without traffic before a session is removed",
    "RelaySettings.cleanup_interval_secs": "how often expired and idle sessions are removed",
    "RelaySettings.lease_duration_secs": "relay-side lease per ACK/renew (capped by the token's "
    "expiry)",
    "RelaySettings.stats_log_interval_secs": "interval of the one-line stats log",
    "RelaySettings.load_shed_threshold_pct": "new sessions are refused (reject 4) above this "
    "share of `max_sessions`; 100 disables shedding",
    "RelaySettings.log_level": "debug, info, warning",
    # host
    "HostSettings.listen_host": "address to listen on (loopback unless the public-bind opt-in)",
    "HostSettings.port": "UDP port (0 = any)",
    "HostSettings.capture": "screen source: auto (X11 when $DISPLAY works, else testsrc), x11, "
    "testsrc",
    "HostSettings.testsrc_pattern": "test source content: desktop or game",
    "HostSettings.monitor": "monitor id to capture (X11; unset: the default monitor)",
    "HostSettings.width": "stream width",
    "HostSettings.height": "stream height",
    "HostSettings.fps": "frame rate",
    "HostSettings.bitrate_kbps": "initial bitrate (kbit/s)",
    "HostSettings.max_bitrate_kbps": "ceiling for DELTA rate control (kbit/s)",
    "HostSettings.encoder": "FFmpeg encoder name, e.g. libx264 (auto: probe)",
    "HostSettings.keyframe_interval_ms": "ms between periodic keyframes (plus on request)",
    "HostSettings.allow": "allowed client Wavry IDs (the CLI keeps them in "
    "`DATA_DIR/allowed_clients`)",
    "HostSettings.input_backend": "input injection: auto, xtest, uinput, none",
    "HostSettings.mdns": "advertise `_wavry._udp.local.` on the LAN",
    "HostSettings.idle_timeout": "seconds of client silence before the session closes",
    "HostSettings.data_dir": "identity, allow-list",
    # client
    "ClientSettings.host": "the host's address",
    "ClientSettings.port": "the host's UDP port",
    "ClientSettings.client_name": "name sent in the RIFT Hello",
    "ClientSettings.codecs": "codecs offered, in preference order",
    "ClientSettings.max_width": "largest stream width accepted",
    "ClientSettings.max_height": "largest stream height accepted",
    "ClientSettings.max_fps": "highest frame rate accepted",
    "ClientSettings.headless": "decode without a window",
    "ClientSettings.fullscreen": "start fullscreen",
    "ClientSettings.relative_mouse": "pointer-lock mode for games",
    "ClientSettings.run_for": "disconnect after this many seconds (unset: stay connected)",
}

#: what each field validator does ("Model.validator"); an undescribed validator is an error
VALIDATOR_NOTES: dict[str, str] = {
    "GatewaySettings._split_origins": "comma-separated; blanks dropped, trailing `/` removed",
    "GatewaySettings._blank_is_unset": "blank = unset",
    "GatewaySettings._master_url": "must start with `http://` or `https://`; blank = unset",
    "GatewaySettings._admin_token_strength": "at least 32 characters or start-up fails; "
    "blank = unset",
    "SignalingSettings._token": "at least 32 characters or start-up fails; blank = unset",
    "MasterSettings._clamp_ttl": "clamped to 60..3600",
    "MasterSettings._blank_is_unset": "blank = unset",
    "MasterSettings._admin_token_strength": "at least 32 characters or start-up fails; "
    "blank = unset",
    "MasterSettings._gateway_token_strength": "at least 32 characters or start-up fails; "
    "blank = unset",
    "RelaySettings._queue_min": "raised to at least 64",
    "RelaySettings._stats_min": "raised to at least 5",
    "RelaySettings._clamp_pct": "clamped to 50..100",
    "RelaySettings._blank_is_unset": "blank = unset",
    "RelaySettings._keys_parse": "`hex32` or `kid:hex32,...` (a 64-byte seed+public keeps the "
    "public half); blank = unset",
    "RelaySettings._addr_parses": "`host:port` or `[v6]:port`",
    "RelaySettings._fastpath_mode": "`auto`, `on` or `off` (case-insensitive)",
}

#: cross-field rules (model validators), per model, written out because they are code
MODEL_RULES: dict[str, list[str]] = {
    "GatewaySettings": [
        "`WAVRY_TOTP_KEY_B64` must be valid base64 of exactly 32 bytes.",
        "`WAVRY_ALLOW_INSECURE_TOTP` is refused when `WAVRY_ENVIRONMENT` is `production` "
        "(or `prod`).",
        "`lockout_max_secs` must be >= `lockout_base_secs`.",
        "`listen` must be `host:port` with a port in 0..65535.",
    ],
    "MasterSettings": [
        "`WAVRY_MASTER_LEASE_HARD_KBPS` must be >= `WAVRY_MASTER_LEASE_SOFT_KBPS`.",
        "`WAVRY_MASTER_PURGE_AFTER_SECS` must exceed `WAVRY_MASTER_QUARANTINE_AFTER_SECS`.",
    ],
}

#: default_factory results that depend on the machine or the moment, shown as words
FACTORY_DEFAULTS: dict[str, str] = {
    "GatewaySettings.data_dir": "`$XDG_DATA_HOME/wavry` (`~/.local/share/wavry`)",
    "MasterSettings.data_dir": "`$XDG_DATA_HOME/wavry` (`~/.local/share/wavry`)",
    "RelaySettings.data_dir": "`$XDG_DATA_HOME/wavry` (`~/.local/share/wavry`)",
    "RelaySettings.relay_id": "a new UUIDv4 per start",
    "HostSettings.data_dir": "`WAVRY_DATA_DIR`, else `$XDG_DATA_HOME/wavry`",
    "HostSettings.allow_public_bind": "off unless `WAVRY_HOST_ALLOW_PUBLIC_BIND` is 1/true/yes/on",
}

#: dataclass field -> (CLI flag, environment variable) of wavry host / wavry connect. The test
#: checks every flag named here exists in the real parser.
HOST_FLAGS: dict[str, tuple[str, str]] = {
    "listen_host": ("--listen", ""),
    "port": ("--port", ""),
    "allow_public_bind": ("--public", "WAVRY_HOST_ALLOW_PUBLIC_BIND"),
    "capture": ("--capture", ""),
    "testsrc_pattern": ("--pattern", ""),
    "monitor": ("--monitor", ""),
    "width": ("--resolution WxH", ""),
    "height": ("--resolution WxH", ""),
    "fps": ("--fps", ""),
    "bitrate_kbps": ("--bitrate", ""),
    "max_bitrate_kbps": ("--max-bitrate", ""),
    "codecs": ("--codec (repeatable)", ""),
    "encoder": ("--encoder", ""),
    "keyframe_interval_ms": ("--keyframe-interval", ""),
    "pairing": ("--pairing", ""),
    "allow": ("--allow (repeatable)", ""),
    "input_backend": ("--input", ""),
    "mdns": ("--no-mdns (turns it off)", ""),
    "idle_timeout": ("--idle-timeout", ""),
    "data_dir": ("", "WAVRY_DATA_DIR"),
    "run_for": ("--run-for", ""),
    "impair": ("--impair", ""),
}
CLIENT_FLAGS: dict[str, tuple[str, str]] = {
    "host": ("HOST[:PORT] argument", ""),
    "port": ("HOST[:PORT] argument (default 4444)", ""),
    "client_name": ("", ""),
    "codecs": ("", ""),
    "max_width": ("", ""),
    "max_height": ("", ""),
    "max_fps": ("", ""),
    "max_bitrate_kbps": ("--max-bitrate", ""),
    "headless": ("--headless", ""),
    "fullscreen": ("--fullscreen", ""),
    "relative_mouse": ("--relative-mouse", ""),
    "same_clock": ("(set when HOST is loopback)", ""),
    "run_for": ("--seconds", ""),
    "monitor": ("--monitor", ""),
    "impair": ("--impair", ""),
}


@dataclass(frozen=True)
class Row:
    """One documented setting."""

    model: str
    field: str
    env: tuple[str, ...]
    type: str
    default: str
    constraints: str
    description: str


# --- source comments ------------------------------------------------------------------------


def source_comments(cls: type) -> dict[str, str]:
    """``#:`` comment blocks directly above each annotated field of ``cls`` (or a trailing
    ``# ...`` comment on the field's own line), joined into one line per field."""
    src_lines, _ = inspect.getsourcelines(cls)
    source = textwrap.dedent("".join(src_lines))
    lines = source.splitlines()
    tree = ast.parse(source)
    klass = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    found: dict[str, str] = {}
    for node in klass.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        parts: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#:"):
            parts.insert(0, lines[i].strip()[2:].strip())
            i -= 1
        if not parts:
            own = lines[node.lineno - 1]
            if "  # " in own and "fmt:" not in own and "noqa" not in own:
                parts.append(own.split("  # ", 1)[1].strip())
        if parts:
            found[node.target.id] = " ".join(parts)
    return found


# --- type, default and constraint rendering -------------------------------------------------


def render_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return render_type(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " | ".join(render_type(a) for a in args)
        return f"{inner} (optional)" if len(args) < len(typing.get_args(tp)) else inner
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list of {render_type(args[0])}" if args else "list"
    if type(tp).__name__ == "EnumTypeWrapper":  # a protobuf enum (rift_pb2.Codec)
        return "codec"
    name = getattr(tp, "__name__", None)
    if name is None:
        raise RuntimeError(f"cannot render the type {tp!r}: teach render_type")
    if name == "SecretStr":
        return "secret"
    return str(name)


def _is_secret(tp: Any) -> bool:
    return "SecretStr" in str(tp)


def render_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        if not value:
            return "empty"
        return ", ".join(f"`{v}`" for v in value)
    if isinstance(value, str):
        return f"`{value}`" if value else "empty"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def render_constraints(metadata: list[Any]) -> list[str]:
    out = []
    names = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    for item in metadata:
        for attr, symbol in names.items():
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{symbol} {value}")
        for attr, label in (("min_length", "length >="), ("max_length", "length <=")):
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{label} {value}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            out.append(f"matches `{pattern}`")
    return out


# --- pydantic-settings models ---------------------------------------------------------------


def env_names(model: type, name: str, field: Any, prefix_path: tuple[str, ...] = ()) -> list[str]:
    """The environment variables pydantic-settings reads for ``field`` (upper-cased; the
    lookup is case-insensitive)."""
    from pydantic import AliasChoices, AliasPath

    config = model.model_config  # type: ignore[attr-defined]
    alias = field.validation_alias
    names: list[str] = []
    if alias is None:
        names.append(f"{config.get('env_prefix', '')}{name}".upper())
    else:
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            if isinstance(choice, AliasPath):
                continue
            names.append(str(choice).upper())
    return [n for n in dict.fromkeys(names) if n]


def pydantic_rows(model: type, *, parent: tuple[type, str] | None = None) -> Iterator[Row]:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    comments = source_comments(model)
    validators: dict[str, list[str]] = {}
    decorators = model.__pydantic_decorators__  # type: ignore[attr-defined]
    for vname, dec in decorators.field_validators.items():
        key = f"{model.__name__}.{vname}"
        if key not in VALIDATOR_NOTES:
            raise RuntimeError(f"describe the validator {key} in VALIDATOR_NOTES")
        for fname in dec.info.fields:
            validators.setdefault(fname, []).append(VALIDATOR_NOTES[key])
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        key = f"{model.__name__}.{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from pydantic_rows(annotation, parent=(model, name))
            continue
        env = env_names(model, name, field)
        if parent is not None:
            pmodel, pname = parent
            pconfig = pmodel.model_config  # type: ignore[attr-defined]
            delim = pconfig.get("env_nested_delimiter")
            if delim:
                env.append(f"{pconfig.get('env_prefix', '')}{pname}{delim}{name}".upper())
        if _is_secret(annotation):
            default = "(secret, unset)" if field.default is None else "(secret, set)"
        elif key in FACTORY_DEFAULTS:
            default = FACTORY_DEFAULTS[key]
        elif field.default_factory is not None:
            default = render_value(field.default_factory())
        elif field.default is PydanticUndefined:
            default = "required"
        else:
            default = render_value(field.default)
        constraints = render_constraints(field.metadata) + validators.get(name, [])
        description = field.description or comments.get(name) or EXTRA_DESCRIPTIONS.get(key)
        if not description:
            raise RuntimeError(f"no description for {key}: add a #: comment or EXTRA_DESCRIPTIONS")
        yield Row(
            model=model.__name__,
            field=name if parent is None else f"{parent[1]}.{name}",
            env=tuple(env),
            type=render_type(annotation),
            default=default,
            constraints="; ".join(constraints),
            description=description,
        )


# --- dataclass settings (host, client) ------------------------------------------------------


def dataclass_rows(model: type, flags: dict[str, tuple[str, str]]) -> Iterator[Row]:
    comments = source_comments(model)
    hints = typing.get_type_hints(model)
    for f in dataclasses.fields(model):
        key = f"{model.__name__}.{f.name}"
        if f.name not in flags:
            raise RuntimeError(f"map {key} to its flag in HOST_FLAGS / CLIENT_FLAGS")
        flag, env = flags[f.name]
        if key in FACTORY_DEFAULTS:
            default = FACTORY_DEFAULTS[key]
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if f.name == "codecs":
                from wavry.rift.proto import rift_pb2

                value = tuple(rift_pb2.Codec.Name(v).lower() for v in value)
            default = render_value(value)
        elif f.default is dataclasses.MISSING:
            default = "required"
        else:
            default = render_value(f.default)
        description = comments.get(f.name) or EXTRA_DESCRIPTIONS.get(key)
        if not description:
            raise RuntimeError(f"no description for {key}: add a #: comment or EXTRA_DESCRIPTIONS")
        env_cell = tuple(x for x in (env,) if x)
        yield Row(
            model=model.__name__,
            field=f.name,
            env=env_cell,
            type=render_type(hints[f.name]),
            default=default,
            constraints=flag,
            description=description,
        )


# --- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    title: str
    anchor: str
    models: tuple[str, ...]
    intro: str
    rows: Callable[[], list[Row]]
    kind: str  # "settings" or "dataclass"


def _gateway_rows() -> list[Row]:
    from wavry.gateway.settings import GatewaySettings

    return list(pydantic_rows(GatewaySettings))


def _master_rows() -> list[Row]:
    from wavry.master.settings import MasterSettings

    return list(pydantic_rows(MasterSettings))


def _relay_rows() -> list[Row]:
    from wavry.relay.settings import RelaySettings

    return list(pydantic_rows(RelaySettings))


def _host_rows() -> list[Row]:
    from wavry.host.settings import HostSettings

    return list(dataclass_rows(HostSettings, HOST_FLAGS))


def _client_rows() -> list[Row]:
    from wavry.client.settings import ClientSettings

    return list(dataclass_rows(ClientSettings, CLIENT_FLAGS))


COMPONENTS = (
    Component(
        "Gateway (`wavry gateway`)",
        "gateway",
        ("GatewaySettings", "SignalingSettings"),
        "`wavry.gateway.settings.GatewaySettings` (pydantic-settings, prefix `WAVRY_GATEWAY_`, "
        "nested delimiter `__`) with the signaling WebSocket's "
        "`wavry.gateway.signaling.settings.SignalingSettings` (prefix `WAVRY_WS_`) nested as "
        "`signaling`: each signaling knob is read as `WAVRY_WS_<NAME>` and also as "
        "`WAVRY_GATEWAY_SIGNALING__<NAME>` (which wins when both are set). Flags of "
        "`wavry gateway`: `--listen`, `--database-url`, `--master-url`, `--allow-public-bind`, "
        "`--insecure-dev` override the variables. `wavry control-plane` reads the same "
        "variables.",
        _gateway_rows,
        "settings",
    ),
    Component(
        "Master (`wavry master`)",
        "master",
        ("MasterSettings",),
        "`wavry.master.settings.MasterSettings` (pydantic-settings, prefix `WAVRY_MASTER_`). "
        "Flags of `wavry master`: `--listen`, `--database-url`, `--allow-public-bind`, "
        "`--insecure-dev` override the variables.",
        _master_rows,
        "settings",
    ),
    Component(
        "Relay (`wavry relay`)",
        "relay",
        ("RelaySettings",),
        "`wavry.relay.settings.RelaySettings` (pydantic-settings, prefix `WAVRY_RELAY_`). "
        "Flags of `wavry relay` (`--listen`, `--health-listen`, `--master-url`, "
        "`--master-public-key`, `--allow-public-bind`, `--allow-insecure-dev`, "
        "`--max-sessions`, `--idle-timeout`, `--cleanup-interval-secs`, "
        "`--lease-duration-secs`, `--stats-log-interval-secs`, `--load-shed-threshold-pct`, "
        "`--log-level`) override the variables of the same name.",
        _relay_rows,
        "settings",
    ),
    Component(
        "Host (`wavry host`)",
        "host",
        ("HostSettings",),
        "`wavry.host.settings.HostSettings` is a frozen dataclass, not a pydantic-settings "
        "model: `wavry host` fills it from its flags. Only two knobs are read from the "
        "environment: `WAVRY_HOST_ALLOW_PUBLIC_BIND` and `WAVRY_DATA_DIR`. The *Flag* column "
        "replaces *Constraints* here; the flags' own validation is in `wavry host --help`.",
        _host_rows,
        "dataclass",
    ),
    Component(
        "Client (`wavry connect`)",
        "client",
        ("ClientSettings",),
        "`wavry.client.settings.ClientSettings` is a frozen dataclass filled by "
        "`wavry connect` from its arguments; no environment variable is read except "
        "`WAVRY_DATA_DIR` (identity, `known_hosts`). Fields without a flag keep their default "
        "(the demo and tests set them programmatically).",
        _client_rows,
        "dataclass",
    ),
)


def _cell(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


def all_rows() -> dict[str, list[Row]]:
    return {c.anchor: c.rows() for c in COMPONENTS}


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `uv run python -m tools.gen_config_reference` from the settings "
        "models; do not edit by hand. `--check` (run by tests/tools/test_config_reference.py) "
        "fails when this file drifts from the code. -->",
        "",
        "Every setting of every component, generated from the code. Conventions:",
        "",
        "- Environment variable names are matched **case-insensitively**. Where a field lists "
        "several names, any of them sets it.",
        "- Only the names listed are read: generic variables such as `DATABASE_URL`, "
        "`REDIS_URL` or `ALLOW_PUBLIC_BIND` meant for another program are ignored "
        "(tests/test_settings_env.py). The one unprefixed name is `ADMIN_PANEL_TOKEN`, kept "
        "from the original.",
        "- Booleans accept `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.",
        "- Secrets (`secret`) are `SecretStr`: never printed or logged; a blank value means unset.",
        "- Durations ending in `_secs` are seconds (fractions allowed), `_ms` milliseconds.",
        "- A value that breaks a constraint stops the service at start-up with "
        "`bad settings: ...` naming the field (exit status 2).",
        "",
        "Operating guides per component: [docs/operations/](operations/).",
        "",
    ]
    for comp in COMPONENTS:
        out.append(f"- [{comp.title}](#{comp.anchor})")
    out.append("")
    for comp in COMPONENTS:
        rows = comp.rows()
        out += [f'<a id="{comp.anchor}"></a>', "", f"## {comp.title}", "", comp.intro, ""]
        if comp.kind == "settings":
            out += [
                "| Field | Environment | Type | Default | Constraints | Description |",
                "|---|---|---|---|---|---|",
            ]
        else:
            out += [
                "| Field | Flag | Environment | Type | Default | Description |",
                "|---|---|---|---|---|---|",
            ]
        for row in rows:
            env = "<br>".join(f"`{e}`" for e in row.env) or "–"
            if comp.kind == "settings":
                cells = [f"`{row.field}`", env, row.type, row.default, row.constraints or "–",
                         row.description]  # fmt: skip
            else:
                flag = f"`{row.constraints}`" if row.constraints else "–"
                if row.constraints.startswith("("):
                    flag = row.constraints
                cells = [f"`{row.field}`", flag, env, row.type, row.default, row.description]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        for model in comp.models:
            rules = MODEL_RULES.get(model)
            if rules:
                out += ["", f"Cross-field rules of `{model}`:", ""]
                out += [f"- {rule}" for rule in rules]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--out", type=Path, default=OUT, help="file to write or check")
    ns = parser.parse_args(argv)
    text = render()
    if ns.check:
        current = ns.out.read_text(encoding="utf-8") if ns.out.exists() else ""
        if current != text:
            print(
                f"{ns.out} is out of date: run `uv run python -m tools.gen_config_reference`",
                file=sys.stderr,
            )
            return 1
        print(f"{ns.out} is up to date")
        return 0
    ns.out.write_text(text, encoding="utf-8")
    print(f"wrote {ns.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
