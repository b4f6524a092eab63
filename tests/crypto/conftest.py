"""Fixtures for the crypto tests: Wycheproof lookup, identities, prekeys and sessions.

RSA-3072 key generation costs about half a second, so identities are session-scoped;
everything built from them is immutable and safe to share between tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from securechat.crypto import (
    IdentityKeyPair,
    PrekeyBundle,
    PrekeySecrets,
    decrypt,
    encrypt,
    initiate,
    respond,
)
from tests.crypto.helpers import Session, publish

REPO = Path(__file__).resolve().parents[2]
WYCHEPROOF = REPO.parent / "shared" / "testvectors" / "wycheproof"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wycheproof(filename): parametrize `case` with that Wycheproof file"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per Wycheproof case, id = tcId; each case merges its group's fields."""
    marker = metafunc.definition.get_closest_marker("wycheproof")
    if marker is None:
        return
    path = WYCHEPROOF / marker.args[0]
    if not path.is_file():
        reason = f"Wycheproof vectors not found at {path} (expected ../shared beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        metafunc.parametrize("case", [pytest.param(None, marks=pytest.mark.skip(reason=reason))])
        return
    data = json.loads(path.read_text())
    params = [
        pytest.param(
            {**{k: v for k, v in group.items() if k != "tests"}, **test}, id=str(test["tcId"])
        )
        for group in data["testGroups"]
        for test in group["tests"]
    ]
    metafunc.parametrize("case", params)


@pytest.fixture(scope="session")
def alice() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def bob() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def mallory() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def bob_prekeys(bob: IdentityKeyPair) -> tuple[PrekeySecrets, PrekeyBundle]:
    return publish(bob)


@pytest.fixture(scope="session")
def session(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: tuple[PrekeySecrets, PrekeyBundle]
) -> Session:
    """Both sides right after Bob decrypted Alice's first message, so both can send."""
    secrets, bundle = bob_prekeys
    started = initiate(alice, "alice", "bob", None, bundle)
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    alice_state, first = encrypt(started.state, b"hello", "alice", "bob")
    bob_state, _ = decrypt(accepted.state, first, "alice", "bob")
    return Session(alice_state, bob_state)
