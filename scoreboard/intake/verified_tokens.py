"""Tokens already verified, so that a client posting many updates is not verified every time.

Verifying a JWT (base64, JSON, an HMAC or RSA check, the claim rules) was the largest single
cost of a POST. An entry is keyed by the whole token string, so a changed byte is a miss; it
lasts until the token's `exp` and at most MAX_AGE_SECONDS, and remembers the key that verified
it, so a key withdrawn from the JWKS set stops its tokens at the next set refresh, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

MAX_ENTRIES = 10_000
MAX_AGE_SECONDS = 60.0

Identity = TypeVar("Identity")
Key = TypeVar("Key")


@dataclass(frozen=True)
class Verified(Generic[Identity, Key]):
    identity: Identity
    key: Key
    kid: str | None  # the JWKS key id that verified it, None for JWT_SECRET or JWT_PUBLIC_KEY
    good_until: float  # time.time() value


class VerifiedTokens(Generic[Identity, Key]):
    """A bounded map from token to its verification, oldest entry dropped first when full."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._entries: dict[str, Verified[Identity, Key]] = {}
        self._max_entries = max_entries
        self._max_age_seconds = max_age_seconds
        self._clock = clock

    def get(self, token: str) -> Verified[Identity, Key] | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if self._clock() >= entry.good_until:
            del self._entries[token]
            return None
        return entry

    def remember(
        self, token: str, identity: Identity, key: Key, kid: str | None, expires_at: float | None
    ) -> None:
        """Keep a verified token until `expires_at` (its exp), at most max_age_seconds."""
        good_until = self._clock() + self._max_age_seconds
        if expires_at is not None:
            good_until = min(good_until, expires_at)
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = Verified(identity, key, kid, good_until)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)
