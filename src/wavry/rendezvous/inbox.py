"""The signaling messages of one rendezvous, as the client sees them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from wavry.gateway.signaling.messages import (
    AnswerRift,
    Candidate,
    CandidateEntry,
    ErrorMsg,
    RelayCredentials,
    SignalingMessage,
)
from wavry.net.signaling import SignalingSession
from wavry.rendezvous.common import ConnectError

__all__ = ["Inbox"]

log = logging.getLogger(__name__)


class Inbox:
    """Reads the signaling connection for one rendezvous and keeps what concerns it."""

    def __init__(self, session: SignalingSession, username: str, session_id: str) -> None:
        self.session = session
        self.username = username
        self.session_id = session_id
        loop = asyncio.get_running_loop()
        self.answer: asyncio.Future[AnswerRift] = loop.create_future()
        self.relay: asyncio.Future[RelayCredentials] = loop.create_future()
        self.candidates: list[CandidateEntry] = []
        #: the host's NAT mapping, when its CANDIDATE said
        self.host_nat_mapping: str | None = None
        self.got_candidates = asyncio.Event()
        self.on_candidates: Callable[[list[CandidateEntry]], None] | None = None
        self.error: ErrorMsg | None = None
        self.closed = asyncio.Event()

    def reset_relay(self) -> None:
        """Ready for another RELAY_CREDENTIALS (moving to a new relay session)."""
        if self.relay.done():
            self.relay = asyncio.get_running_loop().create_future()

    def _fail(self, msg: ErrorMsg) -> None:
        self.error = msg
        for fut in (self.answer, self.relay):
            if not fut.done():
                fut.set_exception(ConnectError(msg.message))
                fut.exception()  # whoever waits still gets it; nobody may wait for the other

    async def pump(self) -> None:
        try:
            while True:
                msg = await self.session.recv()
                self._dispatch(msg)
        except Exception as exc:  # noqa: BLE001 - the socket ended; whoever waits is told
            log.debug("signaling ended: %s", type(exc).__name__)
        finally:
            self.closed.set()
            gone = ConnectError("the gateway connection closed")
            for fut in (self.answer, self.relay):
                if not fut.done():
                    fut.set_exception(gone)
                    fut.exception()  # mark retrieved: nobody may be waiting any more

    def _dispatch(self, msg: SignalingMessage) -> None:
        sid = getattr(msg, "session_id", None)
        if isinstance(msg, RelayCredentials):
            if msg.rendezvous_id not in (None, self.session_id):
                return
        elif sid not in (None, self.session_id):
            return
        if isinstance(msg, ErrorMsg):
            if self.relay.done() or not self.answer.done():
                self._fail(msg)
            elif not self.relay.done():
                self.relay.set_exception(ConnectError(f"{msg.code}: {msg.message}"))
                self.relay.exception()
            self.error = msg
        elif isinstance(msg, AnswerRift) and msg.target_username == self.username:
            if not self.answer.done():
                self.answer.set_result(msg)
        elif isinstance(msg, Candidate) and msg.target_username == self.username:
            if not self.got_candidates.is_set():
                self.candidates.extend(msg.candidates)
                self.host_nat_mapping = msg.nat_mapping
                self.got_candidates.set()
            elif self.on_candidates is not None:
                self.on_candidates(list(msg.candidates))
        elif isinstance(msg, RelayCredentials) and msg.target_username == self.username:
            if not self.relay.done():
                self.relay.set_result(msg)
