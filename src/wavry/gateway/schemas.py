"""Request and response bodies of the gateway's HTTP API (published at ``/openapi.json``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from wavry.gateway.validation import (
    DisplayName,
    Email,
    LoginPassword,
    Password,
    PublicKeyHex,
    TotpCode,
    Username,
)

_HEX = r"^[0-9a-fA-F]+$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str
    detail: list[dict[str, Any]] | None = None


# --- auth ---


class RegisterRequest(_Body):
    email: Email
    password: Password
    username: Username
    display_name: DisplayName
    public_key: PublicKeyHex


class LoginRequest(_Body):
    email: Email
    password: LoginPassword
    totp_code: TotpCode | None = None


class UserInfo(BaseModel):
    id: str
    email: str
    username: str
    display_name: str
    public_key: str
    wavry_id: str | None
    totp_enabled: bool
    created_at: float


class SessionInfo(BaseModel):
    token: str
    #: public id of the session (what /auth/sessions lists and revokes)
    id: str
    user_id: str
    created_at: float
    expires_at: float


class AuthResponse(BaseModel):
    user: UserInfo
    session: SessionInfo
    token: str
    user_id: str
    email: str
    username: str
    totp_required: bool = False


class LogoutResponse(BaseModel):
    revoked: bool


class SessionEntry(BaseModel):
    id: str
    created_at: float
    expires_at: float
    user_agent: str | None
    current: bool


class SessionList(BaseModel):
    sessions: list[SessionEntry]


class RevokeSessionRequest(_Body):
    session_id: str = Field(min_length=16, max_length=16, pattern=_HEX)


class RevokeResponse(BaseModel):
    revoked: bool


class MeResponse(BaseModel):
    user: UserInfo


# --- 2FA ---


class TotpSetupRequest(_Body):
    password: LoginPassword


class TotpSetupResponse(BaseModel):
    #: base32, no padding
    secret: str
    otpauth_uri: str
    expires_at: float


class TotpEnableRequest(_Body):
    code: TotpCode


class TotpDisableRequest(_Body):
    password: LoginPassword
    code: TotpCode


class TotpState(BaseModel):
    totp_enabled: bool


# --- Wavry ID binding ---


class ChallengeRequest(_Body):
    wavry_id: str = Field(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]{43}$")


class ChallengeResponse(BaseModel):
    #: hex of 32 random bytes
    challenge: str
    #: hex of the exact bytes to sign with the Wavry ID's Ed25519 key
    message_hex: str
    expires_at: float


class ChallengeVerifyRequest(_Body):
    challenge: str = Field(min_length=64, max_length=64, pattern=_HEX)
    signature_hex: str = Field(min_length=128, max_length=128, pattern=_HEX)


class ChallengeVerifyResponse(BaseModel):
    user_id: str
    wavry_id: str


# --- host shares ---


class ShareRequest(_Body):
    username: Username


class ShareEntry(BaseModel):
    username: str
    display_name: str
    created_at: float


class ShareList(BaseModel):
    #: accounts I let reach my hosts
    shared_with: list[ShareEntry]
    #: accounts whose hosts I may reach
    shared_by: list[ShareEntry]


class ShareResponse(BaseModel):
    owner: str
    shared_with: str
    created: bool


class UnshareResponse(BaseModel):
    removed: bool


# --- relayed sessions and connect by Wavry ID ---

_WAVRY_ID = r"^[A-Za-z0-9_-]{43}$"


class RelayFeedbackRequest(_Body):
    """The master's ``FeedbackRequest`` (docs/master.md), forwarded as is after the gateway
    checked that ``wavry_id`` is the caller's bound Wavry ID."""

    session_id: str = Field(min_length=1, max_length=36)
    relay_id: str = Field(min_length=1, max_length=64)
    wavry_id: str = Field(min_length=43, max_length=43, pattern=_WAVRY_ID)
    quality_score: int = Field(ge=0, le=100)
    issues: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=16)
    #: hex of the Ed25519 signature over ``wavry.feedback_protocol.feedback_message(...)``
    signature: str = Field(min_length=128, max_length=128, pattern=_HEX)


class RelayFeedbackResponse(BaseModel):
    accepted: bool


class HostByWavryIdResponse(BaseModel):
    #: the account whose bound Wavry ID it is (what ``wavry connect USERNAME`` takes)
    username: str
    wavry_id: str
