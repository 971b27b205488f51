"""HMAC-SHA256 signatures on queued messages, so a worker applies only what a web node wrote."""

from __future__ import annotations

import hashlib
import hmac

from scoreboard.config import Settings

SIGNATURE_HEADER = "x-scoreboard-signature"


class MessageSigner:
    """Signs and checks message bodies with the deployment's QUEUE_SIGNING_KEY."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: object) -> bool:
        return isinstance(signature, str) and hmac.compare_digest(self.sign(body), signature)


def message_signer(settings: Settings) -> MessageSigner | None:
    """The deployment's signer, or None when QUEUE_SIGNING_KEY is unset."""
    key = settings.queue_signing_key
    return None if key is None else MessageSigner(key.value)
