"""Bearer tokens: verify a JWT strictly and say who it belongs to."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from scoreboard.errors import AuthenticationFailed

ALGORITHMS = ["HS256"]  # pinned: a token cannot choose its own algorithm (no "none", no RS/HS mix)
MAX_USERNAME_LENGTH = 64
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for, and the name the board shows for them."""

    subject: str
    username: str


class TokenVerifier:
    """Verifies HS256 tokens signed with the deployment's JWT_SECRET."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, token: str | None) -> Identity:
        """Return the token's identity; raise AuthenticationFailed for anything doubtful."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed()
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            raise AuthenticationFailed() from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthenticationFailed()
        return Identity(subject=subject, username=_display_name(claims, subject))

    def verify_authorization_header(self, header: str | None) -> Identity:
        """Verify an `Authorization: Bearer <token>` header value."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationFailed()
        return self.verify(token.strip())


def _display_name(claims: dict[str, object], subject: str) -> str:
    for claim in ("name", "preferred_username"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_USERNAME_LENGTH]
    return subject[:MAX_USERNAME_LENGTH]


def issue_token(secret: str, subject: str, name: str | None = None, ttl_seconds: int = 3600) -> str:
    """Sign a token the way an auth service would; for development, demos and tests."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + ttl_seconds}
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")
