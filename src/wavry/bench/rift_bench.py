"""``wavry bench rift``: what the RIFT core costs on this machine and how it behaves under loss.

Micro-benchmarks report medians of several repetitions, each next to a baseline measured in
the same run (raw ChaCha20-Poly1305 for the AEAD path), because absolute numbers on a shared
machine drift; the simulations run in virtual time and are deterministic for a seed.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wavry import __version__
from wavry.bench.delta_eval import run_delta_scenarios
from wavry.bench.stream_sim import StreamScenario, frame_payload, run_stream
from wavry.net.impairment import ImpairmentConfig
from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection, ConnectionState
from wavry.rift.header import TransportHeader
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity
from wavry.rift.packet_crypto import PacketOpener, PacketSealer, packet_nonce
from wavry.rift.proto import rift_pb2

__all__ = ["format_report", "run_rift_bench"]

Progress = Callable[[str], None]
_HOST = ("127.0.0.1", 4444)
_CLIENT = ("127.0.0.1", 50000)


def _median_rate(fn: Callable[[], int], repeats: int) -> float:
    """Run ``fn`` (which returns how many operations it did) ``repeats`` times; ops/s median."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_seal_open(packets: int, repeats: int) -> dict[str, float]:
    key_a, key_b = os.urandom(32), os.urandom(32)
    plaintext = os.urandom(1200)

    def rift_pairs() -> int:
        sealer = PacketSealer(key_a, start_time=0.0)
        opener = PacketOpener(key_a)
        for _ in range(packets):
            pid = sealer.next_packet_id(0.0)
            header = TransportHeader(7, pid).encode()
            opener.open(header, pid, sealer.seal(header, pid, plaintext))
        return packets

    aead = ChaCha20Poly1305(key_b)
    header = bytes(18)

    def raw_pairs() -> int:
        for pid in range(1, packets + 1):
            nonce = packet_nonce(pid)
            aead.decrypt(nonce, aead.encrypt(nonce, plaintext, header), header)
        return packets

    rift = _median_rate(rift_pairs, repeats)
    raw = _median_rate(raw_pairs, repeats)
    return {
        "seal_open_pps": round(rift),
        "raw_aead_pairs_per_s": round(raw),
        "seal_open_vs_raw_aead": round(rift / raw, 3),
    }


def established_pair(config: RiftConfig | None = None) -> tuple[Connection, Connection]:
    """A client and the host's session, handshaken in-process with no network in between."""
    rng = random.Random(42)
    cfg = config or RiftConfig()
    host = HostEndpoint(
        identity=Identity.generate(rng.randbytes),
        offer=HostOffer(bitrate_kbps=20_000, max_bitrate_kbps=20_000),
        config=cfg,
        rng=rng.randbytes,
    )
    client = Connection.client(
        identity=Identity.generate(rng.randbytes),
        peer_addr=_HOST,
        hello=rift_pb2.Hello(
            supported_codecs=[rift_pb2.H264],
            max_resolution=rift_pb2.Resolution(width=1920, height=1080),
            max_fps=60,
        ),
        now=0.0,
        config=cfg,
        rng=rng.randbytes,
    )
    for _ in range(8):
        for data, _ in client.datagrams_to_send(0.0):
            host.receive_datagram(data, _CLIENT, 0.0)
        for data, _ in host.datagrams_to_send(0.0):
            client.receive_datagram(data, _HOST, 0.0)
    conn = next(iter(host.connections.values()))
    if client.state is not ConnectionState.ESTABLISHED:
        raise RuntimeError("in-process handshake did not complete")
    return client, conn


def bench_frame_path(frame_bytes: int, frames: int, repeats: int) -> dict[str, float]:
    """Sender: chunk + seal + FEC one frame; receiver: open + FEC + reassemble it."""
    client, host = established_pair()
    payloads = [frame_payload(i, frame_bytes) for i in range(frames)]
    send_times: list[float] = []
    recv_times: list[float] = []
    packets_per_frame = 0
    now = 1.0
    for _ in range(repeats):
        batches: list[list[bytes]] = []
        t0 = time.perf_counter()
        for data in payloads:
            now += 1.0
            host.send_video_frame(data, keyframe=False, timestamp_us=int(now * 1e6), now=now)
            batch: list[bytes] = []
            while True:  # drain through the pacer in virtual time
                batch.extend(d for d, _ in host.datagrams_to_send(now))
                if host.send_queue_length == 0:
                    break
                now += 0.0005
            batches.append(batch)
        send_times.append((time.perf_counter() - t0) / frames)
        packets_per_frame = max(len(b) for b in batches)
        t0 = time.perf_counter()
        for batch in batches:
            for datagram in batch:
                client.receive_datagram(datagram, _HOST, now)
        recv_times.append((time.perf_counter() - t0) / frames)
        while client.next_event() is not None:
            pass
    send_us = statistics.median(send_times) * 1e6
    recv_us = statistics.median(recv_times) * 1e6
    return {
        "send_us_per_frame": round(send_us, 1),
        "receive_us_per_frame": round(recv_us, 1),
        "packets_per_frame": packets_per_frame,
        "receive_us_per_packet": round(recv_us / max(packets_per_frame, 1), 2),
    }


def bench_loss_recovery(seed: int, duration: float) -> dict[str, float]:
    link = ImpairmentConfig(loss=0.05, delay=0.020, jitter=0.010, reorder=0.02)
    r = run_stream(StreamScenario(duration=duration, downlink=link, uplink=link, seed=seed))
    lat = sorted(r.latencies_ms())
    return {
        "frames_complete_pct_loss5": round(100 * r.complete_fraction(after=0.5), 2),
        "frames_in_order": r.in_order,
        "loss5_latency_p50_ms": round(lat[len(lat) // 2], 1),
        "loss5_latency_p99_ms": round(lat[int(len(lat) * 0.99)], 1),
        "loss5_fec_recovered": int(r.client_stats["fec_recovered"]),  # type: ignore[call-overload]
        "loss5_retransmits": int(r.host_stats["retransmits_sent"]),  # type: ignore[call-overload]
    }


def bench_stack_on_bottleneck(seed: int, duration: float, rtt: float) -> dict[str, float]:
    """DELTA in the full stack: 10 Mbit/s bottleneck, halved at 40% of the run, restored at 70%."""
    drop, back = duration * 0.4, duration * 0.7
    down = ImpairmentConfig(
        delay=rtt / 2,
        bandwidth_bps=10e6,
        queue_limit_s=0.1,
        bandwidth_schedule=((drop, 5e6), (back, 10e6)),
    )
    samples: list[tuple[float, int]] = []

    def tick(now: float, _client: Connection, conn: Connection | None) -> None:
        if conn is not None:
            samples.append((now, conn.stats().bytes_sent))

    r = run_stream(
        StreamScenario(
            duration=duration,
            downlink=down,
            uplink=ImpairmentConfig(delay=rtt / 2),
            seed=seed,
            bitrate_kbps=8_000,
            max_bitrate_kbps=50_000,
            keyframe_interval=5.0,
        ),
        on_tick=tick,
    )

    def sent_between(t0: float, t1: float) -> float:
        a = min(samples, key=lambda s: abs(s[0] - t0))
        b = min(samples, key=lambda s: abs(s[0] - t1))
        return (b[1] - a[1]) * 8 / max(b[0] - a[0], 1e-9)

    util_before = sent_between(3.0, drop) / 10e6
    util_after = sent_between(drop + 1.0, back) / 5e6
    lat = sorted(r.latencies_ms())
    return {
        "stack_rtt_ms": rtt * 1000,
        "stack_utilisation_pct_10mbit": round(100 * min(util_before, 1.0), 1),
        "stack_utilisation_pct_5mbit": round(100 * min(util_after, 1.0), 1),
        "stack_frames_complete_pct": round(100 * r.complete_fraction(after=0.5), 2),
        "stack_latency_p50_ms": round(lat[len(lat) // 2], 1),
        "stack_latency_p95_ms": round(lat[int(len(lat) * 0.95)], 1),
    }


def run_rift_bench(
    *, quick: bool = False, seed: int = 1, progress: Progress | None = None
) -> dict[str, Any]:
    say = progress or (lambda _msg: None)
    repeats = 3 if quick else 5
    results: dict[str, Any] = {
        "wavry_version": __version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "quick": quick,
        "seed": seed,
    }
    say("AEAD seal+open, 1200-byte packets")
    results.update(bench_seal_open(2_000 if quick else 20_000, repeats))
    say("packetize + encrypt + FEC a 35 KB keyframe and an 18 KB P-frame, and receive them")
    key = bench_frame_path(35_000, 20 if quick else 100, repeats)
    pframe = bench_frame_path(18_000, 20 if quick else 100, repeats)
    results.update({f"keyframe35k_{k}": v for k, v in key.items()})
    results.update({f"pframe18k_{k}": v for k, v in pframe.items()})
    # 20 Mbit/s of 1080p60 = 41.7 KB frames, 60 per second, both directions of the path.
    frame20 = bench_frame_path(41_667, 20 if quick else 60, repeats)
    per_frame_us = frame20["send_us_per_frame"] + frame20["receive_us_per_frame"]
    results["path_20mbps_1080p60_cpu_pct_of_core"] = round(per_frame_us * 60 / 1e6 * 100, 2)
    say("5% loss, 20±10 ms jitter, reordering: frame delivery (simulated, full stack)")
    results.update(bench_loss_recovery(seed, 8.0 if quick else 20.0))
    say("DELTA on the simulated 10 Mbit/s link (model) at 20/50/150 ms RTT")
    delta = run_delta_scenarios(seed)
    results["delta_scenarios"] = delta
    halving20 = _scenario(delta, "halving", 20)
    steady20 = _scenario(delta, "steady", 20)
    results["delta_utilisation_pct"] = steady20.get("utilisation_pct")
    results["delta_queue_p95_ms"] = steady20.get("queue_delay_p95_ms")
    results["delta_adapt_time_s"] = halving20.get("time_to_adapt_s")
    results["delta_loss_after_drop_pct"] = halving20.get("loss_after_drop_pct")
    say("DELTA in the full stack on a 10 -> 5 -> 10 Mbit/s bottleneck, 20 ms RTT")
    results.update(bench_stack_on_bottleneck(seed, 12.0 if quick else 30.0, 0.020))
    return results


def _scenario(delta: dict[str, Any], name: str, rtt_ms: int) -> dict[str, Any]:
    for item in delta.get("results", []):
        if item.get("scenario") == name and round(float(item.get("rtt_ms", -1))) == rtt_ms:
            return dict(item)
    return {}


def format_report(r: dict[str, Any]) -> str:
    rows = [
        ("AEAD seal+open (1200 B)", f"{r['seal_open_pps']:,} pairs/s", "packets"),
        ("  raw ChaCha20-Poly1305 baseline", f"{r['raw_aead_pairs_per_s']:,} pairs/s", ""),
        ("  RIFT / raw", f"{r['seal_open_vs_raw_aead']:.2f}", "header+CRC+epoch cost"),
        ("35 KB keyframe: send / receive", _us(r, "keyframe35k"), "chunk+seal+FEC / open+FEC"),
        ("18 KB P-frame: send / receive", _us(r, "pframe18k"), ""),
        ("receive path per packet", f"{r['pframe18k_receive_us_per_packet']} us", ""),
        ("20 Mbit/s 1080p60, send+receive", f"{r['path_20mbps_1080p60_cpu_pct_of_core']}%", "of one core"),
        ("5% loss+jitter: frames complete", f"{r['frames_complete_pct_loss5']}%", "target >= 99%"),
        ("  latency p50 / p99", f"{r['loss5_latency_p50_ms']} / {r['loss5_latency_p99_ms']} ms", "20 ms one-way"),
        ("DELTA model, 20 ms: utilisation", f"{r['delta_utilisation_pct']}%", "target >= 85%"),
        ("  queue p95", f"{r['delta_queue_p95_ms']} ms", "target <= 10 ms"),
        ("  adapt to halving / loss after", f"{r['delta_adapt_time_s']} s / {r['delta_loss_after_drop_pct']}%", "target <= 1 s / 2%"),
        ("full stack, 10 / 5 Mbit/s: utilisation", f"{r['stack_utilisation_pct_10mbit']}% / {r['stack_utilisation_pct_5mbit']}%", ""),
        ("  latency p50 / p95", f"{r['stack_latency_p50_ms']} / {r['stack_latency_p95_ms']} ms", "10 ms one-way"),
    ]  # fmt: skip
    width = max(len(a) for a, _, _ in rows)
    lines = [f"wavry bench rift — {r['machine']}, Python {r['python']}, seed {r['seed']}"]
    lines += [f"  {a:<{width}}  {b:<22} {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def _us(r: dict[str, Any], prefix: str) -> str:
    return f"{r[prefix + '_send_us_per_frame']:.0f} / {r[prefix + '_receive_us_per_frame']:.0f} us"
