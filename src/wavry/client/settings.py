"""Settings of ``wavry connect``."""

from __future__ import annotations

from dataclasses import dataclass, field

from wavry.rift.proto import rift_pb2

__all__ = ["ClientSettings"]


def _default_codecs() -> tuple[rift_pb2.Codec, ...]:
    return (rift_pb2.H264, rift_pb2.HEVC, rift_pb2.AV1)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    host: str
    port: int
    client_name: str = "wavry-client"
    codecs: tuple[rift_pb2.Codec, ...] = field(default_factory=_default_codecs)
    max_width: int = 3840
    max_height: int = 2160
    max_fps: int = 240
    max_bitrate_kbps: int = 0  # 0 = the host decides
    headless: bool = False
    fullscreen: bool = False
    relative_mouse: bool = False
    #: host and client read the same monotonic clock (same machine): per-stage latency is exact
    same_clock: bool = False
    run_for: float | None = None
    #: monitor of the host to show (None: the host's default)
    monitor: int | None = None
    #: impairment spec for outgoing packets (tests, demo), see wavry.net.impairment
    impair: str | None = None

    def hello(self) -> rift_pb2.Hello:
        """What this client asks for in its RIFT ``Hello``."""
        return rift_pb2.Hello(
            client_name=self.client_name,
            platform=rift_pb2.LINUX,
            supported_codecs=list(self.codecs),
            max_resolution=rift_pb2.Resolution(width=self.max_width, height=self.max_height),
            max_fps=self.max_fps,
            max_bitrate_kbps=self.max_bitrate_kbps,
            input_caps=0xF,
        )
