"""Where the deployment under test listens, parsed once from its URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Endpoint:
    """Host, port and scheme of a deployment, and the path it is mounted under."""

    host: str
    port: int
    secure: bool
    base_path: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Parse an http(s) URL; ValueError when it is not one."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        secure = parts.scheme == "https"
        return cls(
            host=parts.hostname,
            port=parts.port or (443 if secure else 80),
            secure=secure,
            base_path=parts.path.rstrip("/"),
        )

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.host_header}{self.base_path}"
