"""Settings of ``wavry host`` (CLI flags; every flag also has a WAVRY_HOST_* env variable)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from wavry import paths

__all__ = ["DEFAULT_PORT", "HostSettings", "PAIRING_MODES"]

DEFAULT_PORT = 4444
PAIRING_MODES = ("allow-list", "prompt", "open")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class HostSettings:
    listen_host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: Binding beyond loopback needs this opt-in (``--public`` / WAVRY_HOST_ALLOW_PUBLIC_BIND).
    allow_public_bind: bool = field(
        default_factory=lambda: _env_flag("WAVRY_HOST_ALLOW_PUBLIC_BIND")
    )
    capture: str = "auto"
    testsrc_pattern: str = "desktop"
    monitor: int | None = None
    width: int = 1280
    height: int = 720
    fps: int = 60
    bitrate_kbps: int = 10_000
    max_bitrate_kbps: int = 50_000
    #: codec preference, by name; HEVC/AV1 are offered only if a real-time encoder opens here
    codecs: tuple[str, ...] = ("h264",)
    encoder: str = "auto"
    keyframe_interval_ms: int = 2_000
    #: "allow-list": refuse unknown clients; "prompt": ask on the terminal; "open": anyone (dev)
    pairing: str = "allow-list"
    allow: tuple[str, ...] = ()
    input_backend: str = "auto"
    mdns: bool = True
    idle_timeout: float = 10.0
    data_dir: Path = field(default_factory=paths.data_dir)
    #: stop after this many seconds (demo, tests); None = run until interrupted
    run_for: float | None = None
    #: impairment spec for outgoing packets (tests, demo), see wavry.net.impairment
    impair: str | None = None

    def __post_init__(self) -> None:
        if self.pairing not in PAIRING_MODES:
            raise ValueError(f"pairing must be one of {', '.join(PAIRING_MODES)}")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be within 0..65535")
