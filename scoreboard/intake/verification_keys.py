"""Keys a token may be verified with: each pinned to the one algorithm it verifies."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MIN_RSA_KEY_BITS = 2048


@dataclass(frozen=True)
class VerificationKey:
    """A key and the one algorithm it verifies: the key decides, never the token."""

    algorithm: str
    key: str | rsa.RSAPublicKey | ec.EllipticCurvePublicKey = field(repr=False)  # str: a secret


def public_key_from_pem(pem: str) -> VerificationKey:
    """An RSA (RS256) or EC P-256 (ES256) public key; ValueError says what is wrong."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    return pinned(key)


def pinned(key: object) -> VerificationKey:
    """`key` with the algorithm it verifies, if it is one we accept; ValueError if not."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_KEY_BITS:
            raise ValueError(f"an RSA key of {key.key_size} bits; at least {MIN_RSA_KEY_BITS}")
        return VerificationKey("RS256", key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return VerificationKey("ES256", key)
    raise ValueError("not an RSA or EC P-256 public key")
