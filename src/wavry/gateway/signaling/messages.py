"""The signaling dialect: one set of JSON messages over the gateway's ``GET /ws`` WebSocket.

Every frame is one UTF-8 JSON object, **internally tagged** by ``type``
(``{"type": "BIND", "token": "…"}``). There is no envelope, no ``payload`` wrapper and no second
spelling: the original had two incompatible dialects (reference §7.3); this is the single one,
specified in ``docs/signaling.md`` and exported as JSON schema to ``docs/signaling.schema.json``
(``python -m tools.gen_signaling_schema``).

Parsing is strict: unknown ``type``, unknown or missing fields, wrong JSON types (no coercion:
``"5"`` is not ``5``), duplicate keys, ``NaN``, over-long fields and over-size frames are all
refused with a typed :class:`SignalingError` carrying the :class:`ErrorCode` the gateway answers
with. Network input never raises anything else.

RIFT hello material (what an offer and an answer carry) is described in ``docs/signaling.md``
§"Offer and answer": ``hello_b64`` is a serialized ``rift.Hello`` protobuf (the very Hello the
client sends in-band after the Noise handshake) and ``ack_b64`` a serialized ``rift.HelloAck``
*preview* (the host's negotiation result, without session id and alias, which only the handshake
assigns). Both are standard padded base64. ``wavry_id`` names the sender's RIFT identity, which
the peer pins for the handshake — the RIFT identity payload proves it end to end, so the gateway
only forwards it. :func:`encode_hello` / :func:`decode_hello` (and the ``ack`` pair) are the
peer-side helpers.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import json
import re
from typing import Annotated, Any, Literal

from google.protobuf.message import DecodeError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id
from wavry.rift.proto import rift_pb2

__all__ = [
    "MAX_FRAME_BYTES",
    "AnswerRift",
    "Bind",
    "Bound",
    "Candidate",
    "CandidateEntry",
    "ClientMessage",
    "ErrorCode",
    "ErrorMsg",
    "HelloMaterialError",
    "InboundMessage",
    "MalformedJson",
    "MessageTooLarge",
    "InvalidMessage",
    "OfferRift",
    "Presence",
    "RelayCredentials",
    "RequestRelay",
    "ServerMessage",
    "SignalingMessage",
    "SignalingError",
    "Watch",
    "Watching",
    "decode_ack",
    "decode_hello",
    "dump",
    "encode_ack",
    "encode_hello",
    "parse_client",
    "parse_server",
]

#: a frame (text) larger than this is refused before it is parsed
MAX_FRAME_BYTES = 64 * 1024
#: base64 of the RIFT hello material: 8192 characters (6144 bytes decoded) as the original
MAX_MATERIAL_CHARS = 8192
MAX_TOKEN_CHARS = 256
MAX_CANDIDATES = 16
MAX_WATCH = 64
MAX_ERROR_MESSAGE = 512
#: relays one REQUEST_RELAY may ask the master to avoid
MAX_AVOID_RELAYS = 4
MAX_LEASE_CHARS = 8192


class ErrorCode(enum.StrEnum):
    """``ERROR.code`` values. The ones marked *closes* end the connection after the ERROR."""

    BAD_JSON = "bad_json"  # closes: the frame is not one JSON object
    BAD_MESSAGE = "bad_message"  # closes: unknown type, missing/extra/invalid field
    TOO_LARGE = "too_large"  # closes: frame over 64 KiB
    BINARY_FRAME = "binary_frame"  # closes: only text frames are spoken
    RATE_LIMITED = "rate_limited"  # closes: over the per-connection message rate
    NOT_BOUND = "not_bound"  # closes: anything but BIND before BOUND
    ALREADY_BOUND = "already_bound"  # closes: a second BIND on the same connection
    BIND_TIMEOUT = "bind_timeout"  # closes: no BIND within the bind deadline
    INVALID_TOKEN = "invalid_token"  # closes: unknown, expired or revoked token, banned user
    BIND_RATE_LIMITED = "bind_rate_limited"  # closes: too many binds from this address
    SESSION_REPLACED = "session_replaced"  # closes: a newer BIND of the same user and role
    WRONG_ROLE = "wrong_role"  # closes: e.g. a host sending OFFER_RIFT
    SLOW_CONSUMER = "slow_consumer"  # closes: the connection does not read its messages
    SHUTTING_DOWN = "shutting_down"  # closes: the gateway is stopping
    UNKNOWN_TARGET = "unknown_target"  # no such account
    NOT_SHARED = "not_shared"  # the target's owner does not share its host with the sender
    NO_RENDEZVOUS = "no_rendezvous"  # host answering a client that did not offer
    TARGET_OFFLINE = "target_offline"  # the target has no bound connection of that role
    RELAY_UNAVAILABLE = "relay_unavailable"  # master not configured, unreachable or no relay
    RELAY_RATE_LIMITED = "relay_rate_limited"
    INTERNAL = "internal"  # a gateway-side failure (details in the gateway's log)


#: codes after which the gateway closes the connection
CLOSING_CODES = frozenset(
    {
        ErrorCode.BAD_JSON,
        ErrorCode.BAD_MESSAGE,
        ErrorCode.TOO_LARGE,
        ErrorCode.BINARY_FRAME,
        ErrorCode.RATE_LIMITED,
        ErrorCode.NOT_BOUND,
        ErrorCode.ALREADY_BOUND,
        ErrorCode.BIND_TIMEOUT,
        ErrorCode.INVALID_TOKEN,
        ErrorCode.BIND_RATE_LIMITED,
        ErrorCode.SESSION_REPLACED,
        ErrorCode.WRONG_ROLE,
        ErrorCode.SLOW_CONSUMER,
        ErrorCode.SHUTTING_DOWN,
    }
)


class SignalingError(Exception):
    """A frame that is not a valid message. ``code`` is what the gateway answers with."""

    code: ErrorCode = ErrorCode.BAD_MESSAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message[:MAX_ERROR_MESSAGE]


class MessageTooLarge(SignalingError):
    code = ErrorCode.TOO_LARGE


class MalformedJson(SignalingError):
    code = ErrorCode.BAD_JSON


class InvalidMessage(SignalingError):
    code = ErrorCode.BAD_MESSAGE


class HelloMaterialError(ValueError):
    """``hello_b64`` / ``ack_b64`` is not base64 of the expected RIFT protobuf (peer side)."""


# --- field types --------------------------------------------------------------------------------

_TOKEN_RE = r"^[A-Za-z0-9_.\-]{32,256}$"
_USERNAME_RE = r"^[a-z0-9_.\-]{3,32}$"
_UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_B64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_REGION_RE = r"^[a-z0-9][a-z0-9\-]{0,63}$"
_ADDR_RE = r"^(?:[0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,39}\]):[0-9]{1,5}$"
_RELAY_ID_RE = r"^[A-Za-z0-9_.:\-]{1,64}$"


def _check_wavry_id(value: str) -> str:
    try:
        public_key_from_wavry_id(value)
    except InvalidWavryIdError:
        raise ValueError("not a canonical Wavry ID (43 chars of unpadded base64url)") from None
    return value


def _check_b64(value: str) -> str:
    if not value or _B64_RE.fullmatch(value) is None:
        raise ValueError("not standard padded base64")
    return value


def _check_addr(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or len(port) > 5 or not 1 <= int(port) <= 65535:
        raise ValueError("address must be IP:PORT or [IPv6]:PORT with port 1..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("not an IPv6 address in brackets") from None
        return value
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError("address must be an IPv4 literal or a bracketed IPv6 literal") from None
    return value


Token = Annotated[str, Field(pattern=_TOKEN_RE, max_length=MAX_TOKEN_CHARS)]
#: usernames travel in their canonical lower-case form (as BOUND and the HTTP API return them)
Username = Annotated[str, Field(pattern=_USERNAME_RE, min_length=3, max_length=32)]
#: a UUID in canonical lower-case text form
SessionId = Annotated[str, Field(pattern=_UUID_RE, min_length=36, max_length=36)]
WavryId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9_\-]{43}$", min_length=43, max_length=43),
    AfterValidator(_check_wavry_id),
]
Material = Annotated[
    str,
    Field(pattern=_B64_RE.pattern, min_length=4, max_length=MAX_MATERIAL_CHARS),
    AfterValidator(_check_b64),
]
Address = Annotated[
    str,
    Field(pattern=_ADDR_RE, min_length=6, max_length=47),
    AfterValidator(_check_addr),
]
Role = Literal["host", "client"]


def _type_required(schema: dict[str, Any]) -> None:
    """``type`` has a default so that code can write ``Bind(token=…)``, but on the wire it is
    required: say so in the exported schema."""
    props = schema.get("properties", {})
    if "type" in props:
        props["type"].pop("default", None)
        required = schema.setdefault("required", [])
        if "type" not in required:
            required.insert(0, "type")


class SignalingMessage(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, json_schema_extra=_type_required
    )


# --- client -> gateway ---------------------------------------------------------------------------


class Bind(SignalingMessage):
    """First message of every connection: authenticate with a gateway session token.

    ``role`` says what this connection is: ``host`` (answers offers; its presence is visible to
    accounts allowed to reach it) or ``client`` (offers, watches presence). A user has at most
    one bound connection per role; a newer BIND replaces the older one."""

    type: Literal["BIND"] = "BIND"
    token: Token
    role: Role = "client"


class Watch(SignalingMessage):
    """Subscribe to the presence of these hosts (replaces the previous watch list; ``[]``
    unsubscribes). Each name is checked against the access policy; allowed ones get a PRESENCE
    now and on every change, refused ones an ERROR each."""

    type: Literal["WATCH"] = "WATCH"
    usernames: list[Username] = Field(max_length=MAX_WATCH)


class OfferRift(SignalingMessage):
    """Client -> host: start a RIFT session. ``hello_b64`` is base64 of the serialized
    ``rift.Hello`` the client will send after the handshake; ``wavry_id`` is the client's RIFT
    identity the host should expect in the handshake's identity payload."""

    type: Literal["OFFER_RIFT"] = "OFFER_RIFT"
    target_username: Username
    hello_b64: Material
    wavry_id: WavryId | None = None
    session_id: SessionId | None = None


class AnswerRift(SignalingMessage):
    """Host -> client: answer an offer. ``ack_b64`` is base64 of a serialized ``rift.HelloAck``
    preview (negotiated parameters or refusal; no session id/alias); ``wavry_id`` is the host's
    RIFT identity, which the client pins for the handshake."""

    type: Literal["ANSWER_RIFT"] = "ANSWER_RIFT"
    target_username: Username
    ack_b64: Material
    wavry_id: WavryId | None = None
    session_id: SessionId | None = None


class CandidateEntry(SignalingMessage):
    """One transport address: ``host`` (a local interface), ``srflx`` (as seen by STUN) or
    ``relay`` (a relay's address)."""

    addr: Address
    type: Literal["host", "srflx", "relay"]


class Candidate(SignalingMessage):
    """Either direction: addresses the sender can be reached at (IP literals only)."""

    type: Literal["CANDIDATE"] = "CANDIDATE"
    target_username: Username
    candidates: list[CandidateEntry] = Field(min_length=1, max_length=MAX_CANDIDATES)
    session_id: SessionId | None = None
    #: how the sender's NAT maps its streaming socket, when it could tell (two STUN servers):
    #: ``endpoint-dependent`` means punching towards it is hopeless, go for a relay early
    nat_mapping: Literal["endpoint-independent", "endpoint-dependent"] | None = None


class RequestRelay(SignalingMessage):
    """Client -> host: ask for a relay session. Each peer receives its own RELAY_CREDENTIALS
    (the client with role ``client``, the host with role ``server``)."""

    type: Literal["REQUEST_RELAY"] = "REQUEST_RELAY"
    target_username: Username
    region: Annotated[str, Field(pattern=_REGION_RE)] | None = None
    session_id: SessionId | None = None
    #: relays that just failed this client (refused its lease or went silent): the master
    #: offers another one when it has one
    avoid_relay_ids: list[Annotated[str, Field(pattern=_RELAY_ID_RE)]] = Field(
        default_factory=list, max_length=MAX_AVOID_RELAYS
    )


# --- gateway -> client ---------------------------------------------------------------------------


class Bound(SignalingMessage):
    type: Literal["BOUND"] = "BOUND"
    #: the account's user id
    user: Annotated[str, Field(min_length=1, max_length=64)]
    username: Username
    role: Role


class ErrorMsg(SignalingMessage):
    type: Literal["ERROR"] = "ERROR"
    code: Annotated[ErrorCode, Field(strict=False)]
    message: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE)]
    #: the username the refused message named, when there was one
    target_username: Username | None = None
    session_id: SessionId | None = None


class Presence(SignalingMessage):
    type: Literal["PRESENCE"] = "PRESENCE"
    username: Username
    #: whether the user has a bound ``host`` connection
    online: bool


class Watching(SignalingMessage):
    """Answer to WATCH: the names now watched (the allowed subset of the request)."""

    type: Literal["WATCHING"] = "WATCHING"
    usernames: list[Username] = Field(max_length=MAX_WATCH)


class RelayCredentials(SignalingMessage):
    """Your own relay lease: present ``lease`` to the relay at ``addr`` in ``role``."""

    type: Literal["RELAY_CREDENTIALS"] = "RELAY_CREDENTIALS"
    #: the other peer (the requester's target, or the requester for the host)
    target_username: Username
    relay_id: Annotated[str, Field(pattern=_RELAY_ID_RE)]
    addr: Annotated[str, Field(min_length=1, max_length=64)]
    #: the relay session id (UUID); goes into the 20-byte relay header
    session_id: SessionId
    #: PASETO v4.public lease for this peer, signed by the master
    lease: Annotated[str, Field(min_length=1, max_length=MAX_LEASE_CHARS)]
    role: Literal["client", "server"]
    #: unix seconds
    expires_at: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    #: the rendezvous session id of the REQUEST_RELAY, echoed
    rendezvous_id: SessionId | None = None


ClientMessage = Annotated[
    Bind | Watch | OfferRift | AnswerRift | Candidate | RequestRelay,
    Field(discriminator="type"),
]
ServerMessage = Annotated[
    Bound | ErrorMsg | Presence | Watching | OfferRift | AnswerRift | Candidate | RelayCredentials,
    Field(discriminator="type"),
]

_CLIENT: TypeAdapter[Any] = TypeAdapter(ClientMessage)
_SERVER: TypeAdapter[Any] = TypeAdapter(ServerMessage)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedJson(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not JSON")


def _load(data: str | bytes) -> dict[str, Any]:
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_FRAME_BYTES:
            raise MessageTooLarge(f"frame over {MAX_FRAME_BYTES} bytes")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJson("frame is not UTF-8") from None
    else:
        text = data
        if len(text) > MAX_FRAME_BYTES or (
            len(text) * 4 > MAX_FRAME_BYTES
            and len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
        ):
            raise MessageTooLarge(f"frame over {MAX_FRAME_BYTES} bytes")
    try:
        # the C decoder turns absurd nesting into RecursionError, caught below
        doc = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except MalformedJson:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedJson(f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(doc, dict):
        raise MalformedJson("a frame must be one JSON object")
    return doc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', '')}"[:150])
    return "; ".join(parts) or "invalid message"


def _parse(adapter: TypeAdapter[Any], data: str | bytes) -> Any:
    doc = _load(data)
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage("missing string field 'type'")
    try:
        return adapter.validate_python(doc)
    except ValidationError as exc:
        raise InvalidMessage(_describe(exc)) from None


InboundMessage = Bind | Watch | OfferRift | AnswerRift | Candidate | RequestRelay


def parse_client(data: str | bytes) -> InboundMessage:
    """Parse one client -> gateway frame or raise :class:`SignalingError`."""
    msg: InboundMessage = _parse(_CLIENT, data)
    return msg


def parse_server(data: str | bytes) -> SignalingMessage:
    """Parse one gateway -> client frame (what a client library does) or raise
    :class:`SignalingError`."""
    msg: SignalingMessage = _parse(_SERVER, data)
    return msg


def dump(msg: SignalingMessage) -> str:
    """Serialize a message to its compact JSON text (``None`` fields omitted)."""
    return json.dumps(msg.model_dump(mode="json", exclude_none=True), separators=(",", ":"))


def client_schema() -> dict[str, Any]:
    return _CLIENT.json_schema()


def server_schema() -> dict[str, Any]:
    return _SERVER.json_schema()


# --- RIFT hello material (peer side) -------------------------------------------------------------


def _b64(data: bytes) -> str:
    if len(data) > MAX_MATERIAL_CHARS // 4 * 3:
        raise HelloMaterialError("hello material too large")
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_MATERIAL_CHARS or not _B64_RE.fullmatch(text):
        raise HelloMaterialError("not standard padded base64 within the size cap")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HelloMaterialError("not base64") from None


def encode_hello(hello: rift_pb2.Hello) -> str:
    return _b64(hello.SerializeToString())


def decode_hello(text: str) -> rift_pb2.Hello:
    hello = rift_pb2.Hello()
    try:
        hello.ParseFromString(_unb64(text))
    except DecodeError:
        raise HelloMaterialError("not a serialized rift.Hello") from None
    return hello


def encode_ack(ack: rift_pb2.HelloAck) -> str:
    return _b64(ack.SerializeToString())


def decode_ack(text: str) -> rift_pb2.HelloAck:
    ack = rift_pb2.HelloAck()
    try:
        ack.ParseFromString(_unb64(text))
    except DecodeError:
        raise HelloMaterialError("not a serialized rift.HelloAck") from None
    return ack
