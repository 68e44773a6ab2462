"""Property tests for the account validators and the rate limiter / lockout arithmetic."""

from __future__ import annotations

import asyncio
import string
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wavry.gateway.lockout import LockoutPolicy
from wavry.gateway.ratelimit import InMemoryRateLimiter
from wavry.gateway.sessions import token_format_ok
from wavry.gateway.validation import (
    normalize_display_name,
    normalize_email,
    normalize_password,
    normalize_public_key,
    normalize_totp_code,
    normalize_username,
)

NORMALIZERS = [
    normalize_email,
    normalize_username,
    normalize_display_name,
    normalize_password,
    normalize_public_key,
    normalize_totp_code,
]


@pytest.mark.parametrize("fn", NORMALIZERS)
@given(value=st.text(max_size=300))
def test_normalizers_accept_or_raise_valueerror_and_are_idempotent(
    fn: Callable[[str], str], value: str
) -> None:
    try:
        out = fn(value)
    except ValueError:
        return
    assert fn(out) == out


@given(st.text(max_size=300))
def test_email_invariants(value: str) -> None:
    try:
        email = normalize_email(value)
    except ValueError:
        return
    assert len(email) <= 254 and email.count("@") == 1
    assert email == email.lower() and email.strip() == email and email.isascii()
    local, domain = email.split("@")
    assert local and "." in domain and not domain.startswith(".") and not domain.endswith(".")
    assert not any(c.isspace() for c in email)


local_part = st.text(
    alphabet=string.ascii_lowercase + string.digits + "+_-", min_size=1, max_size=20
)
label = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)


@given(local_part, st.lists(label, min_size=2, max_size=4), st.sampled_from(["", " ", "\t"]))
def test_valid_emails_normalise_case_and_space(local: str, labels: list[str], pad: str) -> None:
    email = f"{local}@{'.'.join(labels)}"
    assert normalize_email(pad + email.upper() + pad) == email


@given(st.text(alphabet=string.ascii_lowercase + string.digits + "_.-", min_size=3, max_size=32))
def test_valid_usernames(name: str) -> None:
    assert normalize_username(f"  {name.upper()} ") == name


@given(st.text(max_size=80))
def test_username_charset(value: str) -> None:
    try:
        name = normalize_username(value)
    except ValueError:
        return
    assert 3 <= len(name) <= 32
    assert set(name) <= set(string.ascii_lowercase + string.digits + "_.-")


@given(st.text(max_size=100))
def test_display_name_has_no_controls(value: str) -> None:
    try:
        name = normalize_display_name(value)
    except ValueError:
        return
    assert 1 <= len(name) <= 64
    assert not any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") for c in name)
    assert "\u202e" not in name


@given(st.text(min_size=0, max_size=200))
def test_password_length_rules(value: str) -> None:
    try:
        pw = normalize_password(value)
    except ValueError:
        return
    assert 12 <= len(pw) <= 128


@given(st.binary(min_size=32, max_size=64))
def test_public_key_hex(raw: bytes) -> None:
    assert normalize_public_key(raw.hex().upper()) == raw.hex()


@given(st.integers(min_value=0, max_value=999_999))
def test_totp_code_digits(n: int) -> None:
    code = f"{n:06d}"
    assert normalize_totp_code(f"{code[:3]} {code[3:]}") == code


@given(st.text(max_size=300))
def test_token_format(token: str) -> None:
    charset_ok = all(c.isascii() and (c.isalnum() or c in "_.-") for c in token)
    assert token_format_ok(token) == (32 <= len(token) <= 256 and charset_ok)


@given(
    st.integers(min_value=1, max_value=10),
    st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=60),
)
def test_fixed_window_never_exceeds_limit(limit: int, gaps: list[float]) -> None:
    now = [0.0]
    limiter = InMemoryRateLimiter(max_keys=4, clock=lambda: now[0])
    allowed: list[float] = []
    for gap in gaps:
        now[0] += gap
        if limiter.hit_sync("k", limit=limit, window_secs=10.0):
            allowed.append(now[0])
    # fixed windows: any span shorter than one window holds at most 2 * limit allowed hits,
    # and the hits inside one window (counted from its first hit) never exceed limit
    for i, start in enumerate(allowed):
        inside = [t for t in allowed[i:] if t < start + 10.0]
        assert len(inside) <= 2 * limit
    window_end = None
    count = 0
    for t in allowed:
        if window_end is None or t >= window_end:
            window_end, count = t + 10.0, 0
        count += 1
        assert count <= limit


def test_limiter_table_is_bounded_and_fails_closed() -> None:
    now = [0.0]
    limiter = InMemoryRateLimiter(max_keys=3, clock=lambda: now[0], prune_interval=0.0)
    for key in "abc":
        assert limiter.hit_sync(key, limit=5, window_secs=10)
    assert not limiter.hit_sync("d", limit=5, window_secs=10)  # full of live windows
    assert limiter.denied_full == 1 and len(limiter) == 3
    now[0] = 11.0  # windows ended: pruned to make room
    assert limiter.hit_sync("d", limit=5, window_secs=10)
    assert len(limiter) == 1
    assert asyncio.run(limiter.hit("d", limit=1, window_secs=10)) is False


@given(st.integers(min_value=0, max_value=200))
def test_lockout_backoff_is_monotonic_and_capped(failures: int) -> None:
    policy = LockoutPolicy(threshold=5, base=60, max_lock=3600)
    lock = policy.lock_for(failures)
    assume(failures > 0)
    assert lock <= 3600
    assert lock >= policy.lock_for(failures - 1)
    assert (lock == 0) == (failures < 5)
