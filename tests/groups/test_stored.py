"""A GroupSession survives being stored, a Commit in flight included."""

from __future__ import annotations

import contextlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.crypto.identity import IdentityKeyPair
from securechat.groups.errors import InvalidGroupData
from securechat.groups.outputs import (
    AddMembers,
    CommitProposals,
    MakeAdmin,
    Output,
    RemoveMember,
    Rename,
    SetTopic,
)
from securechat.groups.session import GroupSession
from securechat.groups.stored import decode_session, encode_session
from tests.groups.keys import identities as made
from tests.groups.test_session import make_group
from tests.groups.world import NOW, World


def stored_with_pending(
    identities: dict[str, IdentityKeyPair],
) -> tuple[World, tuple[Output, ...], bytes]:
    """Alice's session with a Commit in flight and every kind of intent waiting."""
    world = make_group(identities, "bob", "carol")
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(
        AddMembers((("dave", world.fetch_key_package("dave")),)), now=NOW, pins=alice.pinned
    )
    for intent in (
        RemoveMember("carol"),
        Rename("x"),
        SetTopic("y"),
        MakeAdmin("bob"),
        CommitProposals(),
    ):
        alice.session, more = alice.s.request(intent, now=NOW, pins=alice.pinned)
        assert more == ()
    return world, outputs, encode_session(alice.s)


def test_round_trip_with_a_commit_in_flight(identities: dict[str, IdentityKeyPair]) -> None:
    """Restored, alice's session takes the relay's answer and goes on as if never stored."""
    world, outputs, data = stored_with_pending(identities)
    restored = decode_session(data)
    assert encode_session(restored) == data
    alice = world.clients["alice"]
    assert restored.pending is not None and alice.s.pending is not None
    assert restored.pending.events == alice.s.pending.events
    assert restored.intents == alice.s.intents
    alice.session = restored
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "bob", "dave")
    assert world.clients["dave"].s.metadata.name == "x"
    assert world.clients["dave"].s.admins == {"alice", "bob"}


def test_plain_session_round_trip(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob")
    bob = world.clients["bob"].s
    assert encode_session(decode_session(encode_session(bob))) == encode_session(bob)
    assert isinstance(decode_session(encode_session(bob)), GroupSession)


def test_unknown_version_is_named(identities: dict[str, IdentityKeyPair]) -> None:
    _, _, data = stored_with_pending(identities)
    with pytest.raises(InvalidGroupData, match="version 3"):
        decode_session(b"\x00\x03" + data[2:])


@cache
def _stored() -> bytes:
    return stored_with_pending(made())[2]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_truncated_or_altered_bytes_raise_only_invalid_group_data(data: st.DataObject) -> None:
    blob = _stored()
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(InvalidGroupData):
        decode_session(blob[:cut])
    flip = data.draw(st.integers(0, len(blob) - 1))
    altered = blob[:flip] + bytes([blob[flip] ^ 0xFF]) + blob[flip + 1 :]
    with contextlib.suppress(InvalidGroupData):
        decode_session(altered)
