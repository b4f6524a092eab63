"""Identities for the group tests: RSA-3072 keys take about half a second each, so
they are made once per session (they are immutable)."""

from __future__ import annotations

import pytest

from securechat.crypto.identity import IdentityKeyPair

NAMES = ("alice", "bob", "carol", "dave", "erin", "mallory")


@pytest.fixture(scope="session")
def identities() -> dict[str, IdentityKeyPair]:
    return {name: IdentityKeyPair.generate() for name in NAMES}
