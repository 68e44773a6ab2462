"""``wavry master``: relay registry, relay selection, signed relay leases, identities, audit log.

See docs/master.md for the API, the relay state machine, the scoring formula and key rotation.
The names below are imported on first use so that registering the CLI parser stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wavry.master.app import MasterContext, create_app
    from wavry.master.settings import MasterSettings

__all__ = ["MasterContext", "MasterSettings", "create_app"]

_LAZY = {
    "MasterContext": "wavry.master.app",
    "create_app": "wavry.master.app",
    "MasterSettings": "wavry.master.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wavry.master' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
