"""``wavry master``: relay registry, relay selection, signed relay leases, identities, audit log.

See docs/master.md for the API, the relay state machine, the scoring formula and key rotation.
"""

from __future__ import annotations

from wavry.master.app import MasterContext, create_app
from wavry.master.settings import MasterSettings

__all__ = ["MasterContext", "MasterSettings", "create_app"]
