"""The one rule for identities: which user ids are accepted, and how display names are cleaned.

Every path that takes an identity (a token's `sub` and name claims, `{userId}` in a path, `userId`
in a body) goes through here, so the same person is the same id everywhere and nothing that can
stop the worker or the ledger (a NUL, a lone surrogate) gets past the door.

User ids are compared exactly, after NFC normalisation. They must be printable (no control,
format, surrogate, private-use or unassigned characters, no invisible fillers, no bidi controls,
no whitespace at either end) and must not mix scripts in ways that make one id pass for another:
the rule is Unicode UTS #39's "moderately restrictive" level (one script; or Latin with Han and
the Japanese kana, Bopomofo or Hangul; or Latin with one other script except Cyrillic and Greek).
Display names are cleaned rather than refused: they come from an auth service the user may not
control, and a name is only ever shown, never compared.
"""

from __future__ import annotations

import functools
import unicodedata

import regex

MAX_USER_ID_LENGTH = 128
MAX_USERNAME_LENGTH = 64
MAX_TIER_LENGTH = 64

# Not printable, or printable as nothing: control, format (bidi overrides, zero-width joiners),
# surrogate, private use, unassigned, line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_UNPRINTABLE_CATEGORIES = _INVISIBLE | {"Zl", "Zp"}
# Characters that render as blank space but are letters or symbols: one more way to look alike.
_BLANK_LOOKALIKES = regex.compile(r"[\p{Default_Ignorable_Code_Point}\u2800]")
_TERMINAL_ESCAPE = regex.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?)")
_WHITESPACE_RUN = regex.compile(r"\s+")

# ISO 15924 codes of every Unicode script (a test checks none is missing); Common (Zyyy) and
# Inherited (Zinh) are left out: digits, punctuation and combining marks belong to every script.
_SCRIPTS = (
    "Adlm Aghb Ahom Arab Armi Armn Avst Bali Bamu Bass Batk Beng Bhks Bopo Brah Brai Bugi Buhd "
    "Cakm Cans Cari Cham Cher Chrs Copt Cpmn Cprt Cyrl Deva Diak Dogr Dsrt Dupl Egyp Elba Elym "
    "Ethi Gara Geor Glag Gong Gonm Goth Gran Grek Gujr Gukh Guru Hang Hani Hano Hatr Hebr Hira "
    "Hluw Hmng Hmnp Hung Ital Java Kali Kana Kawi Khar Khmr Khoj Kits Knda Krai Kthi Lana Laoo "
    "Latn Lepc Limb Lina Linb Lisu Lyci Lydi Mahj Maka Mand Mani Marc Medf Mend Merc Mero Mlym "
    "Modi Mong Mroo Mtei Mult Mymr Nagm Nand Narb Nbat Newa Nkoo Nshu Ogam Olck Onao Orkh Orya "
    "Osge Osma Ougr Palm Pauc Perm Phag Phli Phlp Phnx Plrd Prti Rjng Rohg Runr Samr Sarb Saur "
    "Sgnw Shaw Shrd Sidd Sidt Sind Sinh Sogd Sogo Sora Soyo Sund Sunu Sylo Syrc Tagb Takr Tale "
    "Talu Taml Tang Tavt Tayo Telu Tfng Tglg Thaa Thai Tibt Tirh Tnsa Todr Tols Toto Tutg Ugar "
    "Vaii Vith Wara Wcho Xpeo Xsux Yezi Yiii Zanb"
).split()
_SCRIPT_OF = regex.compile("|".join(rf"(?P<{code}>\p{{sc={code}}})" for code in _SCRIPTS))
# Scripts that are written together: Japanese, Chinese with Bopomofo, Korean; each with Latin.
_WRITTEN_TOGETHER = (
    frozenset({"Latn", "Hani", "Hira", "Kana"}),
    frozenset({"Latn", "Hani", "Bopo"}),
    frozenset({"Latn", "Hani", "Hang"}),
)
# Scripts whose letters are mistaken for Latin ones (а/a, ο/o, Н/H): never mixed with Latin.
_LOOK_LIKE_LATIN = frozenset({"Cyrl", "Grek"})


class InvalidIdentity(ValueError):
    """A user id that is not acceptable; the message says why, for the client."""


def user_id(raw: object) -> str:
    """`raw` in NFC when it is an acceptable user id; InvalidIdentity says what is wrong."""
    if not isinstance(raw, str) or not raw:
        raise InvalidIdentity("must be a non-empty string")
    return _checked_user_id(raw)


@functools.lru_cache(maxsize=4096)
def _checked_user_id(raw: str) -> str:
    if len(raw) > 4 * MAX_USER_ID_LENGTH:  # before normalising: NFC of a huge string costs time
        raise InvalidIdentity(f"must be at most {MAX_USER_ID_LENGTH} characters")
    if any(unicodedata.category(char) == "Cs" for char in raw):
        raise InvalidIdentity("must be valid Unicode (no lone surrogates)")
    normal = unicodedata.normalize("NFC", raw)
    if len(normal) > MAX_USER_ID_LENGTH:
        raise InvalidIdentity(f"must be at most {MAX_USER_ID_LENGTH} characters")
    if normal.isascii():
        if not normal.isprintable():
            raise InvalidIdentity("must not contain control characters")
    elif any(_unprintable(char) for char in normal) or _BLANK_LOOKALIKES.search(normal):
        raise InvalidIdentity("must contain only printable characters")
    if normal != normal.strip():
        raise InvalidIdentity("must not begin or end with whitespace")
    if not normal.isascii() and not _scripts_may_mix(_scripts(normal)):
        raise InvalidIdentity("must not mix scripts that look alike (e.g. Latin and Cyrillic)")
    return normal


def display_name(raw: object, fallback: str) -> str:
    """A name fit to show on the board: cleaned, at most MAX_USERNAME_LENGTH; else `fallback`."""
    cleaned = _cleaned_name(raw) if isinstance(raw, str) else ""
    return cleaned or _cleaned_name(fallback)


@functools.lru_cache(maxsize=4096)
def _cleaned_name(raw: str) -> str:
    text = raw[: 8 * MAX_USERNAME_LENGTH]  # what could survive the cleaning, with room to spare
    return _first_graphemes(cleaned_name(text), MAX_USERNAME_LENGTH)


def cleaned_name(raw: str) -> str:
    """`raw` as a name is shown: terminal escapes and invisible characters dropped, NFC, runs
    of whitespace as one space, none at either end. Not shortened."""
    text = _WHITESPACE_RUN.sub(" ", _TERMINAL_ESCAPE.sub("", raw))
    text = "".join(char for char in text if unicodedata.category(char) not in _INVISIBLE)
    text = _BLANK_LOOKALIKES.sub("", unicodedata.normalize("NFC", text))
    return _WHITESPACE_RUN.sub(" ", text).strip()


def tier(raw: object) -> str | None:
    """A `tier` claim worth looking up: a short printable string, else None (no tier)."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= MAX_TIER_LENGTH:
        return None
    try:
        return user_id(raw)
    except InvalidIdentity:
        return None


def _unprintable(char: str) -> bool:
    category = unicodedata.category(char)
    return category in _UNPRINTABLE_CATEGORIES or (category == "Zs" and char != " ")


def _scripts(text: str) -> frozenset[str]:
    found = set()
    for match in _SCRIPT_OF.finditer(text):
        assert match.lastgroup is not None
        found.add(match.lastgroup)
    return frozenset(found)


def _scripts_may_mix(scripts: frozenset[str]) -> bool:
    if len(scripts) <= 1 or any(scripts <= together for together in _WRITTEN_TOGETHER):
        return True
    return len(scripts) == 2 and "Latn" in scripts and not scripts & _LOOK_LIKE_LATIN


def _first_graphemes(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, never cutting a letter from its accents."""
    if len(text) <= limit:
        return text
    kept, length = [], 0
    for grapheme in regex.findall(r"\X", text):
        if length + len(grapheme) > limit:
            break
        kept.append(grapheme)
        length += len(grapheme)
    return "".join(kept).rstrip()
