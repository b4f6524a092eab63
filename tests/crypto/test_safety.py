"""Safety numbers: order independence, shape, and sensitivity to keys and names."""

from __future__ import annotations

from securechat.crypto import IdentityKeyPair, format_safety_number, safety_number


def test_order_independent(alice: IdentityKeyPair, bob: IdentityKeyPair) -> None:
    """Both users must see the same number whichever side computes it."""
    assert safety_number("alice", alice.public, "bob", bob.public) == safety_number(
        "bob", bob.public, "alice", alice.public
    )


def test_sixty_digits(alice: IdentityKeyPair, bob: IdentityKeyPair) -> None:
    """The number is 60 decimal digits, shown as 12 groups of 5."""
    number = safety_number("alice", alice.public, "bob", bob.public)
    assert len(number) == 60 and number.isdigit()
    groups = format_safety_number(number).split(" ")
    assert len(groups) == 12 and all(len(g) == 5 for g in groups)


def test_changes_with_key(
    alice: IdentityKeyPair, bob: IdentityKeyPair, mallory: IdentityKeyPair
) -> None:
    """A substituted key changes the number, which is the whole point of comparing it."""
    assert safety_number("alice", alice.public, "bob", bob.public) != safety_number(
        "alice", alice.public, "bob", mallory.public
    )


def test_changes_with_username(alice: IdentityKeyPair, bob: IdentityKeyPair) -> None:
    """The username is bound in, so one key cannot vouch for another name."""
    assert safety_number("alice", alice.public, "bob", bob.public) != safety_number(
        "alice", alice.public, "bobby", bob.public
    )
