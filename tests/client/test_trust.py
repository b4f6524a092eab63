"""Trust decisions on plain values: what a re-shared key does, and what `verify` shows."""

from __future__ import annotations

import pytest

from securechat.client.trust import (
    SafetyNumbers,
    SharedKeyOutcome,
    classify_shared_key,
    rejection_warning,
    short_fingerprint,
)

PINNED, OFFERED, OTHER = b"pinned-der", b"offered-der", b"other-der"


@pytest.mark.parametrize(
    ("pinned", "offered", "shared", "outcome"),
    [
        (None, None, OTHER, SharedKeyOutcome.PIN),
        (PINNED, None, PINNED, SharedKeyOutcome.SAME),
        (PINNED, OFFERED, PINNED, SharedKeyOutcome.CLEARS_CHANGE),
        (PINNED, None, OTHER, SharedKeyOutcome.CHANGE),
        (PINNED, OFFERED, OFFERED, SharedKeyOutcome.CHANGE),
        (PINNED, OFFERED, OTHER, SharedKeyOutcome.CHANGE),
    ],
)
def test_shared_key_outcome(
    pinned: bytes | None, offered: bytes | None, shared: bytes, outcome: SharedKeyOutcome
) -> None:
    """Only the pinned key itself ends a pending change; the offered key never pins itself."""
    assert classify_shared_key(pinned, offered, shared) is outcome


def test_safety_numbers_without_a_change_show_one_number() -> None:
    """Nothing pending: one number, the shape both peers print alike."""
    text = SafetyNumbers("bob", "11111 22222").describe()
    assert text == "safety number with bob:\n11111 22222"


def test_safety_numbers_during_a_change_are_labelled_with_both_choices() -> None:
    """Both numbers, each under its label, and the command that each match supports."""
    text = SafetyNumbers("bob", "11111 22222", "33333 44444").describe()
    lines = text.splitlines()
    assert "PINNED" in lines[0] and lines[1] == "11111 22222"
    assert "NEW key" in lines[2] and lines[3] == "33333 44444"
    assert "`reject bob` keeps it" in text and "`trust bob` accepts it" in text


def test_rejection_warning_names_both_keys_and_who_ended_the_change() -> None:
    """The stored warning says which key stayed, which went, and why it matters."""
    by_peer = rejection_warning("bob", "a" * 40, "b" * 40, by_peer=True)
    by_user = rejection_warning("bob", "a" * 40, "b" * 40, by_peer=False)
    for text in (by_peer, by_user):
        assert "a" * 16 in text and "b" * 16 in text and "relay" in text
    assert "bob shared the pinned key" in by_peer
    assert "you kept bob's pinned key" in by_user


def test_short_fingerprint_keeps_whole_groups() -> None:
    """The spaced hex is cut after four groups, never re-chunked (was `4F81  972 F 7E60 0`)."""
    spaced = "4F81 972F 7E60 0ABC 1234 5678 9ABC DEF0 1234 5678"
    assert short_fingerprint(spaced) == "4F81 972F 7E60 0ABC"
    warning = rejection_warning("bob", spaced, "FFFF " * 9 + "FFFF", by_peer=False)
    assert "pinned key 4F81 972F 7E60 0ABC and" in warning
    assert "key FFFF FFFF FFFF FFFF offered" in warning
