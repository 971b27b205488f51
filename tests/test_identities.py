"""The identity rule: which ids are one person, which are refused, how names are shown."""

from __future__ import annotations

import sys
import unicodedata

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from scoreboard.errors import AuthenticationFailed
from scoreboard.intake import identities
from scoreboard.intake.auth import TokenVerifier, issue_token

SECRET = "identity-secret-" + "x" * 40


@pytest.mark.parametrize(
    "same",
    [
        ("Jos\u00e9", "Jose\u0301"),  # NFC and NFD
        ("\u00c5ngstr\u00f6m", "A\u030angstro\u0308m"),
        ("\uac00", "\u1100\u1161"),  # a Hangul syllable and its jamo
    ],
)
def test_every_normal_form_of_an_id_is_one_user(same):
    assert identities.user_id(same[0]) == identities.user_id(same[1])


@pytest.mark.parametrize(
    "accepted",
    [
        "alice",
        "player 7",
        "team/red?#1 ü",
        "\u0430\u043b\u0438\u0441\u0430",  # all Cyrillic: one script
        "\u0395\u03bb\u03bb\u03b7\u03bd\u03b1\u03c2",  # all Greek
        "\u7530\u4e2dtanaka",  # Han with Latin
        "\u305f\u306a\u304b\u7530\u4e2d",  # Hiragana with Han
        "\ud55c\uad6d\u4eba",  # Hangul with Han
        "\u062a\u0633\u062a-1",  # Arabic with digits
        "a" * identities.MAX_USER_ID_LENGTH,
    ],
)
def test_ids_people_use_are_accepted(accepted: str):
    assert identities.user_id(accepted) == unicodedata.normalize("NFC", accepted)


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        ("", "non-empty"),
        ("al\x00ice", "control"),
        ("al\nice", "control"),
        ("S\ud800", "lone surrogates"),
        ("a" * (identities.MAX_USER_ID_LENGTH + 1), "at most"),
        ("\u0430lice", "mix scripts"),  # Cyrillic а in a Latin name
        ("p\u0430yp\u0430l", "mix scripts"),
        ("\u03bfmega", "mix scripts"),  # Greek ο
        ("\u0430\u03b1", "mix scripts"),  # Cyrillic with Greek
        ("a\u202eb", "printable"),  # right-to-left override
        ("ab\u200b", "printable"),  # zero-width space
        ("\u3164", "printable"),  # Hangul filler: a blank letter
        ("a\u00a0b", "printable"),  # no-break space
        ("\ue000x", "printable"),  # private use
        (" alice", "whitespace"),
        ("alice ", "whitespace"),
        (7, "non-empty string"),
    ],
)
def test_ids_that_hide_or_pass_for_another_are_refused(refused: object, reason: str):
    with pytest.raises(identities.InvalidIdentity, match=reason):
        identities.user_id(refused)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Alice", "Alice"),
        ("  Alice   Smith ", "Alice Smith"),
        ("\x1b[31mRed\x1b[0m", "Red"),
        ("\x1b]0;title\x07Name", "Name"),
        ("Line\r\nbreak", "Line break"),
        ("Nu\x00ll", "Null"),
        ("S\ud800", "S"),
        ("evil\u202eexe.txt", "evilexe.txt"),
        ("Jose\u0301", "Jos\u00e9"),
        ("\u3164\u3164", "fallback"),
        ("", "fallback"),
        (None, "fallback"),
        (42, "fallback"),
    ],
)
def test_display_names_are_cleaned_or_fall_back(raw: object, shown: str):
    assert identities.display_name(raw, "fallback") == shown


def test_a_long_name_is_cut_between_letters_never_inside_one():
    name = "e\u0301" * 40 + "x" * 100
    shown = identities.display_name(name, "fallback")
    assert len(shown) == identities.MAX_USERNAME_LENGTH
    assert shown == unicodedata.normalize("NFC", name)[: identities.MAX_USERNAME_LENGTH]
    flags = "\U0001f1eb\U0001f1f7" * 40  # each flag two code points: never split in half
    cut = identities.display_name(flags, "fallback")
    assert len(cut) == identities.MAX_USERNAME_LENGTH and cut == flags[:64]
    assert len(identities.display_name("\U0001f1eb\U0001f1f7" * 32 + "!", "f")) == 64


@given(st.text(max_size=300))
def test_a_display_name_is_always_safe_to_show_and_store(raw: str):
    shown = identities.display_name(raw, "fallback")
    assert 1 <= len(shown) <= identities.MAX_USERNAME_LENGTH
    assert shown == shown.strip()
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in shown)
    shown.encode("utf-8")  # what the queue, Redis and PostgreSQL need


@given(st.text(max_size=200))
def test_an_accepted_id_is_its_own_normal_form_and_encodable(raw: str):
    try:
        accepted = identities.user_id(raw)
    except identities.InvalidIdentity:
        return
    assert identities.user_id(accepted) == accepted
    assert accepted == unicodedata.normalize("NFC", raw)
    assert "\x00" not in accepted
    accepted.encode("utf-8")


def test_the_script_table_names_every_script_this_python_knows():
    """A character of a script missing from the table would make ids mix unnoticed."""
    common = regex.compile(r"[\p{sc=Zyyy}\p{sc=Zinh}]")
    missing = {
        hex(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) not in {"Cn", "Cs", "Co"}
        and not common.match(chr(code))
        and not identities._SCRIPT_OF.match(chr(code))
    }
    assert not missing, f"characters of no listed script: {sorted(missing)[:10]}"


@pytest.mark.parametrize("tier", ["premium", "free-2"])
def test_a_tier_claim_is_kept_when_printable(tier: str):
    assert identities.tier(tier) == tier


@pytest.mark.parametrize("tier", [None, "", 5, "pre\x00mium", "S\ud800", "t" * 65])
def test_an_odd_tier_claim_counts_as_no_tier(tier: object):
    assert identities.tier(tier) is None


def test_tokens_in_either_normal_form_are_one_user_and_odd_subjects_fail():
    verifier = TokenVerifier(SECRET)
    nfd = verifier.verify(issue_token(SECRET, "Jose\u0301", "Jose\u0301"))
    nfc = verifier.verify(issue_token(SECRET, "Jos\u00e9"))
    assert nfd.subject == nfc.subject == "Jos\u00e9"
    assert nfd.username == "Jos\u00e9"
    for subject in ("S\ud800", "nul\x00", "\u0430lice", " x", "\u3164"):
        with pytest.raises(AuthenticationFailed):
            verifier.verify(issue_token(SECRET, subject, "Name"))


def test_token_names_are_cleaned_and_fall_back_to_the_subject():
    verifier = TokenVerifier(SECRET)
    token = issue_token(
        SECRET, "u1", "\x1b[2J\u202eEvil", extra_claims={"preferred_username": "ok"}
    )
    assert verifier.verify(token).username == "Evil"
    blank = issue_token(SECRET, "u2", "\u3164", extra_claims={"preferred_username": "\x00"})
    assert verifier.verify(blank).username == "u2"
    fallback = issue_token(SECRET, "u3", "\u200b", extra_claims={"preferred_username": "Three"})
    assert verifier.verify(fallback).username == "Three"
