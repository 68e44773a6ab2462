"""Capture interface plumbing: retry policy, size resolution, the registry and "auto"."""

from __future__ import annotations

import threading

import pytest

from wavry.media.capture import base
from wavry.media.capture.base import (
    CaptureBackend,
    CaptureLost,
    CaptureUnavailable,
    RetryPolicy,
    capture_backends,
    open_capture,
    register_capture,
    resolve_size,
)
from wavry.media.capture.testsrc import TestSource


def test_default_policy_waits_like_the_original() -> None:
    assert RetryPolicy().delays() == pytest.approx([0.35, 0.7, 1.4])
    assert RetryPolicy(attempts=6, base_delay=1, max_delay=3).delays() == [1, 2, 3, 3, 3]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_run_retries_lost_capture_then_succeeds() -> None:
    sleeps: list[float] = []
    calls = iter([CaptureLost("gone"), CaptureLost("still gone"), "ok"])

    def attempt() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert RetryPolicy().run(attempt, sleep=sleeps.append) == "ok"
    assert sleeps == pytest.approx([0.35, 0.7])


def test_run_gives_up_after_the_last_attempt() -> None:
    sleeps: list[float] = []

    def attempt() -> None:
        raise CaptureLost("gone for good")

    with pytest.raises(CaptureLost) as info:
        RetryPolicy(attempts=3).run(attempt, sleep=sleeps.append)
    assert len(sleeps) == 2
    assert "gave up after 3 attempts" in "".join(info.value.__notes__)


def test_unavailable_is_not_retried() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise CaptureUnavailable("no display")

    with pytest.raises(CaptureUnavailable):
        RetryPolicy().run(attempt, sleep=lambda _: None)
    assert len(calls) == 1


def test_a_stop_request_cancels_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise CaptureLost("gone")

    with pytest.raises(CaptureLost):
        RetryPolicy(base_delay=60).run(attempt, stop=stop)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("native", "requested", "expected"),
    [
        ((1920, 1080), (None, None), (1920, 1080)),
        ((1920, 1080), (1280, None), (1280, 720)),
        ((1920, 1080), (None, 720), (1280, 720)),
        ((1920, 1080), (1001, 501), (1000, 500)),
        ((1366, 768), (None, 360), (640, 360)),
    ],
)
def test_resolve_size(
    native: tuple[int, int],
    requested: tuple[int | None, int | None],
    expected: tuple[int, int],
) -> None:
    assert resolve_size(*native, *requested) == expected


def test_resolve_size_refuses_absurd_sizes() -> None:
    with pytest.raises(ValueError):
        resolve_size(1920, 1080, 10_000, 100)
    with pytest.raises(CaptureUnavailable):
        resolve_size(1, 1, None, None)


def test_registry_knows_the_builtin_backends() -> None:
    assert {"testsrc", "x11"} <= set(capture_backends())
    with pytest.raises(ValueError, match="unknown capture backend 'nope'.*testsrc"):
        open_capture("nope")
    with pytest.raises(ValueError, match="takes no backend options"):
        open_capture("auto", pattern="game")
    with pytest.raises(ValueError):
        open_capture("testsrc", fps=0)


def test_registering_names() -> None:
    with pytest.raises(ValueError):
        register_capture("auto")
    with pytest.raises(ValueError):
        register_capture("a:b")
    with pytest.raises(ValueError, match="already registered"):
        register_capture("testsrc")(type("Other", (TestSource,), {}))


def test_auto_falls_back_to_testsrc_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with open_capture("auto", width=320, height=240, fps=30) as cap:
        assert cap.name == "testsrc"
        assert cap.grab().width == 320


def test_auto_skips_unavailable_backends_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    class Broken(TestSource):
        def open(self, **kw: object) -> None:  # type: ignore[override]
            opened.append("broken")
            raise CaptureUnavailable("not here")

    monkeypatch.setitem(base._REGISTRY, "broken", Broken)
    monkeypatch.setattr(base, "AUTO_ORDER", ("broken", "testsrc"))
    with open_capture("auto", width=320, height=240, fps=30) as cap:
        assert cap.name == "testsrc"
    assert opened == ["broken"]
    monkeypatch.setattr(base, "AUTO_ORDER", ("broken",))
    with pytest.raises(CaptureUnavailable, match="broken: not here"):
        open_capture("auto")


def test_backend_is_a_context_manager() -> None:
    cap: CaptureBackend = open_capture("testsrc", width=320, height=240, fps=30)
    with cap:
        cap.grab()
    with pytest.raises(RuntimeError):
        cap.grab()
