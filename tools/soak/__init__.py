"""Memory soak: ``python -m tools.soak --profile ci|2h|8h [--json]`` (see ``docs/soak.md``).

Starts wavry's real processes on loopback (relay, master, ``wavry demo``'s host and client, the
gateway once it exists), drives them with steady load, samples each process's ``VmRSS`` every
second, fits the leak slope by least squares after a warm-up and fails above a threshold.
"""

from __future__ import annotations

from tools.soak.fit import Fit, ProcessVerdict, Threshold, evaluate, fit
from tools.soak.sampler import RssSampler, children_of, read_rss_mb

__all__ = [
    "Fit",
    "ProcessVerdict",
    "RssSampler",
    "Threshold",
    "children_of",
    "evaluate",
    "fit",
    "read_rss_mb",
]
