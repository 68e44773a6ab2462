"""Input rules for accounts (reference §7.1, kept; normalisation made explicit).

Each ``normalize_*`` returns the canonical form or raises ``ValueError`` with a message that is
safe to show. They are pure functions (property-tested) and are used as pydantic validators, so
a violation answers 400 ``{"error", "detail"}`` like every other malformed body.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "DISPLAY_NAME_MAX",
    "EMAIL_MAX",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "DisplayName",
    "Email",
    "LoginPassword",
    "Password",
    "PublicKeyHex",
    "TotpCode",
    "Username",
    "normalize_display_name",
    "normalize_email",
    "normalize_password",
    "normalize_public_key",
    "normalize_totp_code",
    "normalize_username",
]

EMAIL_MAX = 254
EMAIL_LOCAL_MAX = 64
PASSWORD_MIN = 12
PASSWORD_MAX = 128
PASSWORD_MAX_BYTES = 512
DISPLAY_NAME_MAX = 64
USERNAME_RE = re.compile(r"[a-z0-9_.-]{3,32}")
_DOMAIN_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LOCAL_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_HEX_RE = re.compile(r"[0-9a-f]+")
# bidirectional overrides and isolates: they make a name render as something else
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})


def normalize_email(value: str) -> str:
    """Trim, NFKC, lower-case; then ASCII ``local@domain`` with a dotted domain, <= 254 chars."""
    email = unicodedata.normalize("NFKC", value).strip().lower()
    if not email:
        raise ValueError("email is required")
    if len(email) > EMAIL_MAX:
        raise ValueError(f"email must be at most {EMAIL_MAX} characters")
    if email.count("@") != 1:
        raise ValueError("email must contain exactly one @")
    local, domain = email.split("@")
    if not local or len(local) > EMAIL_LOCAL_MAX or not _LOCAL_RE.fullmatch(local):
        raise ValueError("email has an invalid local part")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("email has an invalid local part")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError("email has an invalid domain")
    return email


def normalize_username(value: str) -> str:
    """Trim, NFKC, lower-case; 3..32 characters of ``[a-z0-9_.-]``."""
    username = unicodedata.normalize("NFKC", value).strip().lower()
    if not USERNAME_RE.fullmatch(username):
        raise ValueError("username must be 3-32 characters of a-z, 0-9, '_', '.', '-'")
    return username


def normalize_display_name(value: str) -> str:
    """Trim, NFC; 1..64 characters, no control, private-use, unassigned or bidi-override ones."""
    name = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(name) <= DISPLAY_NAME_MAX:
        raise ValueError(f"display_name must be 1-{DISPLAY_NAME_MAX} characters")
    for ch in name:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise ValueError("display_name contains a control or invisible character")
    return name


def normalize_password(value: str) -> str:
    """NFKC (so the same password typed on another keyboard matches); 12..128 characters.

    Never trimmed; NUL and other control characters are refused.
    """
    password = unicodedata.normalize("NFKC", value)
    if len(password) < PASSWORD_MIN:
        raise ValueError(f"password must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX or len(password.encode("utf-8", "surrogatepass")) > (
        PASSWORD_MAX_BYTES
    ):
        raise ValueError(f"password must be at most {PASSWORD_MAX} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in password):
        raise ValueError("password contains a control character")
    return password


def normalize_public_key(value: str) -> str:
    """64..128 hex characters, even length, lower-cased."""
    key = value.strip().lower()
    if not 64 <= len(key) <= 128 or len(key) % 2 or not _HEX_RE.fullmatch(key):
        raise ValueError("public_key must be 64-128 hex characters (whole bytes)")
    return key


def normalize_totp_code(value: str) -> str:
    """Six ASCII digits; spaces between groups are dropped."""
    code = value.replace(" ", "").strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise ValueError("totp code must be 6 digits")
    return code


Email = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(normalize_email)]
Username = Annotated[str, Field(min_length=3, max_length=64), AfterValidator(normalize_username)]
DisplayName = Annotated[
    str, Field(min_length=1, max_length=256), AfterValidator(normalize_display_name)
]
Password = Annotated[
    str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX * 4),
    AfterValidator(normalize_password),
]  # fmt: skip
#: a password being checked (login, re-authentication): any non-empty string up to the cap,
#: so a password set under older rules still verifies
LoginPassword = Annotated[
    str, Field(min_length=1, max_length=PASSWORD_MAX * 4),
    AfterValidator(lambda v: unicodedata.normalize("NFKC", v)),
]  # fmt: skip
PublicKeyHex = Annotated[
    str, Field(min_length=64, max_length=160), AfterValidator(normalize_public_key)
]
TotpCode = Annotated[str, Field(min_length=6, max_length=16), AfterValidator(normalize_totp_code)]
