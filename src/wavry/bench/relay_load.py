"""Load generator processes and /proc readers for ``wavry bench relay``.

One generator drives both relays so that the comparison is fair: plain blocking UDP sockets
(one ``send`` system call per datagram, no ``sendmmsg``), the same datagram size, the same
per-packet work (an 8-byte sequence number written into a prebuilt datagram). Only the framing
differs: our FORWARD (20-byte relay header) or TURN ChannelData (4-byte header).

The workers are forked from the benchmark process (they inherit the sockets it set up) and
talk to it through one shared array of 64-bit counters: slot ``STOP_SEND`` / ``STOP_RECV``
are the stop flags, then one slot per worker with its running total. The parent snapshots the
totals at the start and end of the measured window.

Latency: ``latency_sender`` paces two interleaved streams at ``rate`` packets/s each (one
through the relay, one straight to a receiver socket, half an interval apart) with the send
time (CLOCK_MONOTONIC, shared by every process on the host) in the payload;
``latency_receiver`` timestamps each arrival and sends the (path, seq, sent, received) records
back through a pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import struct
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

__all__ = [
    "STOP_RECV",
    "STOP_SEND",
    "Flow",
    "cpu_busy_ticks",
    "latency_receiver",
    "latency_sender",
    "proc_cpu_seconds",
    "proc_runtime_seconds",
    "receiver",
    "sender",
    "set_realtime",
    "udp_drops",
]

STOP_SEND = 0
STOP_RECV = 1
#: counters are published every this many datagrams (per worker)
_PUBLISH_EVERY = 64
_SEQ = struct.Struct(">Q")
_SEQ_TS = struct.Struct(">QQ")
_PR_SET_TIMERSLACK = 29
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Flow:
    """One session: datagrams sent on ``send_sock`` (connected to the relay) arrive on
    ``recv_sock``. ``template`` is a full datagram; the sequence number (and, for latency, the
    send time) is written at ``seq_offset`` and read at ``recv_offset`` of what arrives (our
    relay forwards the datagram byte-identical, TURN strips the ChannelData header)."""

    send_sock: socket.socket
    recv_sock: socket.socket
    template: bytes
    seq_offset: int
    recv_offset: int


def pin_self(cpus: Sequence[int] | None) -> None:
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))


#: SCHED_FIFO priority of the latency phase (relay, sender and receiver alike)
RT_PRIORITY = 10


def set_realtime(pid: int, on: bool) -> bool:
    """Put every thread of ``pid`` in SCHED_FIFO (``on``) or back in SCHED_OTHER.

    Used for the latency phase only, so that other work on a shared machine does not preempt
    the processes under test; the kernel's RT throttling still leaves 5 % to everything else.
    Returns False where it is not permitted (not root, no CAP_SYS_NICE)."""
    policy, prio = (os.SCHED_FIFO, RT_PRIORITY) if on else (os.SCHED_OTHER, 0)
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setscheduler(int(tid), policy, os.sched_param(prio))
    except OSError:
        return False
    return True


def sender(flows: Sequence[Flow], counters: Any, slot: int, cpus: Sequence[int] | None) -> None:
    """Send round-robin over ``flows`` as fast as possible until ``STOP_SEND``."""
    pin_self(cpus)
    pack = _SEQ.pack_into
    items = [(f.send_sock.send, bytearray(f.template), f.seq_offset) for f in flows]
    seq = 1
    sent = 0
    errors = 0
    rounds = max(1, _PUBLISH_EVERY // len(items))
    while not counters[STOP_SEND]:
        for _ in range(rounds):
            for send, buf, off in items:
                pack(buf, off, seq)
                try:
                    send(buf)
                except OSError:  # ECONNREFUSED after an ICMP error, ENOBUFS: counted, not sent
                    errors += 1
            seq += 1
        sent += rounds * len(items)
        counters[slot] = sent - errors


def receiver(
    socks: Sequence[socket.socket], counters: Any, slot: int, cpus: Sequence[int] | None
) -> None:
    """Count datagrams arriving on ``socks`` until ``STOP_RECV``."""
    pin_self(cpus)
    ep = select.epoll()
    recvs = {}
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
        recvs[s.fileno()] = s.recv_into
    buf = bytearray(2048)
    got = 0
    stopping = False
    while not stopping:
        stopping = bool(counters[STOP_RECV])  # one last pass drains what is left
        for fd, _ in ep.poll(0 if stopping else 0.05):
            recv = recvs[fd]
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                while True:
                    recv(buf)
                    got += 1
        counters[slot] = got


def _fine_timer_slack() -> None:
    """Ask for 1 us timer slack (default 50 us) so short sleeps pace a 10 k/s stream."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


def latency_sender(
    relay_flow: Flow,
    direct_send: socket.socket,
    direct_size: int,
    rate: float,
    seconds: float,
    result: Connection,
    cpus: Sequence[int] | None,
    realtime: bool = False,
) -> None:
    """Two streams at ``rate`` each, interleaved: relay at t0 + k/rate, direct half an interval
    later. Falling more than 2 ms behind skips ahead instead of bursting. Sends back
    (packets per path, schedule slips)."""
    pin_self(cpus)
    if realtime:
        set_realtime(os.getpid(), True)
    _fine_timer_slack()
    pack = _SEQ_TS.pack_into
    rbuf, roff, rsend = (
        bytearray(relay_flow.template),
        relay_flow.seq_offset,
        relay_flow.send_sock.send,
    )
    dbuf, dsend = bytearray(direct_size), direct_send.send
    interval = int(1e9 / rate)
    half = interval // 2
    now_ns = time.monotonic_ns
    t0 = now_ns() + 1_000_000
    end = t0 + int(seconds * 1e9)
    slips = 0
    seq = 0
    next_t = t0
    while next_t < end:
        seq += 1
        for buf, off, send, due in ((rbuf, roff, rsend, next_t), (dbuf, 0, dsend, next_t + half)):
            wait = due - now_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            pack(buf, off, seq, now_ns())
            with contextlib.suppress(OSError):
                send(buf)
        next_t += interval
        late = now_ns() - next_t
        if late > 2_000_000:
            slips += 1
            next_t += (late // interval + 1) * interval
    result.send((seq, slips))
    result.close()


def latency_receiver(
    relay_sock: socket.socket,
    relay_offset: int,
    direct_sock: socket.socket,
    stop_after: float,
    result: Connection,
    cpus: Sequence[int] | None,
    realtime: bool = False,
) -> None:
    """Timestamp every arrival on both sockets until ``stop_after`` seconds pass with nothing.
    Sends back four arrays: relay (seq, latency ns) and direct (seq, latency ns)."""
    pin_self(cpus)
    if realtime:
        set_realtime(os.getpid(), True)
    ep = select.epoll()
    paths = {relay_sock.fileno(): (relay_sock.recv_into, relay_offset, 0),
             direct_sock.fileno(): (direct_sock.recv_into, 0, 1)}  # fmt: skip
    for s in (relay_sock, direct_sock):
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    seqs = (array("q"), array("q"))
    lats = (array("q"), array("q"))
    buf = bytearray(2048)
    unpack = _SEQ_TS.unpack_from
    now_ns = time.monotonic_ns
    idle_deadline = time.monotonic() + 10.0  # the first packet may take a moment
    while time.monotonic() < idle_deadline:
        events = ep.poll(0.05)
        for fd, _ in events:
            recv, off, which = paths[fd]
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                while True:
                    n = recv(buf)
                    t = now_ns()
                    if n >= off + 16:
                        seq, sent = unpack(buf, off)
                        seqs[which].append(seq)
                        lats[which].append(t - sent)
        if events:
            idle_deadline = time.monotonic() + stop_after
    result.send((seqs[0].tobytes(), lats[0].tobytes(), seqs[1].tobytes(), lats[1].tobytes()))
    result.close()


def proc_cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process, all its threads, in seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return int(rest[11]) / _CLK_TCK, int(rest[12]) / _CLK_TCK


def proc_runtime_seconds(pid: int) -> float:
    """CPU time of every thread of a process in nanosecond resolution (the first field of
    /proc/<pid>/task/<tid>/schedstat, the time utime + stime add up to), in seconds."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(FileNotFoundError),
            open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as fh,
        ):
            total += int(fh.read().split()[0])
    return total / 1e9


def cpu_busy_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU from /proc/stat (busy = all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                return sum(values) - values[3] - values[4], sum(values)
    return 0, 0


def udp_drops(ports: set[int], host: str = "127.0.0.1") -> int:
    """Datagrams the kernel dropped (receive buffer full) on UDP sockets bound to host:port."""
    want = {f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}:{p:04X}"
            for p in ports}  # fmt: skip
    total = 0
    with open("/proc/net/udp", encoding="ascii") as fh:
        next(fh)
        for line in fh:
            parts = line.split()
            if len(parts) >= 13 and parts[1] in want:
                total += int(parts[12])
    return total
