"""The fake client stays in step with the real one: same methods, same parameters."""

from __future__ import annotations

import inspect

import pytest

from securechat.client.core import ChatClient
from tests.tui.fakes import FINGERPRINT, FakeClient

SHARED = sorted(
    name
    for name, member in vars(FakeClient).items()
    if callable(member) and not name.startswith("_") and hasattr(ChatClient, name)
)


@pytest.mark.parametrize("name", SHARED)
def test_fake_methods_take_what_the_core_takes(name: str) -> None:
    """A screen written against the fake calls the core the same way."""
    fake = inspect.signature(getattr(FakeClient, name))
    real = inspect.signature(getattr(ChatClient, name))
    assert list(fake.parameters) == list(real.parameters)


def test_every_core_method_the_screens_use_is_faked() -> None:
    """The calls added for sign-in again, verification and deleted contacts exist on both."""
    for name in ("sign_in_again", "mark_verified", "is_verified", "peer_deleted", "login"):
        assert name in SHARED


def test_the_fake_fingerprint_is_spaced_as_the_core_spaces_it() -> None:
    """Groups of four upper-case hex digits, as `IdentityPublicKey.fingerprint_hex`."""
    groups = FINGERPRINT.split(" ")
    assert all(len(g) == 4 and g == g.upper() for g in groups)
