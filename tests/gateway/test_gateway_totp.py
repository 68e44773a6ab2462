"""TOTP: RFC test vectors, the secret box, and 2FA over the API (set-up, enable, login, replay,
disable)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway.conftest import PASSWORD, AppFactory, Clock, asgi_client, bearer, register
from wavry.gateway import totp

# RFC 6238 Appendix B: the seed is ASCII "12345678901234567890" repeated to the hash size
RFC6238_SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
# RFC 4226 Appendix D: HOTP, SHA-1, 6 digits, counters 0..9
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), RFC6238_VECTORS)
def test_rfc6238_vectors(t: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        assert totp.totp(RFC6238_SEEDS[algorithm], t, digits=8, algorithm=algorithm) == expected


def test_rfc4226_vectors() -> None:
    assert [totp.hotp(b"12345678901234567890", c) for c in range(10)] == RFC4226


def test_verify_window_and_replay() -> None:
    key = b"k" * 20
    now = 1_700_000_000.0
    step = totp.time_step(now)
    code = totp.totp(key, now)
    assert totp.verify(key, code, now, last_step=None) == step
    assert totp.verify(key, code, now + 30, last_step=None) == step  # one step of skew
    assert totp.verify(key, code, now + 60, last_step=None) is None  # two steps: refused
    assert totp.verify(key, code, now, last_step=step) is None  # replay
    assert totp.verify(key, code, now, last_step=step - 1) == step
    assert totp.verify(key, "000000" if code != "000000" else "111111", now, last_step=None) is None


@given(st.binary(min_size=1, max_size=40))
def test_base32_round_trip(secret: bytes) -> None:
    encoded = totp.b32encode(secret)
    assert "=" not in encoded
    assert totp.b32decode(encoded) == secret


def test_secret_box() -> None:
    box = totp.TotpSecretBox(b"\x01" * 32, allow_plaintext=False)
    sealed = box.seal(b"secret-bytes-20-long", "user-a")
    assert sealed.startswith("enc:v2:") and "secret" not in sealed
    assert box.open(sealed, "user-a") == b"secret-bytes-20-long"
    with pytest.raises(ValueError):
        box.open(sealed, "user-b")  # bound to the row
    with pytest.raises(ValueError):
        totp.TotpSecretBox(b"\x02" * 32, allow_plaintext=False).open(sealed, "user-a")
    tampered = sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB")
    with pytest.raises(ValueError):
        box.open(tampered, "user-a")
    no_key = totp.TotpSecretBox(None, allow_plaintext=False)
    assert not no_key.available
    with pytest.raises(totp.TotpUnavailable):
        no_key.seal(b"x" * 20, "u")
    plain = totp.TotpSecretBox(None, allow_plaintext=True)
    assert plain.open(plain.seal(b"y" * 20, "u"), "u") == b"y" * 20


def test_otpauth_uri() -> None:
    uri = totp.otpauth_uri(b"\x00" * 20, account="a@b.co", issuer="Wavry")
    assert uri.startswith("otpauth://totp/Wavry:a@b.co?secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert "issuer=Wavry" in uri and "period=30" in uri


async def _enable(client: httpx.AsyncClient, clock: Clock, token: str) -> bytes:
    resp = await client.post("/auth/2fa/setup", json={"password": PASSWORD}, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    secret = totp.b32decode(resp.json()["secret"])
    resp = await client.post(
        "/auth/2fa/enable", json={"code": totp.totp(secret, clock.now)}, headers=bearer(token)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"totp_enabled": True}
    return secret


async def test_totp_login_flow_and_replay(client: httpx.AsyncClient, clock: Clock) -> None:
    reg = await register(client)
    token = reg["token"]
    secret = await _enable(client, clock, token)
    me = await client.get("/auth/me", headers=bearer(token))
    assert me.json()["user"]["totp_enabled"] is True

    creds = {"email": "user1@example.com", "password": PASSWORD}
    resp = await client.post("/auth/login", json=creds)
    assert resp.status_code == 401
    assert resp.json() == {"error": "2FA required", "totp_required": True}

    # the code used to enable is burnt: the same step is a replay
    same = totp.totp(secret, clock.now)
    resp = await client.post("/auth/login", json={**creds, "totp_code": same})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid 2FA code"

    clock.advance(30)
    code = totp.totp(secret, clock.now)
    resp = await client.post("/auth/login", json={**creds, "totp_code": code})
    assert resp.status_code == 200, resp.text
    # replayed within its own window: refused
    resp = await client.post("/auth/login", json={**creds, "totp_code": code})
    assert resp.status_code == 401

    wrong = "000000" if code != "000000" else "111111"
    clock.advance(30)
    resp = await client.post("/auth/login", json={**creds, "totp_code": wrong})
    assert resp.status_code == 401
    resp = await client.post("/auth/login", json={**creds, "totp_code": "12345"})
    assert resp.status_code == 400  # malformed


async def test_totp_secret_is_encrypted_at_rest(
    client: httpx.AsyncClient, clock: Clock, app: FastAPI
) -> None:
    from sqlalchemy import select

    from wavry.storage.models import User

    reg = await register(client)
    secret = await _enable(client, clock, reg["token"])
    async with app.state.gateway.db() as db:
        stored = await db.scalar(select(User.totp_secret_enc))
    assert stored.startswith("enc:v2:")
    assert totp.b32encode(secret) not in stored


async def test_totp_setup_needs_password_and_enable_needs_right_code(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    token = (await register(client))["token"]
    resp = await client.post(
        "/auth/2fa/setup", json={"password": "wrong password!!"}, headers=bearer(token)
    )
    assert resp.status_code == 401
    resp = await client.post("/auth/2fa/setup", json={"password": PASSWORD})
    assert resp.status_code == 401  # no session
    resp = await client.post("/auth/2fa/enable", json={"code": "123456"}, headers=bearer(token))
    assert resp.status_code == 409  # nothing pending
    resp = await client.post("/auth/2fa/setup", json={"password": PASSWORD}, headers=bearer(token))
    secret = totp.b32decode(resp.json()["secret"])
    good = totp.totp(secret, clock.now)
    bad = "000000" if good != "000000" else "111111"
    resp = await client.post("/auth/2fa/enable", json={"code": bad}, headers=bearer(token))
    assert resp.status_code == 401
    clock.advance(601)  # the pending secret expired
    resp = await client.post(
        "/auth/2fa/enable", json={"code": totp.totp(secret, clock.now)}, headers=bearer(token)
    )
    assert resp.status_code == 409


async def test_totp_disable(client: httpx.AsyncClient, clock: Clock) -> None:
    token = (await register(client))["token"]
    secret = await _enable(client, clock, token)
    clock.advance(30)
    code = totp.totp(secret, clock.now)
    resp = await client.post(
        "/auth/2fa/disable",
        json={"password": "wrong password!!", "code": code},
        headers=bearer(token),
    )
    assert resp.status_code == 401
    resp = await client.post(
        "/auth/2fa/disable", json={"password": PASSWORD, "code": code}, headers=bearer(token)
    )
    assert resp.status_code == 200 and resp.json() == {"totp_enabled": False}
    resp = await client.post(
        "/auth/login", json={"email": "user1@example.com", "password": PASSWORD}
    )
    assert resp.status_code == 200


async def test_totp_unavailable_without_key(make_app: AppFactory) -> None:
    app = make_app(totp_key_b64=None)
    async with asgi_client(app) as client:
        token = (await register(client))["token"]
        resp = await client.post(
            "/auth/2fa/setup", json={"password": PASSWORD}, headers=bearer(token)
        )
        assert resp.status_code == 503
        assert "WAVRY_TOTP_KEY_B64" in resp.json()["error"]


def test_insecure_totp_refused_in_production(tmp_path: object) -> None:
    from pydantic import ValidationError

    from wavry.gateway.settings import GatewaySettings

    with pytest.raises(ValidationError):
        GatewaySettings(allow_insecure_totp=True, environment="production")
    with pytest.raises(ValidationError):
        GatewaySettings(totp_key_b64="c2hvcnQ=")  # 5 bytes
    ok = GatewaySettings(allow_insecure_totp=True, environment="development")
    assert ok.totp_plaintext_allowed


def test_secret_box_reads_previous_keys_and_flags_them_for_reseal() -> None:
    from wavry.gateway.totp import TotpSecretBox

    old = TotpSecretBox(b"o" * 32, allow_plaintext=False)
    rotating = TotpSecretBox(b"n" * 32, allow_plaintext=False, previous_keys=[b"o" * 32])
    stored = old.seal(b"s" * 20, "u1")
    assert rotating.open(stored, "u1") == b"s" * 20
    assert rotating.needs_reseal(stored, "u1")
    resealed = rotating.seal(b"s" * 20, "u1")
    assert not rotating.needs_reseal(resealed, "u1")
    with pytest.raises(ValueError):
        rotating.open(stored, "u2")  # bound to its user, whichever key opens it
