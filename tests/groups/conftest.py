"""Identities for the group tests (see tests/groups/keys.py)."""

from __future__ import annotations

import pytest

from securechat.crypto.identity import IdentityKeyPair
from tests.groups.keys import identities as made


@pytest.fixture(scope="session")
def identities() -> dict[str, IdentityKeyPair]:
    return made()
