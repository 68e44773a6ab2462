"""A STUN server (Debian coturn, ``turnserver --stun-only``) on the lab's public network."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavry.net.stun import Method, StunError, encode_request, parse_message
from wavry.netlab.topology import SERVICE_IP, NatLab, NetlabError, NetlabUnavailable

__all__ = ["StunServer", "start_stun", "stun_mapped", "stun_only_config"]

_START_TIMEOUT = 10.0


def stun_mapped(
    sock: socket.socket, server: tuple[str, int], *, timeout: float = 2.0
) -> tuple[str, int]:
    """One STUN Binding from ``sock`` (a UDP socket, e.g. ``lab.socket("client")``): the address
    the server saw. Retransmits every 200 ms; raises ``TimeoutError`` after ``timeout``.

    Datagrams that are not the answer (a peer's probes, another transaction) are skipped, so use
    it on a socket nobody else reads at the same time."""
    request = encode_request(Method.BINDING, [], fingerprint=True)
    txid = request[8:20]
    deadline = time.monotonic() + timeout
    old = sock.gettimeout()
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no STUN answer from {server[0]}:{server[1]}")
            sock.sendto(request, server)
            resend = min(deadline, now + 0.2)
            while (left := resend - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, _ = sock.recvfrom(2048)
                except (TimeoutError, BlockingIOError):
                    break
                except ConnectionRefusedError:
                    continue  # an ICMP error queued by an earlier send (IP_RECVERR is off)
                try:
                    msg = parse_message(data)
                except StunError:
                    continue
                if msg.txid == txid and msg.is_success:
                    mapped = msg.mapped_address()
                    if mapped is not None:
                        return mapped
    finally:
        sock.settimeout(old)


@dataclass
class StunServer:
    """coturn running in the lab's ``pub`` namespace."""

    lab: NatLab
    proc: subprocess.Popen[Any]
    address: tuple[str, int]
    workdir: Path
    _closed: bool = field(default=False, repr=False)

    @property
    def env_value(self) -> str:
        """For ``WAVRY_STUN_SERVERS``."""
        return f"{self.address[0]}:{self.address[1]}"

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "turn.out").read_text(errors="replace")[-chars:]
        return "(no log)"

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def stun_only_config(
    listening_ips: Sequence[str],
    port: int,
    workdir: Path,
    *,
    log_file: str,
    extra: Sequence[str] = (),
) -> str:
    """A coturn configuration for a plain STUN server: no TURN, TCP, TLS, DTLS, CLI or user
    database; state files in ``workdir``. Shared by the NAT lab and the loopback STUN tests."""
    lines = [f"listening-ip={ip}" for ip in listening_ips]
    lines += [
        f"listening-port={port}",
        "stun-only",
        "no-tcp",
        "no-tls",
        "no-dtls",
        "no-cli",
        *extra,
        "simple-log",
        f"log-file={log_file}",
        f"pidfile={workdir / 'turn.pid'}",
        f"userdb={workdir / 'turndb'}",
    ]
    return "\n".join(lines) + "\n"


def start_stun(lab: NatLab, *, address: str = SERVICE_IP, port: int = 3478) -> StunServer:
    """Start coturn in STUN-only mode on ``address:port`` in ``pub`` and wait for a Binding
    answer (from a socket in ``pub``). No TLS, no TCP, no database, no relay ports."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise NetlabUnavailable(["turnserver (apt-get install coturn)"])
    workdir = Path(tempfile.mkdtemp(prefix=f"{lab.prefix}-stun-"))
    conf = workdir / "stun.conf"
    conf.write_text(
        stun_only_config([address], port, workdir, log_file="stdout", extra=["no-rfc5780"])
    )
    with open(workdir / "turn.out", "wb") as out:
        proc = lab.popen(
            "pub",
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = StunServer(lab, proc, (address, port), workdir)
    try:
        probe = lab.socket("pub")
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise NetlabError(
                        f"turnserver exited ({proc.returncode}):\n{server.log_tail()}"
                    )
                try:
                    stun_mapped(probe, (address, port), timeout=0.3)
                    return server
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise NetlabError(
                            f"turnserver did not answer a Binding on {address}:{port}:\n"
                            f"{server.log_tail()}"
                        ) from None
        finally:
            probe.close()
    except BaseException:
        server.stop()
        raise
