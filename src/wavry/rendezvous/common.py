"""What both sides of a rendezvous share: the offer's Hello, the answer's HelloAck, addresses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from wavry.client.settings import ClientSettings
from wavry.gateway.signaling.messages import HelloMaterialError, decode_hello
from wavry.net.candidates import NatMapping
from wavry.rift.config import PROTOCOL_VERSION, HostOffer
from wavry.rift.negotiation import Rejection, SessionParams, hello_ack, negotiate
from wavry.rift.proto import rift_pb2

__all__ = [
    "Address",
    "ConnectError",
    "ConnectInfo",
    "NullCore",
    "answer_ack",
    "format_addr",
    "offer_hello",
    "parse_candidate_addr",
    "relay_session_bytes",
]

Address = tuple[str, int]


class ConnectError(Exception):
    """Connecting by username failed; the message says what to do next."""


@dataclass(slots=True)
class ConnectInfo:
    username: str
    host_wavry_id: str = ""
    #: the host's candidates ("type addr")
    candidates: list[str] = field(default_factory=list)
    #: ours, as sent to the host
    own_candidates: list[str] = field(default_factory=list)
    #: the path whose handshake completed: "host 10.1.0.2:4444", "srflx …", "relay ID@addr"
    path: str | None = None
    relayed: bool = False
    relay_id: str | None = None
    relay_session_id: str | None = None
    #: seconds from the start of ``connect``
    answer_s: float | None = None
    relay_requested_s: float | None = None
    handshake_s: float | None = None
    first_frame_s: float | None = None
    #: times our candidates were sent again after the path went silent
    regathers: int = 0
    #: host address changes seen by the RIFT core (NAT rebinding on either side)
    address_changes: int = 0
    #: times a relayed session moved to a new relay session (its relay died or refused us)
    relay_moves: int = 0
    #: how our NAT maps the streaming socket (two STUN servers needed to tell)
    nat_mapping: NatMapping = "unknown"
    feedback: str | None = None


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
