"""Identities for the group tests: RSA-3072 keys take about half a second each, so
they are made once per process (they are immutable). Property tests call this
directly rather than take a fixture, so a failing example does not print keys."""

from __future__ import annotations

from functools import cache

from securechat.crypto.identity import IdentityKeyPair

NAMES = ("alice", "bob", "carol", "dave", "erin", "mallory")


@cache
def identities() -> dict[str, IdentityKeyPair]:
    return {name: IdentityKeyPair.generate() for name in NAMES}
