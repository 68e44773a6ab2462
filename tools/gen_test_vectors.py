"""Generate the RIFT test vectors of docs/protocol.md (docs/rift-test-vectors.json).

Usage: uv run python -m tools.gen_test_vectors [--check]

The vectors come from running the real ``Connection``/``HostEndpoint`` with fixed keys and a
scripted random source, and every intermediate value is re-derived from the primitives so a
reader can follow the transcript byte by byte. tests/rift/test_vectors.py fails on drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from wavry.rift.config import HostOffer, RiftConfig
from wavry.rift.connection import Connection
from wavry.rift.header import HandshakeHeader, TransportHeader
from wavry.rift.host_endpoint import HostEndpoint
from wavry.rift.identity import Identity, make_identity_payload
from wavry.rift.noise import PROLOGUE, PROTOCOL_NAME, NoiseXX, x25519_public_key
from wavry.rift.packet_crypto import packet_nonce
from wavry.rift.proto import rift_pb2

VECTORS_PATH = Path(__file__).resolve().parent.parent / "docs" / "rift-test-vectors.json"

CLIENT_ID_SEED = bytes(range(0x00, 0x20))
HOST_ID_SEED = bytes(range(0x20, 0x40))
CLIENT_STATIC = bytes([0x11]) * 32
CLIENT_EPHEMERAL = bytes([0x22]) * 32
HOST_STATIC = bytes([0x33]) * 32
HOST_EPHEMERAL = bytes([0x44]) * 32
HANDSHAKE_ID_TAIL = bytes(range(0xA0, 0xAC))
ALIAS = 0x01020304
SESSION_ID = bytes(range(0xC0, 0xD0))
CLIENT_ADDR = ("192.0.2.10", 40000)
HOST_ADDR = ("192.0.2.20", 4444)


class ScriptedRandom:
    """Answers each request size from its own queue, so call order between sizes is free."""

    def __init__(self, script: dict[int, list[bytes]]) -> None:
        self._queues: dict[int, deque[bytes]] = defaultdict(deque)
        for size, values in script.items():
            self._queues[size].extend(values)

    def __call__(self, n: int) -> bytes:
        queue = self._queues[n]
        if not queue:
            raise RuntimeError(f"scripted random source has no more {n}-byte values")
        return queue.popleft()


def fixed_hello() -> rift_pb2.Hello:
    return rift_pb2.Hello(
        client_name="vector-client",
        platform=rift_pb2.LINUX,
        supported_codecs=[rift_pb2.H264],
        max_resolution=rift_pb2.Resolution(width=1920, height=1080),
        max_fps=60,
    )


def build_vectors() -> dict[str, Any]:
    client_identity = Identity.from_seed(CLIENT_ID_SEED)
    host_identity = Identity.from_seed(HOST_ID_SEED)
    client_rng = ScriptedRandom({32: [CLIENT_STATIC, CLIENT_EPHEMERAL], 12: [HANDSHAKE_ID_TAIL]})
    host_rng = ScriptedRandom(
        {4: [ALIAS.to_bytes(4, "big")], 32: [HOST_STATIC, HOST_EPHEMERAL], 16: [SESSION_ID]}
    )
    host = HostEndpoint(identity=host_identity, offer=HostOffer(), rng=host_rng)
    client = Connection.client(
        identity=client_identity,
        peer_addr=HOST_ADDR,
        hello=fixed_hello(),
        now=0.0,
        config=RiftConfig(),
        rng=client_rng,
    )
    ((msg1, _),) = client.datagrams_to_send(0.0)
    host.receive_datagram(msg1, CLIENT_ADDR, 0.0)
    ((msg2, _),) = host.datagrams_to_send(0.0)
    client.receive_datagram(msg2, HOST_ADDR, 0.0)
    sent = [d for d, _ in client.datagrams_to_send(0.0)]
    msg3, hello_packet = sent[0], sent[1]

    # Re-derive the transcript from the primitives.
    hsid = bytes(4) + HANDSHAKE_ID_TAIL
    ini = NoiseXX(initiator=True, static_private=CLIENT_STATIC, ephemeral_private=CLIENT_EPHEMERAL)
    res = NoiseXX(initiator=False, static_private=HOST_STATIC, ephemeral_private=HOST_EPHEMERAL)
    m1 = ini.write_message(b"")
    res.read_message(m1)
    host_payload = make_identity_payload(host_identity, res.static_public, session_alias=ALIAS)
    m2 = res.write_message(host_payload)
    ini.read_message(m2)
    client_payload = make_identity_payload(client_identity, ini.static_public)
    m3 = ini.write_message(client_payload)
    res.read_message(m3)
    k1, k2 = ini.split()
    hello_msg = rift_pb2.Message(control=rift_pb2.ControlMessage(hello=fixed_hello()))
    hello_msg.control.hello.protocol_version = 1
    hello_header = TransportHeader(ALIAS, 1).encode()

    rederived = {
        "msg1": HandshakeHeader(hsid, 0).encode() + m1,
        "msg2": HandshakeHeader(hsid, 0).encode() + m2,
        "msg3": TransportHeader(ALIAS, 0).encode() + m3,
    }
    for name, datagram in (("msg1", msg1), ("msg2", msg2), ("msg3", msg3)):
        if rederived[name] != datagram:
            raise RuntimeError(f"{name}: Connection and primitives disagree")
    if hello_packet[:18] != hello_header:
        raise RuntimeError("first data packet header mismatch")

    return {
        "description": "RIFT v1 handshake and first data packet; all byte strings in hex.",
        "protocol_name": PROTOCOL_NAME.decode(),
        "prologue": PROLOGUE.hex(),
        "inputs": {
            "client_identity_seed": CLIENT_ID_SEED.hex(),
            "client_wavry_id": client_identity.wavry_id,
            "host_identity_seed": HOST_ID_SEED.hex(),
            "host_wavry_id": host_identity.wavry_id,
            "client_static_private": CLIENT_STATIC.hex(),
            "client_static_public": x25519_public_key(CLIENT_STATIC).hex(),
            "client_ephemeral_private": CLIENT_EPHEMERAL.hex(),
            "client_ephemeral_public": x25519_public_key(CLIENT_EPHEMERAL).hex(),
            "host_static_private": HOST_STATIC.hex(),
            "host_static_public": x25519_public_key(HOST_STATIC).hex(),
            "host_ephemeral_private": HOST_EPHEMERAL.hex(),
            "host_ephemeral_public": x25519_public_key(HOST_EPHEMERAL).hex(),
            "handshake_id": hsid.hex(),
            "session_alias": ALIAS,
        },
        "host_identity_payload": host_payload.hex(),
        "client_identity_payload": client_payload.hex(),
        "msg1_datagram": msg1.hex(),
        "msg2_datagram": msg2.hex(),
        "msg3_datagram": msg3.hex(),
        "handshake_hash": ini.handshake_hash.hex(),
        "k1_client_to_host": k1.hex(),
        "k2_host_to_client": k2.hex(),
        "first_data_packet": {
            "packet_id": 1,
            "header": hello_header.hex(),
            "nonce": packet_nonce(1).hex(),
            "plaintext_message": hello_msg.SerializeToString().hex(),
            "datagram": hello_packet.hex(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file differs")
    ns = parser.parse_args(argv)
    text = json.dumps(build_vectors(), indent=2) + "\n"
    if ns.check:
        if not VECTORS_PATH.exists() or VECTORS_PATH.read_text() != text:
            print("docs/rift-test-vectors.json is out of date")  # noqa: T201
            return 1
        return 0
    VECTORS_PATH.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
