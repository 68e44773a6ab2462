"""The bytes a peer signs to report a relay session's quality (shared by the master, which
verifies them, and by clients, which sign them through the gateway).

Kept free of the master's dependencies (SQLAlchemy, storage) so that a client can import it.
The signature (Ed25519 by the reporting Wavry ID's key) covers ``FEEDBACK_CONTEXT`` plus the
canonical JSON (sorted keys, no spaces, ASCII) of every field but the signature.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["FEEDBACK_CONTEXT", "KNOWN_ISSUES", "feedback_message"]

FEEDBACK_CONTEXT = b"wavry-master-v1 feedback\n"

#: the issue strings Wavry clients send (the master accepts any string of at most 64 characters,
#: at most 16 of them; these are the ones ``quality_score_from_stats`` produces)
KNOWN_ISSUES = ("no_media", "packet_loss", "frame_loss", "high_latency", "drops")


def feedback_message(
    *, session_id: str, relay_id: str, wavry_id: str, quality_score: int, issues: Sequence[str]
) -> bytes:
    body = {
        "issues": list(issues),
        "quality_score": quality_score,
        "relay_id": relay_id,
        "session_id": session_id,
        "wavry_id": wavry_id,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return FEEDBACK_CONTEXT + canonical.encode("ascii")
