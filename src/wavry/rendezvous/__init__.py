"""Connect by username or Wavry ID through the gateway, directly or through a relay (issue #6).

* ``wavry.rendezvous.host`` — ``HostRendezvous``: ``wavry host --gateway``'s signaling side
  (answers offers, punches towards the client's candidates, joins relay sessions).
* ``wavry.rendezvous.client`` — ``connect_by_username``: ``wavry connect USERNAME|WAVRY_ID``
  (offer, exchange candidates, one handshake over every path at once, relay fallback, recovery
  after a NAT rebinding, signed relay feedback).

docs/connectivity.md describes the whole flow.
"""

from wavry.rendezvous.client import (
    ConnectError,
    ConnectInfo,
    connect_by_username,
    connect_paths,
)
from wavry.rendezvous.common import answer_ack, offer_hello, parse_candidate_addr
from wavry.rendezvous.host import HostRendezvous

__all__ = [
    "ConnectError",
    "ConnectInfo",
    "HostRendezvous",
    "answer_ack",
    "connect_by_username",
    "connect_paths",
    "offer_hello",
    "parse_candidate_addr",
]
