"""The stored gateway session (``wavry login`` / ``wavry logout``).

One session at a time: the gateway URL, the account's public fields and the session token. The
record goes to the OS keyring when the optional ``keyring`` package is importable and has a
working backend (service ``wavry``, entry ``gateway-session``); otherwise to
``DATA_DIR/gateway_session.json``, mode 0600, written atomically (temporary file in the same
directory, fsync, rename). ``WAVRY_TOKEN_STORE`` forces a backend: ``file``, ``keyring`` or
``auto`` (the default).

The token is a bearer secret: it is never logged or printed; ``__repr__`` hides it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wavry import paths

__all__ = [
    "ENV_TOKEN_STORE",
    "CredentialsError",
    "GatewaySession",
    "TokenStore",
    "session_path",
]

ENV_TOKEN_STORE = "WAVRY_TOKEN_STORE"
KEYRING_SERVICE = "wavry"
KEYRING_ENTRY = "gateway-session"
MAX_RECORD_BYTES = 16 * 1024


class CredentialsError(Exception):
    """The stored session is unreadable, or the chosen backend does not work."""


@dataclass(frozen=True)
class GatewaySession:
    gateway: str
    token: str = field(repr=False)
    username: str = ""
    email: str = ""
    user_id: str = ""
    expires_at: int | None = None
    #: the Wavry ID bound to the account when ``wavry login`` ran (None: unknown or none)
    wavry_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GatewaySession:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            gateway, token = doc["gateway"], doc["token"]
            if not isinstance(gateway, str) or not isinstance(token, str) or not token:
                raise TypeError("gateway and token must be strings")
            expires = doc.get("expires_at")
            return cls(
                gateway=gateway,
                token=token,
                username=str(doc.get("username", "")),
                email=str(doc.get("email", "")),
                user_id=str(doc.get("user_id", "")),
                expires_at=int(expires) if isinstance(expires, int | float) else None,
                wavry_id=wid if isinstance(wid := doc.get("wavry_id"), str) and wid else None,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise CredentialsError(f"the stored session is unreadable ({exc})") from None


def session_path(env: Mapping[str, str] | None = None) -> Path:
    return paths.data_dir(dict(env) if env is not None else None) / "gateway_session.json"


def _keyring() -> Any | None:
    """The ``keyring`` module when importable and backed by a real store, else None."""
    try:
        keyring = importlib.import_module("keyring")
        fail = importlib.import_module("keyring.backends.fail")
    except ImportError:
        return None
    try:
        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
    except Exception:  # noqa: BLE001 - a broken keyring configuration: use the file
        return None
    return keyring


class TokenStore:
    """Where the session record lives; ``backend`` is ``keyring`` or ``file``."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        choice = env.get(ENV_TOKEN_STORE, "auto").strip().lower() or "auto"
        if choice not in ("auto", "file", "keyring"):
            raise CredentialsError(f"{ENV_TOKEN_STORE} must be auto, file or keyring")
        self.path = session_path(env)
        self._kr = None if choice == "file" else _keyring()
        if choice == "keyring" and self._kr is None:
            raise CredentialsError(
                f"{ENV_TOKEN_STORE}=keyring but the keyring package or a backend is missing"
            )
        self.backend = "keyring" if self._kr is not None else "file"

    @property
    def location(self) -> str:
        if self.backend == "keyring":
            return f"the OS keyring ({KEYRING_SERVICE}/{KEYRING_ENTRY})"
        return str(self.path)

    def save(self, session: GatewaySession) -> None:
        text = session.to_json()
        if self._kr is not None:
            try:
                self._kr.set_password(KEYRING_SERVICE, KEYRING_ENTRY, text)
            except Exception as exc:  # noqa: BLE001 - backends raise anything
                raise CredentialsError(f"the keyring refused the token: {exc}") from None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # never two copies
            return
        _write_private(self.path, text.encode())

    def load(self) -> GatewaySession | None:
        if self._kr is not None:
            try:
                text = self._kr.get_password(KEYRING_SERVICE, KEYRING_ENTRY)
            except Exception as exc:  # noqa: BLE001 - backends raise anything
                raise CredentialsError(f"the keyring is unreadable: {exc}") from None
            if text is not None:
                return GatewaySession.from_json(text)
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialsError(f"{self.path}: {exc.strerror}") from None
        if len(raw) > MAX_RECORD_BYTES:
            raise CredentialsError(f"{self.path}: larger than {MAX_RECORD_BYTES} bytes")
        return GatewaySession.from_json(raw.decode("utf-8", "replace"))

    def forget(self) -> bool:
        """Delete the record from every backend; True if there was one."""
        found = False
        if self._kr is not None:
            with contextlib.suppress(Exception):
                if self._kr.get_password(KEYRING_SERVICE, KEYRING_ENTRY) is not None:
                    self._kr.delete_password(KEYRING_SERVICE, KEYRING_ENTRY)
                    found = True
        try:
            self.path.unlink()
            found = True
        except FileNotFoundError:
            pass
        return found


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (the directory 0700 if created)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gateway_session.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
