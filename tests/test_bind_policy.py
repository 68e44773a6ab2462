from __future__ import annotations

import pytest

from wavry.bind_policy import BindPolicyError, check_bind, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_always_allowed(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, allow_public=False, flag="--public", env="WAVRY_X_ALLOW_PUBLIC_BIND")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "2001:db8::1"])
def test_public_bind_needs_opt_in_and_names_the_setting(host: str) -> None:
    with pytest.raises(BindPolicyError) as exc:
        check_bind(host, allow_public=False, flag="--public", env="WAVRY_X_ALLOW_PUBLIC_BIND")
    assert "--public" in str(exc.value) and "WAVRY_X_ALLOW_PUBLIC_BIND" in str(exc.value)
    check_bind(host, allow_public=True, flag="--public", env="WAVRY_X_ALLOW_PUBLIC_BIND")
