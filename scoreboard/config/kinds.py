"""Kinds of value a variable holds: each parsed strictly and described in one phrase."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import SplitResult, urlsplit

from scoreboard.config.secret import Secret
from scoreboard.intake import identities
from scoreboard.intake.rate_policy import (
    MAX_RATE_LIMIT_AMOUNT,
    MAX_RATE_LIMIT_WINDOW_SECONDS,
    RATE_LIMIT_EXAMPLE,
    checked_rate_limit,
)
from scoreboard.intake.verification_keys import MIN_RSA_KEY_BITS, public_key_from_pem
from scoreboard.redis_connection import SENTINEL_SCHEME, SENTINEL_URL_FORM, sentinel_location

T_co = TypeVar("T_co", covariant=True)
V = TypeVar("V")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
RESERVED_QUEUE_PREFIX = "amq."  # RabbitMQ refuses to declare queues named so
SHOWN_CHARACTERS = 60  # of a refused value in its message: a 5,000-digit number is not read
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_DECIMAL = re.compile(r"([0-9]+)(\.[0-9]+)?")  # [0-9], not \d: \d takes every script's digits


class Malformed(Exception):
    """A value is not of its kind; the message, when there is one, adds why."""


class Kind(Protocol[T_co]):
    """How the text of a variable becomes its value."""

    @property
    def description(self) -> str:
        """What a value must be ('an integer from 1 to 65535'): the docs and errors say it."""
        ...

    def parse(self, raw: str) -> T_co:
        """The value `raw` stands for; Malformed if it is not one of this kind."""
        ...


def shown(text: str) -> str:
    """`text` quoted for a message, cut short when long."""
    if len(text) > SHOWN_CHARACTERS:
        return repr(text[:SHOWN_CHARACTERS]) + "…"
    return repr(text)


def either(words: Iterable[str]) -> str:
    """'a, b or c'."""
    *rest, last = words
    return f"{', '.join(rest)} or {last}" if rest else last


def _printable(raw: str) -> str:
    """`raw` if it has no control character, no space but U+0020, and no space around it."""
    if not raw.isprintable():
        raise Malformed("it holds a control character, a line break or an unusual space")
    if raw != raw.strip():
        raise Malformed("it has spaces around it")
    return raw


def _plain_ascii(raw: str) -> str:
    """`raw` if it is printable ASCII without spaces around it."""
    if not _printable(raw).isascii():
        raise Malformed("it holds a character outside ASCII")
    return raw


@dataclass(frozen=True)
class Integer:
    """ASCII digits, with a leading '-' only when `low` is negative."""

    low: int
    high: int

    @property
    def description(self) -> str:
        return f"an integer from {self.low} to {self.high}"

    def parse(self, raw: str) -> int:
        digits = raw[1:] if raw.startswith("-") and self.low < 0 else raw
        # Not int() alone: it also takes '٣', '５', '+5', '1_000' and ' 5'.
        if not (digits.isascii() and digits.isdigit()):
            raise Malformed()
        if len(digits.lstrip("0")) > len(str(max(-self.low, self.high))):
            raise Malformed()  # out of range, and maybe past what int() converts at all
        value = int(raw)
        if not self.low <= value <= self.high:
            raise Malformed()
        return value


@dataclass(frozen=True)
class Decimal:
    """ASCII digits with an optional fraction: no sign, no exponent, no nan or inf."""

    low: float
    high: float

    @property
    def description(self) -> str:
        return f"a number from {self.low:g} to {self.high:g}"

    def parse(self, raw: str) -> float:
        match = _DECIMAL.fullmatch(raw)
        if match is None or len(match[1].lstrip("0")) > len(f"{self.high:.0f}"):
            raise Malformed()
        value = float(raw)
        if not self.low <= value <= self.high:
            raise Malformed()
        return value


class Flag:
    """On or off."""

    @property
    def description(self) -> str:
        pairs = (f"{on}/{off}" for on, off in zip(TRUE_WORDS[1:], FALSE_WORDS[1:], strict=True))
        return f"{TRUE_WORDS[0]} or {FALSE_WORDS[0]} (also {', '.join(pairs)})"

    def parse(self, raw: str) -> bool:
        word = raw.lower() if raw.isascii() else ""
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise Malformed()


@dataclass(frozen=True)
class Choice:
    """One of `values`, in any letter case; the value is spelled as declared."""

    values: tuple[str, ...]

    @property
    def description(self) -> str:
        return either(self.values)

    def parse(self, raw: str) -> str:
        # ASCII first: 'ınfo'.upper() is 'INFO'.
        for value in self.values if raw.isascii() else ():
            if raw.lower() == value.lower():
                return value
        raise Malformed()


@dataclass(frozen=True)
class Url:
    """A URL with one of `schemes`, in printable ASCII."""

    schemes: tuple[str, ...]

    @property
    def description(self) -> str:
        return f"a URL starting with {either(f'{scheme}://' for scheme in self.schemes)}"

    def parse(self, raw: str) -> str:
        self.split(raw)
        return raw

    def split(self, raw: str) -> SplitResult:
        _plain_ascii(raw)
        try:
            parts = urlsplit(raw)
            if parts.port == 0:
                raise Malformed("port 0")
        except ValueError as exc:
            raise Malformed(str(exc)) from None
        if parts.scheme not in self.schemes or not raw[len(parts.scheme) :].startswith("://"):
            raise Malformed()
        return parts


@dataclass(frozen=True)
class RedisUrl:
    """A plain Redis URL, or Sentinel's: the form scoreboard/redis_connection.py reads."""

    plain: Url = Url(("redis", "rediss", "unix"))

    @property
    def description(self) -> str:
        return f"{self.plain.description}, or `{SENTINEL_URL_FORM}`"

    def parse(self, raw: str) -> str:
        if not raw.startswith(f"{SENTINEL_SCHEME}://"):
            return self.plain.parse(raw)
        _plain_ascii(raw)
        try:
            sentinel_location(raw)
        except ValueError as exc:
            raise Malformed(str(exc)) from None
        return raw


@dataclass(frozen=True)
class UrlList:
    """One URL, or several separated by commas: the nodes of one cluster, tried in turn."""

    url: Url

    @property
    def description(self) -> str:
        return f"{self.url.description}, or several such URLs separated by commas"

    def parse(self, raw: str) -> tuple[str, ...]:
        urls = tuple(part.strip(" ") for part in raw.split(","))
        if "" in urls:
            raise Malformed("an empty URL between commas")
        if len(set(urls)) != len(urls):
            raise Malformed("a URL appears twice")
        return tuple(self.url.parse(url) for url in urls)


@dataclass(frozen=True)
class KeySetUrl:
    """An https:// URL; http:// only to this machine."""

    url: Url = Url(("https", "http"))

    @property
    def description(self) -> str:
        return "a URL starting with https:// (http:// only to localhost)"

    def parse(self, raw: str) -> str:
        # Whoever can alter the key set in transit can sign any token.
        parts = self.url.split(raw)
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise Malformed()
        return raw


class Host:
    """An address to listen on."""

    @property
    def description(self) -> str:
        return "an IP address (0.0.0.0, ::, 127.0.0.1) or a host name"

    def parse(self, raw: str) -> str:
        try:
            ipaddress.ip_address(_plain_ascii(raw))
        except ValueError:
            if not _HOST_NAME.fullmatch(raw):
                raise Malformed() from None
        return raw


@dataclass(frozen=True)
class Text:
    """Printable text, as given."""

    description: str = "printable text"

    def parse(self, raw: str) -> str:
        return _printable(raw)


@dataclass(frozen=True)
class QueueName:
    """A RabbitMQ queue name that leaves room for the suffixes we add to it."""

    max_bytes: int

    @property
    def description(self) -> str:
        return (
            f"printable text of at most {self.max_bytes} bytes in UTF-8, not starting with "
            f"{RESERVED_QUEUE_PREFIX}"
        )

    def parse(self, raw: str) -> str:
        if len(_printable(raw).encode()) > self.max_bytes or raw.startswith(RESERVED_QUEUE_PREFIX):
            raise Malformed()
        return raw


@dataclass(frozen=True)
class SecretText:
    """Printable text of some length, kept out of reprs."""

    min_length: int

    @property
    def description(self) -> str:
        return f"printable text of at least {self.min_length} characters"

    def parse(self, raw: str) -> Secret:
        if len(_printable(raw)) < self.min_length:
            raise Malformed()
        return Secret(raw)


class PublicKeyPem:
    """A PEM public key a token may be verified with."""

    @property
    def description(self) -> str:
        return (
            f"a PEM public key, RSA of {MIN_RSA_KEY_BITS} bits or more or EC P-256; "
            "a literal \\n may stand for each line break"
        )

    def parse(self, raw: str) -> str:
        # Many environments cannot hold a multi-line value: a literal backslash-n stands for one.
        pem = raw.replace("\\n", "\n").strip()
        if not pem.isascii():
            raise Malformed("PEM is ASCII")
        try:
            public_key_from_pem(pem)
        except ValueError as exc:
            raise Malformed(str(exc)) from None
        return pem


class RateLimit:
    """One limit the rate limiter can enforce (checked_rate_limit)."""

    @property
    def description(self) -> str:
        hours = MAX_RATE_LIMIT_WINDOW_SECONDS // 3600
        return (
            f"a rate limit such as {RATE_LIMIT_EXAMPLE}: 1 to {MAX_RATE_LIMIT_AMOUNT:,} "
            f"requests in a window of at most {hours} hours"
        )

    def parse(self, raw: str) -> str:
        try:
            return checked_rate_limit(_plain_ascii(raw))
        except ValueError:
            raise Malformed() from None


@dataclass(frozen=True)
class TierMap(Generic[V]):
    """Comma-separated `tier<separator>value` pairs, each tier once, as a tuple of pairs."""

    separator: str
    noun: str  # what the values are, for the description
    value: Kind[V]
    example: str

    @property
    def description(self) -> str:
        return (
            f"tier{self.separator}{self.noun} pairs such as {self.example}, each {self.noun} "
            f"{self.value.description}"
        )

    def parse(self, raw: str) -> tuple[tuple[str, V], ...]:
        if not raw.isprintable():
            raise Malformed("it holds a control character, a line break or an unusual space")
        pairs: dict[str, V] = {}
        for item in filter(None, (part.strip(" ") for part in raw.split(","))):
            tier, separator, text = (part.strip(" ") for part in item.partition(self.separator))
            # A tier no `tier` claim can carry would never apply.
            if not separator or identities.tier(tier) != tier:
                raise Malformed(f"no tier before {self.separator!r} in {shown(item)}")
            if tier in pairs:
                raise Malformed(f"tier {shown(tier)} appears twice")
            try:
                pairs[tier] = self.value.parse(text)
            except Malformed:
                raise Malformed(f"not a {self.noun}: {shown(item)}") from None
        return tuple(pairs.items())


class Origins:
    """'*', or the origins browsers send (scheme://host[:port]), lower-cased."""

    @property
    def description(self) -> str:
        return "* or comma-separated origins such as https://game.example"

    def parse(self, raw: str) -> tuple[str, ...]:
        if not (raw.isascii() and raw.isprintable()):
            raise Malformed("origins are printable ASCII")
        # Browsers send Origin lower-case, as scheme://host[:port] and nothing more.
        origins = tuple(item.strip(" ").lower() for item in raw.split(",") if item.strip(" "))
        if origins == ("*",):
            return origins
        for origin in origins:
            if not _is_origin(origin):
                raise Malformed(f"not an origin: {shown(origin)}")
        return origins


def _is_origin(text: str) -> bool:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and port != 0
        and "@" not in text
        and "*" not in text
        and text == f"{parts.scheme}://{parts.netloc}"
    )


class Anything:
    """Any text: only whether the variable is set matters."""

    @property
    def description(self) -> str:
        return "any value"

    def parse(self, raw: str) -> str:
        return raw
