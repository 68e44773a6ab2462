"""The /proc readers of ``wavry bench relay`` (kernel drop counts, process CPU time)."""

from __future__ import annotations

import os
import socket
import time

from wavry.bench.relay_load import proc_cpu_seconds, udp_drops


def test_udp_drops_counts_a_full_receive_buffer() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    port = rx.getsockname()[1]
    try:
        before = udp_drops({port})
        for _ in range(200):
            tx.send(bytes(1200))
        queued = 0
        rx.setblocking(False)
        while True:
            try:
                rx.recv(2048)
            except BlockingIOError:
                break
            queued += 1
        assert udp_drops({port}) - before == 200 - queued > 0
    finally:
        rx.close()
        tx.close()


def test_proc_cpu_seconds_grows_with_work() -> None:
    user0, sys0 = proc_cpu_seconds(os.getpid())
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    user1, sys1 = proc_cpu_seconds(os.getpid())
    assert user1 + sys1 > user0 + sys0
