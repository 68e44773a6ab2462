"""Session feedback, accepted only when signed by a peer of a session the master issued.

The original accepted anyone's feedback for any relay, unsigned. Here the body names the session
and the reporting Wavry ID; the signature (Ed25519 by that ID's key) covers
``FEEDBACK_CONTEXT + canonical JSON`` of every field but the signature (built by
``wavry.feedback_protocol``, which clients import too); each peer reports once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from wavry.feedback_protocol import FEEDBACK_CONTEXT, feedback_message
from wavry.rift.identity import InvalidWavryIdError, public_key_from_wavry_id, verify_signature
from wavry.storage.models import Relay, RelaySession

__all__ = ["FEEDBACK_CONTEXT", "FeedbackRefused", "feedback_message", "submit_feedback"]

#: weight of a new report in the relay's quality EWMA
EWMA_WEIGHT = 0.1


class FeedbackRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def submit_feedback(
    session: AsyncSession,
    *,
    session_id: str,
    relay_id: str,
    wavry_id: str,
    quality_score: int,
    issues: Sequence[str],
    signature_hex: str,
    now: float,
) -> Relay:
    try:
        public_key = public_key_from_wavry_id(wavry_id)
    except InvalidWavryIdError as exc:
        raise FeedbackRefused(400, str(exc)) from None
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise FeedbackRefused(400, "signature is not hex") from None
    message = feedback_message(
        session_id=session_id,
        relay_id=relay_id,
        wavry_id=wavry_id,
        quality_score=quality_score,
        issues=issues,
    )
    if not verify_signature(public_key, signature, message):
        raise FeedbackRefused(401, "signature does not verify")
    row = await session.get(RelaySession, session_id)
    if row is None or row.relay_id != relay_id:
        raise FeedbackRefused(404, "no such session on this relay")
    if wavry_id == row.requester:
        if row.requester_feedback_at is not None:
            raise FeedbackRefused(409, "feedback already given for this session")
        row.requester_feedback_at = now
    elif wavry_id == row.target:
        if row.target_feedback_at is not None:
            raise FeedbackRefused(409, "feedback already given for this session")
        row.target_feedback_at = now
    else:
        raise FeedbackRefused(403, "not a peer of this session")
    relay = await session.get(Relay, relay_id)
    if relay is None:
        raise FeedbackRefused(404, "relay no longer registered")
    if quality_score > 50:
        relay.success_count += 1
    else:
        relay.failure_count += 1
    relay.feedback_score = (1 - EWMA_WEIGHT) * relay.feedback_score + EWMA_WEIGHT * quality_score
    await session.flush()
    return relay
