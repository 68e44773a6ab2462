"""The relay's id, kept across restarts (``DATA_DIR/relay_id``).

Leases name the relay they are valid on. The original drew a new UUID at every start, so a
restarted relay refused every lease it had issued sessions for (``WRONG_RELAY``) and every
relayed session died with it. ``wavry relay`` now keeps its id in the data directory;
``WAVRY_RELAY_ID`` still overrides it.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

__all__ = ["RELAY_ID_FILENAME", "RelayIdFileError", "persistent_relay_id"]

RELAY_ID_FILENAME = "relay_id"
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class RelayIdFileError(Exception):
    """The relay id file exists but cannot be used; the message says how to fix it."""


def persistent_relay_id(data_dir: Path) -> str:
    """The id stored in ``data_dir``, created (a UUIDv4, file mode 0600) on first use."""
    path = data_dir / RELAY_ID_FILENAME
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise RelayIdFileError(f"cannot read {path}: {exc}") from None
    if text:
        if _VALID.fullmatch(text) is None:
            raise RelayIdFileError(
                f"{path} does not hold a relay id (1-64 of A-Z a-z 0-9 . _ -); delete it to "
                "get a new id, or set WAVRY_RELAY_ID"
            )
        return text
    relay_id = str(uuid.uuid4())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{RELAY_ID_FILENAME}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(relay_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RelayIdFileError(f"cannot write {path}: {exc}") from None
    return relay_id
