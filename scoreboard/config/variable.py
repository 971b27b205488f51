"""One environment variable: its name, kind, default and meaning, and how it is read."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from scoreboard.config.kinds import FALSE_WORDS, TRUE_WORDS, Kind, Malformed, shown
from scoreboard.errors import ConfigError

T = TypeVar("T")

VARIABLE = "variable"  # the metadata key under which a Settings field keeps its Variable


@dataclass(frozen=True)
class Variable(Generic[T]):
    """An environment variable, declared once: the docs, the reader and Settings use this."""

    name: str
    kind: Kind[T]
    default: T
    meaning: str  # one line of Markdown for docs/configuration.md; links relative to docs/
    secret: bool = False  # its value shows nowhere: not in an error, not in a repr

    @property
    def written_default(self) -> str | None:
        """The default as one would write it in the environment; None when it is unset."""
        if self.default is None or self.default == ():
            return None
        if isinstance(self.default, bool):
            return TRUE_WORDS[0] if self.default else FALSE_WORDS[0]
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)

    def is_set(self, env: Mapping[str, str]) -> bool:
        """Whether `env` has a value for it; an empty value counts as unset."""
        return env.get(self.name, "") != ""

    def read(self, env: Mapping[str, str]) -> T:
        """Its value in `env`, or its default when unset; ConfigError names it if malformed."""
        raw = env.get(self.name, "")
        if raw == "":
            return self.default
        try:
            # os.environ holds undecodable bytes as lone surrogates (PEP 383).
            raw.encode()
        except UnicodeEncodeError:
            raise ConfigError(f"{self.name} is not valid UTF-8") from None
        try:
            return self.kind.parse(raw)
        except Malformed as exc:
            raise ConfigError(self._complaint(raw, str(exc))) from None

    def field(self, *, in_repr: bool = True) -> T:
        """A Settings field holding this variable's value, with its default."""
        declared: T = dataclasses.field(
            default=self.default,
            repr=in_repr and not self.secret,
            metadata={VARIABLE: self},
        )
        return declared

    def _complaint(self, raw: str, why: str) -> str:
        complaint = f"{self.name} must be {self.kind.description}"
        if not self.secret:
            complaint += f", got {shown(raw)}"
        return f"{complaint} ({why})" if why else complaint
