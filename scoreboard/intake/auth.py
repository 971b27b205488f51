"""Bearer tokens: verify a JWT strictly and say who it belongs to."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from scoreboard.errors import AuthenticationFailed
from scoreboard.intake import identities
from scoreboard.intake.verification_keys import VerificationKey, pinned, public_key_from_pem
from scoreboard.intake.verified_tokens import Verified, VerifiedTokens

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 8192
PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")  # a tuple: `in` must not hash a header value
JWKS_MIN_REFRESH_SECONDS = 5.0  # bounds the fetches a spray of made-up kids can cause
JWKS_MAX_AGE_SECONDS = 600.0  # a key the auth service withdrew stops verifying after this
JWKS_FETCH_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for, the name the board shows, and what they may do."""

    subject: str
    username: str
    tier: str | None = None  # the `tier` claim: picks the rate limit and the queue priority
    is_admin: bool = False  # the `role` claim is "admin"
    is_service: bool = False  # the `role` claim is "service": a game server, posts for anyone


class JwksKeySet:
    """The auth service's published keys by kid, fetched over HTTP(S) and cached."""

    def __init__(
        self,
        url: str,
        *,
        min_refresh_seconds: float = JWKS_MIN_REFRESH_SECONDS,
        max_age_seconds: float = JWKS_MAX_AGE_SECONDS,
        timeout_seconds: float = JWKS_FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self._min_refresh_seconds = min_refresh_seconds
        self._max_age_seconds = max_age_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    def key(self, kid: str) -> VerificationKey | None:
        return self._keys.get(kid)

    async def refresh_for(self, kid: str) -> None:
        """Fetch the set again if it lacks `kid` or is stale, at most once per interval."""
        if not self._lacks(kid):
            return
        if self._lock.locked():
            # A fetch is under way: judge the token by its result, not by the keys before it.
            async with self._lock:
                return
        if self._attempted_at is not None and (
            time.monotonic() - self._attempted_at < self._min_refresh_seconds
        ):
            return
        async with self._lock:
            self._attempted_at = time.monotonic()
            try:
                self._keys = await self._fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # Keys in hand keep working while the auth service is unreachable.
                log.warning("JWKS fetch failed (%r); keeping %d cached keys", exc, len(self._keys))
                return
            self._fetched_at = self._attempted_at

    def _lacks(self, kid: str) -> bool:
        return (
            kid not in self._keys
            or self._fetched_at is None
            or time.monotonic() - self._fetched_at > self._max_age_seconds
        )

    async def _fetch(self) -> dict[str, VerificationKey]:
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            async with session.get(self.url, raise_for_status=True) as response:
                document = await response.json(content_type=None)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document: no 'keys' list")
        keys = {}
        for entry in document["keys"]:
            if isinstance(entry, dict) and (found := _jwk_key(entry)) is not None:
                keys[entry["kid"]] = found
        return keys


def _jwk_key(entry: dict[str, Any]) -> VerificationKey | None:
    """The usable signing key in one JWKS entry, or None (skipped, not fatal)."""
    kid, kty = entry.get("kid"), entry.get("kty")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
        return None
    try:
        if kty == "RSA":
            key = pinned(RSAAlgorithm.from_jwk(entry))
        elif kty == "EC":
            key = pinned(ECAlgorithm.from_jwk(entry))
        else:
            return None
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    # An entry that names another algorithm than its key type implies is not for us.
    return key if entry.get("alg", key.algorithm) == key.algorithm else None


class TokenRules(Protocol):
    """What a deployment configured for tokens; Settings provides it (auth imports no config)."""

    @property
    def hs256_secret(self) -> str | None: ...
    @property
    def jwt_public_key(self) -> str | None: ...
    @property
    def jwks_url(self) -> str | None: ...
    @property
    def jwt_issuer(self) -> str | None: ...
    @property
    def jwt_audience(self) -> str | None: ...
    @property
    def jwt_require_exp(self) -> bool: ...
    @property
    def jwt_leeway_seconds(self) -> int: ...


class TokenVerifier:
    """Verifies tokens against JWT_SECRET (HS256), JWT_PUBLIC_KEY and JWKS_URL (RS256, ES256)."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        public_key: VerificationKey | None = None,
        jwks: JwksKeySet | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        require_exp: bool = True,
        leeway_seconds: int = 30,
    ) -> None:
        self._secret = VerificationKey("HS256", secret) if secret is not None else None
        self._public_key = public_key
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._required_claims = ["sub", "exp"] if require_exp else ["sub"]
        self._leeway_seconds = leeway_seconds
        self._verified: VerifiedTokens[Identity, VerificationKey] = VerifiedTokens()

    @classmethod
    def from_settings(cls, settings: TokenRules) -> TokenVerifier:
        """The verifier for the keys and claim rules the deployment configured."""
        return cls(
            settings.hs256_secret,
            public_key=(
                public_key_from_pem(settings.jwt_public_key) if settings.jwt_public_key else None
            ),
            jwks=JwksKeySet(settings.jwks_url) if settings.jwks_url else None,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            require_exp=settings.jwt_require_exp,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    async def authenticate(self, token: str | None) -> Identity:
        """Verify `token`, first refreshing the JWKS key set if it lacks the token's kid."""
        cached = self._verified.get(token) if token else None
        if cached is not None and token:
            if cached.kid is not None and self._jwks is not None:
                await self._jwks.refresh_for(cached.kid)
            if (known := self._still_ours(token, cached)) is not None:
                return known
        token, header = _parse(token)
        kid = header.get("kid")
        if self._jwks is not None and header.get("alg") in PUBLIC_KEY_ALGORITHMS and kid:
            await self._jwks.refresh_for(kid)
        return self._verify(token, header)

    async def authenticate_header(self, header: str | None) -> Identity:
        """Verify an `Authorization: Bearer <token>` header value."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationFailed()
        return await self.authenticate(token.strip())

    def verify(self, token: str | None) -> Identity:
        """Verify with the keys in hand, fetching nothing; AuthenticationFailed if in doubt."""
        cached = self._verified.get(token) if token else None
        if cached is not None and token and (known := self._still_ours(token, cached)):
            return known
        return self._verify(*_parse(token))

    def _still_ours(
        self, token: str, cached: Verified[Identity, VerificationKey]
    ) -> Identity | None:
        """The remembered identity, if the key that verified the token is still ours."""
        if cached.kid is not None and (
            self._jwks is None or self._jwks.key(cached.kid) is not cached.key
        ):
            self._verified.forget(token)
            return None
        return cached.identity

    def _verify(self, token: str, header: dict[str, Any]) -> Identity:
        key, jwks_kid = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                options={
                    "require": self._required_claims,
                    # Without JWT_AUDIENCE the aud claim is not ours to judge (see README).
                    "verify_aud": self._audience is not None,
                    "enforce_minimum_key_length": True,
                },
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_seconds,
            )
        except jwt.PyJWTError:
            raise AuthenticationFailed() from None
        try:
            subject = identities.user_id(claims["sub"])
        except identities.InvalidIdentity:
            raise AuthenticationFailed() from None
        identity = Identity(
            subject=subject,
            username=_display_name(claims, subject),
            tier=identities.tier(claims.get("tier")),
            is_admin=claims.get("role") == "admin",
            is_service=claims.get("role") == "service",
        )
        self._verified.remember(token, identity, key, jwks_kid, claims.get("exp"))
        return identity

    def _key_for(self, header: dict[str, Any]) -> tuple[VerificationKey, str | None]:
        """The key for this header, and the kid when the key came from the JWKS set."""
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm == "HS256":
            key, jwks_kid = self._secret, None
        else:
            from_set = self._jwks.key(kid) if self._jwks is not None and kid else None
            key, jwks_kid = (from_set, kid) if from_set is not None else (self._public_key, None)
        if key is None or key.algorithm != algorithm:
            raise AuthenticationFailed()
        return key, jwks_kid


def _parse(token: str | None) -> tuple[str, dict[str, Any]]:
    """The token and its (not yet trusted) header, if it is worth verifying at all."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationFailed()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthenticationFailed() from None
    # We implement no critical extension, so RFC 7515 §4.1.11 says refuse any token naming one.
    if "crit" in header:
        raise AuthenticationFailed()
    return token, header


def _display_name(claims: dict[str, object], subject: str) -> str:
    """`name`, else `preferred_username`, else the subject, cleaned for display."""
    for claim in ("name", "preferred_username"):
        if (name := identities.display_name(claims.get(claim), "")) != "":
            return name
    return identities.display_name(subject, subject)


def issue_token(
    secret: str,
    subject: str,
    name: str | None = None,
    ttl_seconds: int = 3600,
    extra_claims: dict[str, object] | None = None,
) -> str:
    """Sign a token the way an auth service would; for development, demos and tests."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + ttl_seconds}
    if name is not None:
        claims["name"] = name
    claims.update(extra_claims or {})
    return jwt.encode(claims, secret, algorithm="HS256")
