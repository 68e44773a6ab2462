"""The fuzz-smoke engine: deterministic mutation of seed inputs, typed-error oracle, reports.

A :class:`Target` names a parser and builds a :class:`Harness`: valid seed inputs made in code,
the function that feeds one input to the parser, and the exception types the parser is *allowed*
to raise on hostile input (its typed errors). Every other exception — ``IndexError``,
``struct.error``, ``KeyError``, ``RecursionError``, an ``AssertionError`` from an oracle the
harness checks — is a failure, as is an input that runs longer than ``input_timeout``.

Inputs are a pure function of ``(seed, target name, iteration)``: iteration *i* draws its
mutations from ``random.Random(f"{seed}:{name}:{i}")``. A time budget decides how many iterations
run, never which inputs they are, so ``--seed N --target NAME --iterations I+1`` replays a failure
at iteration *I* exactly (stateful harnesses included: they see the same history).
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Failure",
    "Harness",
    "InputTimeout",
    "Target",
    "TargetResult",
    "TargetUnavailable",
    "generate_input",
    "hexdump",
    "run_target",
]

#: "interesting" byte values and integers written over random positions
_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


class TargetUnavailable(Exception):
    """The module a target needs cannot be imported or set up here (reported, not fuzzed)."""


class InputTimeout(Exception):
    """One input ran longer than the per-input limit (a hang or a quadratic blow-up)."""


@dataclass
class Harness:
    """What one target fuzzes: seeds, the call, and the errors the parser may raise."""

    seeds: Sequence[bytes]
    call: Callable[[bytes], object]
    expected: tuple[type[BaseException], ...]
    #: generated inputs stay near this size (some mutations overshoot it on purpose)
    max_size: int = 2048
    #: tokens spliced into inputs (keywords of text formats, magic numbers)
    dictionary: Sequence[bytes] = ()
    #: the inputs are JSON documents: add structure-aware mutations (replace/delete/add values)
    json: bool = False


@dataclass(frozen=True)
class Target:
    """A registered parser. ``modules`` are the source modules its harness drives."""

    name: str
    modules: tuple[str, ...]
    build: Callable[[], Harness]
    description: str = ""


@dataclass
class Failure:
    target: str
    iteration: int
    seed: int
    error: str
    traceback: str
    data: bytes

    def reproducer(self) -> str:
        return (
            f"python -m tools.fuzz_smoke --target {self.target} --seed {self.seed} "
            f"--iterations {self.iteration + 1}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "iteration": self.iteration,
            "seed": self.seed,
            "error": self.error,
            "traceback": self.traceback,
            "input_hex": self.data.hex(),
            "input_len": len(self.data),
            "reproducer": self.reproducer(),
            "replay_input": f"python -m tools.fuzz_smoke --target {self.target} "
            f"--input-hex {self.data.hex()}",
        }

    def describe(self) -> str:
        lines = [
            f"FAIL {self.target} at iteration {self.iteration} (seed {self.seed}): {self.error}",
            f"  reproduce: {self.reproducer()}",
            f"  input ({len(self.data)} bytes):",
            *("    " + line for line in hexdump(self.data).splitlines()),
            "  traceback (innermost frames):",
            *("    " + line for line in self.traceback.rstrip().splitlines()),
        ]
        return "\n".join(lines)


@dataclass
class TargetResult:
    name: str
    status: str  # "pass", "fail", "unavailable"
    iterations: int = 0
    seconds: float = 0.0
    build_seconds: float = 0.0
    accepted: int = 0
    rejected: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    failure: Failure | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "status": self.status,
            "iterations": self.iterations,
            "seconds": round(self.seconds, 3),
            "build_seconds": round(self.build_seconds, 3),
            "execs_per_s": round(self.iterations / self.seconds) if self.seconds else 0,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejections": dict(sorted(self.rejections.items())),
            "failure": None if self.failure is None else self.failure.as_dict(),
            "detail": self.detail,
        }


def hexdump(data: bytes, limit: int = 512) -> str:
    """``xxd``-style dump of the first ``limit`` bytes."""
    out = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{off:08x}  {hexes:<47}  {text}")
    if len(data) > limit:
        out.append(f"... ({len(data) - limit} more bytes; full input in the JSON report)")
    return "\n".join(out) if out else "(empty input)"


# -- mutations ------------------------------------------------------------------------------------


def _pos(rng: random.Random, buf: bytearray, *, end: bool = False) -> int:
    return rng.randint(0, len(buf)) if end else rng.randrange(len(buf))


def _flip_bit(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    if buf:
        buf[_pos(rng, buf)] ^= 1 << rng.randrange(8)


def _set_byte(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    if buf:
        buf[_pos(rng, buf)] = rng.choice(_BYTES) if rng.random() < 0.6 else rng.randrange(256)


def _set_int(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    width = rng.choice((1, 2, 4, 8))
    if len(buf) < width:
        return
    value = rng.choice(_INTS) % (1 << (8 * width))
    if rng.random() < 0.3:
        value = (value + rng.choice((-1, 1))) % (1 << (8 * width))
    at = rng.randint(0, len(buf) - width)
    buf[at : at + width] = value.to_bytes(width, rng.choice(("big", "little")))


def _truncate(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    if buf:
        del buf[_pos(rng, buf) :]


def _extend(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    buf.extend(rng.randbytes(rng.choice((1, 2, 4, 16, 64, 300))))


def _insert(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    at = _pos(rng, buf, end=True)
    buf[at:at] = rng.randbytes(rng.randint(1, 16))


def _delete(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    if buf:
        at = _pos(rng, buf)
        del buf[at : at + rng.randint(1, 16)]


def _duplicate(rng: random.Random, buf: bytearray, _h: Harness) -> None:
    if buf:
        at = _pos(rng, buf)
        chunk = buf[at : at + rng.randint(1, 64)]
        to = _pos(rng, buf, end=True)
        buf[to:to] = chunk


def _splice(rng: random.Random, buf: bytearray, h: Harness) -> None:
    other = rng.choice(h.seeds) if h.seeds else rng.randbytes(32)
    cut_a = _pos(rng, buf, end=True)
    cut_b = rng.randint(0, len(other))
    buf[cut_a:] = other[cut_b:]


def _token(rng: random.Random, buf: bytearray, h: Harness) -> None:
    if not h.dictionary:
        _insert(rng, buf, h)
        return
    token = rng.choice(h.dictionary)
    at = _pos(rng, buf, end=True)
    if rng.random() < 0.5 and buf:
        buf[at : at + len(token)] = token  # overwrite
    else:
        buf[at:at] = token


_JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**64,
    -(2**63) - 1,
    1e308,
    -0.0,
    0.5,
    "",
    "x" * 300,
    "\u202e\u0000",
    "\ud800",
    "1",
    "null",
    [],
    {},
    [1, "a", None],
    {"a": {"b": [1]}},
)


def _json_nodes(doc: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((doc, key))
            _json_nodes(value, out)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.append((doc, index))
            _json_nodes(value, out)


def _json_mutate(rng: random.Random, buf: bytearray, h: Harness) -> None:
    """Structure-aware: change one value, key or container of a JSON document (after an
    optional one-byte selector prefix, which is kept)."""
    prefix = b""
    try:
        doc = json.loads(bytes(buf))
    except (ValueError, RecursionError):
        try:
            prefix, doc = bytes(buf[:1]), json.loads(bytes(buf[1:]))
        except (ValueError, RecursionError):
            _token(rng, buf, h)
            return
    nodes: list[tuple[Any, Any]] = []
    _json_nodes(doc, nodes)
    op = rng.randrange(6)
    if not nodes or op == 5:
        # raw-text tricks json.dumps never produces: deep nesting, duplicate keys, NaN
        text = bytes(buf[len(prefix) :])
        trick = rng.choice((b"[" * 3000 + b"]" * 3000, b"NaN", b"Infinity", b'"\\ud800"'))
        if text.startswith(b"{") and rng.random() < 0.5:
            dup = text[1 : text.find(b",")] if b"," in text else b'"a":1'
            buf[:] = prefix + b"{" + dup + b"," + text[1:]
        else:
            at = rng.randint(0, len(buf))
            buf[at:at] = trick
        return
    container, key = rng.choice(nodes)
    if op == 0:
        container[key] = rng.choice(_JSON_VALUES)
    elif op == 1:
        del container[key]
    elif op == 2 and isinstance(container, dict):
        container[rng.choice(("extra", "type", "", "__proto__", str(key) + "_"))] = rng.choice(
            _JSON_VALUES
        )
    elif op == 3:
        container[key] = [container[key]] if rng.random() < 0.5 else {"v": container[key]}
    else:
        value = container[key]
        if isinstance(value, str):
            container[key] = value * rng.choice((0, 2, 50))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            container[key] = rng.choice((-value, value * 1000, value + 1, str(value)))
        else:
            container[key] = rng.choice(_JSON_VALUES)
    buf[:] = prefix + json.dumps(doc, separators=(",", ":")).encode()


_MUTATORS = (
    _flip_bit,
    _flip_bit,
    _set_byte,
    _set_byte,
    _set_int,
    _truncate,
    _extend,
    _insert,
    _delete,
    _duplicate,
    _splice,
    _token,
    _token,
)


def generate_input(harness: Harness, seed: int, name: str, iteration: int) -> bytes:
    """Input number ``iteration`` of target ``name`` for ``seed`` (a pure function)."""
    rng = random.Random(f"{seed}:{name}:{iteration}")
    limit = harness.max_size
    if not harness.seeds or rng.random() < 0.08:
        size = rng.choice((0, 1, 2, 8, 17, 18, 20, 29, 30, 64, 256, limit))
        return rng.randbytes(min(size, limit + 64))
    buf = bytearray(rng.choice(harness.seeds))
    if rng.random() < 0.02:
        return bytes(buf)  # an unmodified seed now and then: accepted inputs keep state moving
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        if harness.json and rng.random() < 0.6:
            _json_mutate(rng, buf, harness)
        else:
            rng.choice(_MUTATORS)(rng, buf, harness)
    if len(buf) > limit + 64:
        del buf[limit + 64 :]
    return bytes(buf)


# -- running --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``InputTimeout`` in this (main) thread after ``seconds``; no-op elsewhere."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def _alarm(_signum: int, _frame: object) -> None:
        raise InputTimeout(f"one input ran longer than {seconds} s")

    try:
        previous = signal.signal(signal.SIGALRM, _alarm)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _short_traceback(exc: BaseException, frames: int = 8) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-frames)
    return "".join(lines)


def run_one(harness: Harness, data: bytes) -> tuple[str, BaseException | None]:
    """Feed one input. Returns ("accepted"|"rejected", exc) or raises the unexpected exception."""
    try:
        harness.call(data)
    except harness.expected as exc:
        return "rejected", exc
    return "accepted", None


def run_target(
    target: Target,
    *,
    seed: int = 1,
    seconds: float = 2.0,
    iterations: int | None = None,
    input_timeout: float = 2.0,
    only_input: bytes | None = None,
) -> TargetResult:
    """Fuzz one target for ``seconds`` (or exactly ``iterations`` inputs, or one given input)."""
    started = time.perf_counter()
    try:
        harness = target.build()
    except TargetUnavailable as exc:
        return TargetResult(target.name, "unavailable", detail=str(exc))
    result = TargetResult(target.name, "pass")
    result.build_seconds = time.perf_counter() - started
    deadline = time.perf_counter() + seconds  # the budget is for fuzzing, not for set-up
    fuzz_started = time.perf_counter()
    i = 0
    while True:
        if only_input is not None:
            if i == 1:
                break
            data = only_input
        elif iterations is not None:
            if i >= iterations:
                break
        elif i > 0 and time.perf_counter() >= deadline:
            break
        if only_input is None:
            data = generate_input(harness, seed, target.name, i)
        try:
            with _time_limit(input_timeout):
                outcome, refusal = run_one(harness, data)
        except Exception as unexpected:  # noqa: BLE001 - catching everything is the point
            result.status = "fail"
            result.failure = Failure(
                target=target.name,
                iteration=i,
                seed=seed,
                error=f"{type(unexpected).__name__}: {unexpected}"[:500],
                traceback=_short_traceback(unexpected),
                data=data,
            )
            result.iterations = i + 1
            break
        if outcome == "accepted":
            result.accepted += 1
        else:
            result.rejected += 1
            key = type(refusal).__name__
            reason = getattr(refusal, "reason", None)
            if reason is not None:
                key += f"({getattr(reason, 'value', reason)})"
            result.rejections[key] = result.rejections.get(key, 0) + 1
        i += 1
        result.iterations = i
    result.seconds = time.perf_counter() - fuzz_started
    return result
