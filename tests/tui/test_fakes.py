"""The fake client stays in step with the real one: same methods, same parameters."""

from __future__ import annotations

import inspect

import pytest

from securechat.client.core import ChatClient
from securechat.errors import ClientError, ClientErrorCode
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


async def test_the_fake_group_keeps_members_history_and_the_admin_rule() -> None:
    """The TUI's group screens are built on this: members, system lines, sends and refusals."""
    alice = FakeClient("wss://relay", accounts={"alice": "pw", "bob": "pw", "carol": "pw"})
    await alice.login("alice", "pw")
    group = await alice.create_group("team", ["bob"])
    assert [(m.user, m.admin) for m in group.members] == [("alice", True), ("bob", False)]
    await alice.group_invite(group.group_id, "carol")
    await alice.group_send_text(group.group_id, "hello all")
    alice.receive_group(group.group_id, "bob", "hi alice")
    lines = [(m.record.sender, m.record.text) for m in alice.history(group.conversation.key)]
    assert lines[-3:] == [("", "alice added carol"), ("alice", "hello all"), ("bob", "hi alice")]
    invited = alice.invite_me("carol", "other", ["bob"])
    with pytest.raises(ClientError) as refused:
        await alice.group_remove(invited, "bob")
    assert refused.value.code == ClientErrorCode.NOT_ADMIN
    alice.change_group_key(group.group_id, "bob")
    with pytest.raises(ClientError) as blocked:
        await alice.group_send_text(group.group_id, "anyone?")
    assert blocked.value.code == ClientErrorCode.KEY_CHANGED
    alice.trust("bob")
    await alice.group_send_text(group.group_id, "anyone?")
