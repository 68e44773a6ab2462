"""What both sides of a rendezvous share: the offer's Hello, the answer's HelloAck, addresses."""

from __future__ import annotations

import uuid

from wavry.client.settings import ClientSettings
from wavry.gateway.signaling.messages import HelloMaterialError, decode_hello
from wavry.rift.config import PROTOCOL_VERSION, HostOffer
from wavry.rift.negotiation import Rejection, SessionParams, hello_ack, negotiate
from wavry.rift.proto import rift_pb2

__all__ = [
    "Address",
    "NullCore",
    "answer_ack",
    "format_addr",
    "offer_hello",
    "parse_candidate_addr",
    "relay_session_bytes",
]

Address = tuple[str, int]


def answer_ack(hello_b64: str, offer: HostOffer) -> rift_pb2.HelloAck:
    """The ``HelloAck`` preview for an offer's ``hello_b64``: the negotiation's result, or a
    refusal (also for material that does not decode). Never raises on peer input."""
    try:
        result: SessionParams | Rejection = negotiate(decode_hello(hello_b64), offer)
    except HelloMaterialError as exc:
        result = Rejection(rift_pb2.REJECT_INVALID_PARAMETERS, f"bad hello: {exc}")
    return hello_ack(result)


def offer_hello(settings: ClientSettings) -> rift_pb2.Hello:
    hello = settings.hello()
    hello.protocol_version = PROTOCOL_VERSION
    return hello


def parse_candidate_addr(addr: str) -> Address:
    """``"IP:PORT"`` or ``"[IPv6]:PORT"`` (the signaling model validated the shape)."""
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return host, int(port)
    host, _, port = addr.rpartition(":")
    return host, int(port)


def format_addr(addr: Address) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def relay_session_bytes(session_id: str) -> bytes:
    """The 16 raw bytes of a relay session UUID (the relay header's session id)."""
    return uuid.UUID(session_id).bytes


class NullCore:
    """Stands in for the RIFT core while a socket gathers its candidates (STUN needs the
    streaming socket before the connection exists). Drops whatever arrives."""

    dropped = 0

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        self.dropped += 1

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        return []

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None
