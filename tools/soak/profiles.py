"""Soak profiles: how long, how hard, and the leak threshold of each process."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tools.soak.fit import Threshold
from tools.soak.workloads import (
    DemoWorkload,
    GatewayWorkload,
    MasterWorkload,
    RelayWorkload,
    Workload,
    gateway_available,
)

__all__ = ["PROFILES", "Profile", "build_workloads"]

WORKLOADS = ("relay", "master", "demo", "gateway")


@dataclass(frozen=True)
class Profile:
    name: str
    duration: float
    warmup: float
    interval: float = 1.0
    relay_pps: int = 600
    master_relays: int = 30
    master_round_s: float = 60.0
    demo_resolution: str = "320x180"
    demo_fps: int = 30
    demo_bitrate: int = 1000
    gateway_logins_per_s: float = 2.0
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    def with_overrides(self, *, duration: float | None, warmup: float | None) -> Profile:
        return replace(
            self,
            duration=self.duration if duration is None else duration,
            warmup=self.warmup if warmup is None else warmup,
        )


# A 105-second fit window cannot tell a slow leak from caches and tables filling up after
# start, so the CI profile only catches gross leaks: each limit is about twice the steepest
# 105 s slope measured on healthy processes (calibration in docs/soak.md). The long profiles
# use the 5 MB/h default after a 10-15 minute warm-up.
_CI_THRESHOLDS: dict[str, Threshold] = {
    "demo-client": Threshold(30.0, "decoder and window buffers settle; measured <= 13 MB/h"),
    "demo-host": Threshold(
        80.0, "encoder/pacer buffers settle for ~4 min; measured 39 MB/h at 45-150 s"
    ),
    "gateway": Threshold(45.0, "SQLite cache fills with session/audit rows; measured <= 21 MB/h"),
    "master": Threshold(
        120.0, "registry churn fills SQLite's cache; measured 85 MB/h at 45-150 s, 35 later"
    ),
}

PROFILES: dict[str, Profile] = {
    # ~3 minutes, everything concurrently: catches gross per-operation leaks
    "ci": Profile(
        "ci", duration=180.0, warmup=75.0, master_round_s=45.0, thresholds=_CI_THRESHOLDS
    ),
    "2h": Profile(
        "2h",
        duration=7200.0,
        warmup=600.0,
        relay_pps=1000,
        master_relays=100,
        master_round_s=300.0,
        demo_resolution="1280x720",
        demo_fps=60,
        demo_bitrate=10_000,
        gateway_logins_per_s=5.0,
    ),
    "8h": Profile(
        "8h",
        duration=28800.0,
        warmup=900.0,
        relay_pps=1000,
        master_relays=100,
        master_round_s=300.0,
        demo_resolution="1280x720",
        demo_fps=60,
        demo_bitrate=10_000,
        gateway_logins_per_s=5.0,
    ),
}


def build_workloads(profile: Profile, only: list[str] | None) -> tuple[list[Workload], list[str]]:
    """The workloads of ``profile`` (or of ``only``), and the ones skipped with the reason."""
    chosen = list(only or WORKLOADS)
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; known: {', '.join(WORKLOADS)}")
    out: list[Workload] = []
    skipped: list[str] = []
    for name in chosen:
        if name == "relay":
            out.append(RelayWorkload(pps=profile.relay_pps))
        elif name == "master":
            out.append(
                MasterWorkload(relays=profile.master_relays, round_seconds=profile.master_round_s)
            )
        elif name == "demo":
            out.append(
                DemoWorkload(
                    resolution=profile.demo_resolution,
                    fps=profile.demo_fps,
                    bitrate=profile.demo_bitrate,
                )
            )
        elif name == "gateway":
            reason = gateway_available()
            if reason is None:
                out.append(GatewayWorkload(per_second=profile.gateway_logins_per_s))
            else:
                skipped.append(f"gateway: {reason}")
    return out, skipped
