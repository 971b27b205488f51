"""An auth service for the tests: its signing keys, and a real JWKS endpoint that counts fetches."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key the auth service signs with, and what it publishes about it."""

    kid: str
    algorithm: str
    private_key: PrivateKey = field(repr=False)

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, kid: str, curve: ec.EllipticCurve | None = None) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(curve or ec.SECP256R1()))

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def jwk(self, **extra: Any) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            entry = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            entry = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**entry, "kid": self.kid, "use": "sig", "alg": self.algorithm, **extra}

    def sign(self, claims: dict[str, Any], *, kid: str | None = "", **headers: Any) -> str:
        """A token with this key; `kid` defaults to the key's own, None leaves it out."""
        header = dict(headers)
        if kid is not None:
            header["kid"] = kid or self.kid
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=header)

    def token(self, subject: str = "alice", ttl: int = 3600, **claims: Any) -> str:
        """A valid token for `subject`, signed with this key."""
        return self.sign({"sub": subject, "exp": int(time.time()) + ttl, **claims})


class JwksServer:
    """Serves `keys` as a JWKS document at /jwks.json; answers `status` instead when not 200."""

    def __init__(self) -> None:
        self.url = ""  # set once the test has started the server
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.body: str | None = None  # served as-is instead of the document when set
        self.fetches = 0
        self.hang = asyncio.Event()  # cleared: every fetch waits until it is set
        self.hang.set()
        self.app = web.Application()
        self.app.router.add_get("/jwks.json", self._serve)

    def publish(self, *keys: SigningKey | dict[str, Any]) -> None:
        self.keys = [key.jwk() if isinstance(key, SigningKey) else key for key in keys]

    async def _serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        await self.hang.wait()
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        if self.body is not None:
            return web.Response(text=self.body, content_type="application/json")
        return web.json_response({"keys": self.keys})
