"""Fuzz smoke of every parser: ``python -m tools.fuzz_smoke [--seconds-per-target S] [--seed N]``.

Each registered :class:`~tools.fuzz_smoke.engine.Target` is a parser of untrusted input with
the typed errors it may raise; the engine feeds it random bytes and mutations (bit flips,
truncation, extension, splicing, dictionary tokens, structure-aware JSON edits) of valid seed
inputs built in code. Any other exception is a failure, reported with the target, a hex dump of
the input and the command that replays it. See ``docs/fuzzing.md``.
"""

from __future__ import annotations

from tools.fuzz_smoke.engine import (
    Failure,
    Harness,
    Target,
    TargetResult,
    TargetUnavailable,
    generate_input,
    hexdump,
    run_target,
)
from tools.fuzz_smoke.targets_rift import TARGETS as _RIFT
from tools.fuzz_smoke.targets_services import TARGETS as _SERVICES

__all__ = [
    "REGISTRY",
    "Failure",
    "Harness",
    "Target",
    "TargetResult",
    "TargetUnavailable",
    "generate_input",
    "hexdump",
    "run_target",
    "targets",
]

#: every target, by name
REGISTRY: dict[str, Target] = {t.name: t for t in (*_RIFT, *_SERVICES)}


def targets(names: list[str] | None = None) -> list[Target]:
    """The registered targets (all, or those named; prefix ``rift.`` selects a family)."""
    if not names:
        return list(REGISTRY.values())
    out = []
    for name in names:
        matched = [t for n, t in REGISTRY.items() if n == name or n.startswith(name + ".")]
        if not matched:
            raise KeyError(f"no fuzz target {name!r}; known: {', '.join(REGISTRY)}")
        out += [t for t in matched if t not in out]
    return out
