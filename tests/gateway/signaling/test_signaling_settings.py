"""SignalingSettings env names and the admission policy helpers (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wavry.gateway.settings import GatewaySettings
from wavry.gateway.signaling.limits import ConnectionCaps, MessageRate, origin_refusal
from wavry.gateway.signaling.settings import SignalingSettings


def test_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVRY_WS_MAX_PER_IP", "3")
    monkeypatch.setenv("WAVRY_WS_REQUIRE_ORIGIN", "0")
    monkeypatch.setenv("WAVRY_WS_BIND_TIMEOUT_SECS", "2.5")
    monkeypatch.setenv("WAVRY_GATEWAY_MASTER_TOKEN", "t" * 40)
    s = GatewaySettings().signaling
    assert s.max_per_ip == 3 and s.bind_timeout_secs == 2.5
    assert s.missing_origin_ok and not s.allow_missing_origin
    assert s.master_token is not None and s.master_token.get_secret_value() == "t" * 40
    assert "t" * 40 not in repr(s)


def test_defaults_are_the_documented_ones() -> None:
    s = SignalingSettings()
    assert (s.max_per_ip, s.max_connections, s.max_frame_bytes) == (16, 4096, 65536)
    assert (s.msg_rate_limit, s.msg_rate_window_secs, s.bind_timeout_secs) == (600, 60.0, 10.0)
    assert not s.missing_origin_ok and s.master_token is None


def test_short_or_blank_master_token() -> None:
    with pytest.raises(ValueError, match="WAVRY_GATEWAY_MASTER_TOKEN"):
        SignalingSettings(master_token="short")
    assert SignalingSettings(master_token="   ").master_token is None
    with pytest.raises(ValueError):
        SignalingSettings(max_frame_bytes=1 << 20)


def test_origin_refusal() -> None:
    allowed = ["http://localhost:1420", "tauri://localhost"]
    assert origin_refusal("http://localhost:1420", allowed, missing_ok=False) is None
    assert origin_refusal("HTTP://LOCALHOST:1420/", allowed, missing_ok=False) is None
    assert origin_refusal("tauri://localhost", allowed, missing_ok=False) is None
    for bad in ("http://localhost:1421", "http://evil.example", "null", "http://localhost"):
        refusal = origin_refusal(bad, allowed, missing_ok=True)
        assert refusal is not None and refusal.status == 403
    assert origin_refusal(None, allowed, missing_ok=True) is None
    assert origin_refusal("  ", allowed, missing_ok=True) is None
    refusal = origin_refusal(None, allowed, missing_ok=False)
    assert refusal is not None and "WAVRY_WS_ALLOW_MISSING_ORIGIN" in refusal.reason


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["a", "b", "c"])), max_size=200))
def test_connection_caps_never_exceed_limits(ops: list[tuple[bool, str]]) -> None:
    caps = ConnectionCaps(max_total=5, max_per_ip=2)
    held: dict[str, int] = {}
    for acquire, ip in ops:
        if acquire:
            if caps.acquire(ip) is None:
                held[ip] = held.get(ip, 0) + 1
        elif held.get(ip):
            caps.release(ip)
            held[ip] -= 1
        else:
            caps.release(ip)  # releasing what was never held is a no-op
        assert caps.total == sum(held.values()) <= 5
        assert all(caps.open_from(i) == n <= 2 for i, n in held.items())


def test_caps_statuses() -> None:
    caps = ConnectionCaps(max_total=3, max_per_ip=2)
    assert caps.acquire("a") is None and caps.acquire("a") is None
    per_ip = caps.acquire("a")
    assert per_ip is not None and per_ip.status == 429
    assert caps.acquire("b") is None
    total = caps.acquire("c")
    assert total is not None and total.status == 503


def test_message_rate_windows() -> None:
    rate = MessageRate(3, 10.0)
    assert [rate.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert not rate.allow(9.99)
    assert rate.allow(10.0)
