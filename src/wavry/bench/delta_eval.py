"""DELTA evaluation: a packet-level closed loop in virtual time.

The model (deliberately small, so that what is measured is the controller):

- **Sender**: produces frames at the controller's fps, each ``bitrate / fps`` bits, cut into
  ``CHUNK_BYTES`` chunks sent as ``CHUNK_BYTES + OVERHEAD_BYTES`` datagrams (RIFT header, AEAD
  tag, protobuf framing), paced at ``PACING_GAIN`` × the bitrate, so a frame leaves within 2/3 of
  its frame interval. Each datagram carries its packet id and the sender's send timestamp (a
  microsecond clock with an arbitrary offset).
- **Forward path**: an ``ImpairmentLink`` with a bottleneck (10 Mbit/s, drop-tail queue limit
  ``QUEUE_LIMIT_S``) and a one-way delay of RTT/2.
- **Receiver**: ``ReceiveStats``; every ``DeltaConfig.report_interval_s`` it sends a
  ``StatsReport`` back, preceded by an echo of the newest send timestamp and how long it held it
  (RTCP's LSR/DLSR idea), so the sender measures the RTT.
- **Reverse path**: unconstrained, one-way delay RTT/2.
- The sender feeds each report to ``DeltaController`` and applies the decision at once.

Both endpoints are sans-IO and run on ``SimNetwork``. Scenarios (30 s each): ``steady`` — 10 Mbit/s
throughout; ``halving`` — 10 Mbit/s, 5 Mbit/s from t=10 s, 10 Mbit/s again from t=20 s.

Metrics: link utilisation (delivered bits / capacity, after the ``WARMUP_S`` warm-up), p50/p95 of
the per-packet queuing delay at the bottleneck, loss %, and for ``halving``: time to adapt (from
the drop until the target bitrate is <= the new capacity *and* the queuing delay is back under
``t_limit``) and the loss in the second after the drop.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from wavry.net.impairment import ImpairmentConfig, ImpairmentLink
from wavry.net.simnet import Address, SimNetwork
from wavry.rift.delta import DeltaConfig, DeltaController, DeltaSample
from wavry.rift.proto import rift_pb2
from wavry.rift.rx_stats import ReceiveStats

__all__ = [
    "CAPACITY_BPS",
    "RTTS_MS",
    "ScenarioSpec",
    "format_results",
    "run_delta_scenarios",
    "run_scenario",
]

CHUNK_BYTES = 1200
OVERHEAD_BYTES = 40
PACING_GAIN = 1.5
CAPACITY_BPS = 10_000_000.0
QUEUE_LIMIT_S = 0.100
WARMUP_S = 3.0
DURATION_S = 30.0
DROP_AT_S = 10.0
RESTORE_AT_S = 20.0
RTTS_MS = (20, 50, 150)
INITIAL_KBPS = 5_000
FPS = 60
SENDER_CLOCK_OFFSET_S = 1234.5678  # the receiver must not need the sender's clock

_MEDIA = struct.Struct(">QQ")  # packet id, send timestamp (µs)
_FEEDBACK = struct.Struct(">QQ")  # echoed send timestamp (µs), hold time at the receiver (µs)
_SENDER: Address = ("192.0.2.1", 5000)
_RECEIVER: Address = ("198.51.100.2", 6000)


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    name: str
    rtt_ms: float
    #: ``(at, bps)`` capacity changes after the initial ``CAPACITY_BPS``.
    schedule: tuple[tuple[float, float | None], ...] = ()
    duration_s: float = DURATION_S
    drop_at_s: float | None = None
    #: Extra forward-path impairments (not part of the standard scenarios; robustness checks).
    jitter_s: float = 0.0
    loss: float = 0.0


class _Sender:
    def __init__(self, controller: DeltaController, initial_kbps: int, fps: int) -> None:
        self.controller = controller
        self.bitrate_kbps = initial_kbps
        self.fps = fps
        self._next_frame = 0.0
        self._next_send = 0.0
        self._queue: deque[int] = deque()
        self._outbox: list[tuple[bytes, Address]] = []
        self._packet_id = 0
        self._carry_bits = 0.0
        self.fps_seen: set[int] = {fps}

    def _send_ts_us(self, now: float) -> int:
        return int((now + SENDER_CLOCK_OFFSET_S) * 1e6)

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        echo_us, hold_us = _FEEDBACK.unpack_from(data)
        report = rift_pb2.StatsReport.FromString(data[_FEEDBACK.size :])
        rtt_us = self._send_ts_us(now) - echo_us - hold_us if echo_us else None
        sample = DeltaSample.from_stats_report(report, now=now, rtt_us=rtt_us)
        decision = self.controller.on_sample(sample)
        self.bitrate_kbps = decision.bitrate_kbps
        if decision.fps != self.fps:
            self.fps = decision.fps
            self.fps_seen.add(decision.fps)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        return min(self._next_frame, self._next_send) if self._queue else self._next_frame

    def handle_timer(self, now: float) -> None:
        if now >= self._next_frame:
            # Fractional packets carry over so the average rate is exactly the bitrate.
            bits = self.bitrate_kbps * 1000.0 / self.fps + self._carry_bits
            count = max(1, int(bits // (8 * CHUNK_BYTES)))
            self._carry_bits = max(0.0, bits - count * 8 * CHUNK_BYTES)
            if not self._queue:
                self._next_send = now
            self._queue.extend([CHUNK_BYTES + OVERHEAD_BYTES] * count)
            self._next_frame += 1.0 / self.fps
        if self._queue and now >= self._next_send:
            size = self._queue.popleft()
            self._packet_id += 1
            header = _MEDIA.pack(self._packet_id, self._send_ts_us(now))
            self._outbox.append((header + bytes(size - len(header)), _RECEIVER))
            pace_bps = PACING_GAIN * self.bitrate_kbps * 1000.0
            self._next_send = now + size * 8.0 / pace_bps


class _Receiver:
    def __init__(self, interval: float, on_bytes: Callable[[float, int], None]) -> None:
        self.stats = ReceiveStats(start=0.0)
        self._interval = interval
        self._next_report = interval
        self._outbox: list[tuple[bytes, Address]] = []
        self._last_ts = 0
        self._last_arrival = 0.0
        self._on_bytes = on_bytes

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        packet_id, send_ts = _MEDIA.unpack_from(data)
        self.stats.on_packet(packet_id, len(data), now, send_ts)
        self._last_ts = send_ts
        self._last_arrival = now
        self._on_bytes(now, len(data))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        return self._next_report

    def handle_timer(self, now: float) -> None:
        report = self.stats.snapshot(now).to_proto()
        hold_us = round((now - self._last_arrival) * 1e6) if self._last_ts else 0
        feedback = _FEEDBACK.pack(self._last_ts, hold_us) + report.SerializeToString()
        self._outbox.append((feedback, _SENDER))
        self._next_report += self._interval


@dataclass(slots=True)
class _Recorder:
    """Wraps the forward link and records what the metrics need."""

    link: ImpairmentLink
    sender: _Sender | None = None
    t_limit_s: float = 0.0
    drop_at: float | None = None
    queue_delays: list[float] = field(default_factory=list)
    sent_after_warmup: int = 0
    lost_after_warmup: int = 0
    sent_after_drop: int = 0
    lost_after_drop: int = 0
    adapted_at: float | None = None

    def transmit(self, size: int, now: float) -> list[float]:
        times = self.link.transmit(size, now)
        if now >= WARMUP_S:
            self.sent_after_warmup += 1
            if not times:
                self.lost_after_warmup += 1
            else:
                self.queue_delays.append(self.link.last_queue_delay)
        drop = self.drop_at
        if drop is not None and now >= drop:
            if now < drop + 1.0:
                self.sent_after_drop += 1
                if not times:
                    self.lost_after_drop += 1
            if self.adapted_at is None and self.sender is not None:
                capacity = self.link.bandwidth_at(now) or math.inf
                within = self.sender.bitrate_kbps * 1000.0 <= capacity
                if within and self.link.queue_delay_at(now) < self.t_limit_s:
                    self.adapted_at = now
        return times


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _capacity_bits(link: ImpairmentLink, t0: float, t1: float) -> float:
    bits = 0.0
    points = sorted({t0, t1, *(at for at, _ in link.config.bandwidth_schedule if t0 < at < t1)})
    for a, b in zip(points, points[1:], strict=False):
        bits += (link.bandwidth_at(a) or 0.0) * (b - a)
    return bits


def run_scenario(
    spec: ScenarioSpec, *, seed: int = 1, config: DeltaConfig | None = None
) -> dict[str, float | int | str | None]:
    """Run one scenario; return its metrics (JSON-serialisable)."""
    cfg = config if config is not None else DeltaConfig()
    one_way = spec.rtt_ms / 2000.0
    forward = ImpairmentLink(
        ImpairmentConfig(
            delay=one_way,
            bandwidth_bps=CAPACITY_BPS,
            queue_limit_s=QUEUE_LIMIT_S,
            bandwidth_schedule=spec.schedule,
            jitter=spec.jitter_s,
            loss=spec.loss,
        ),
        random.Random(seed),
    )
    reverse = ImpairmentLink(ImpairmentConfig(delay=one_way), random.Random(seed + 1))
    controller = DeltaController(
        cfg, initial_bitrate_kbps=INITIAL_KBPS, initial_fps=FPS, max_fps=FPS
    )
    sender = _Sender(controller, INITIAL_KBPS, FPS)
    delivered = [0]

    def count_bytes(now: float, size: int) -> None:
        if WARMUP_S <= now <= spec.duration_s:
            delivered[0] += size

    receiver = _Receiver(cfg.report_interval_s, count_bytes)
    recorder = _Recorder(forward, sender, cfg.t_limit_us / 1e6, spec.drop_at_s)
    net = SimNetwork(sender, receiver, recorder, reverse, addr_a=_SENDER, addr_b=_RECEIVER)
    net.run_until(spec.duration_s)
    capacity = _capacity_bits(forward, WARMUP_S, spec.duration_s)
    result: dict[str, float | int | str | None] = {
        "scenario": spec.name,
        "rtt_ms": spec.rtt_ms,
        "utilisation_pct": round(100.0 * delivered[0] * 8 / capacity, 2),
        "queue_delay_p50_ms": round(1000.0 * _percentile(recorder.queue_delays, 0.50), 2),
        "queue_delay_p95_ms": round(1000.0 * _percentile(recorder.queue_delays, 0.95), 2),
        "loss_pct": round(
            100.0 * recorder.lost_after_warmup / max(1, recorder.sent_after_warmup), 3
        ),
        "decreases": controller.decreases,
        "min_fps": min(sender.fps_seen),
        "final_fps": sender.fps,
        "final_kbps": sender.bitrate_kbps,
    }
    if spec.drop_at_s is not None:
        adapt = None if recorder.adapted_at is None else recorder.adapted_at - spec.drop_at_s
        result["time_to_adapt_s"] = None if adapt is None else round(adapt, 3)
        result["loss_after_drop_pct"] = round(
            100.0 * recorder.lost_after_drop / max(1, recorder.sent_after_drop), 3
        )
    return result


def scenarios_for(rtt_ms: float) -> list[ScenarioSpec]:
    return [
        ScenarioSpec("steady", rtt_ms),
        ScenarioSpec(
            "halving",
            rtt_ms,
            schedule=((DROP_AT_S, CAPACITY_BPS / 2), (RESTORE_AT_S, CAPACITY_BPS)),
            drop_at_s=DROP_AT_S,
        ),
    ]


def run_delta_scenarios(
    seed: int = 1, *, rtts_ms: tuple[float, ...] = RTTS_MS, config: DeltaConfig | None = None
) -> dict[str, object]:
    """Every scenario at every RTT: ``{"config": {...}, "results": [{metrics}, ...]}``."""
    cfg = config if config is not None else DeltaConfig()
    results = [
        run_scenario(spec, seed=seed, config=cfg) for rtt in rtts_ms for spec in scenarios_for(rtt)
    ]
    return {
        "model": {
            "capacity_mbps": CAPACITY_BPS / 1e6,
            "queue_limit_ms": QUEUE_LIMIT_S * 1000,
            "chunk_bytes": CHUNK_BYTES,
            "pacing_gain": PACING_GAIN,
            "fps": FPS,
            "initial_kbps": INITIAL_KBPS,
            "warmup_s": WARMUP_S,
            "duration_s": DURATION_S,
            "report_interval_ms": cfg.report_interval_s * 1000,
            "t_limit_ms": cfg.t_limit_us / 1000,
            "seed": seed,
        },
        "results": results,
    }


def format_results(report: dict[str, object]) -> str:
    """A plain-text table of ``run_delta_scenarios`` output."""
    header = (
        f"{'scenario':<9} {'rtt':>5} {'util%':>6} {'q50ms':>6} {'q95ms':>6} {'loss%':>6} "
        f"{'adapt_s':>7} {'loss1s%':>7} {'cuts':>4} {'minfps':>6}"
    )
    lines = [header]
    results = report["results"]
    if not isinstance(results, list):
        raise TypeError("not a run_delta_scenarios() report")
    for r in results:
        adapt = r.get("time_to_adapt_s", "-")
        loss1 = r.get("loss_after_drop_pct", "-")
        lines.append(
            f"{r['scenario']:<9} {r['rtt_ms']:>5} {r['utilisation_pct']:>6} "
            f"{r['queue_delay_p50_ms']:>6} {r['queue_delay_p95_ms']:>6} {r['loss_pct']:>6} "
            f"{adapt!s:>7} {loss1!s:>7} {r['decreases']:>4} {r['min_fps']:>6}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    output = run_delta_scenarios()
    print(format_results(output))
    print(json.dumps(output, indent=2))
