"""A GroupSession survives being stored, a Commit in flight included."""

from __future__ import annotations

import contextlib
from functools import cache
from typing import NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.mls.codec import Reader, opaque, uint16
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
from securechat.groups.stored import StoredTree, decode_session, decode_tree, encode_session
from tests.groups.keys import identities as made
from tests.groups.test_session import make_group
from tests.groups.world import NOW, World

Stored = tuple[bytes, StoredTree]


def stored(session: GroupSession) -> Stored:
    """The two records the vault holds for a session."""
    tree = StoredTree.of(session.mls.tree)
    return encode_session(session, tree.digest), tree


def restored(records: Stored) -> GroupSession:
    record, tree = records
    return decode_session(record, lambda digest, suite: decode_tree(tree.data, digest, suite))


def stored_with_pending(
    identities: dict[str, IdentityKeyPair],
) -> tuple[World, tuple[Output, ...], Stored]:
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
    return world, outputs, stored(alice.s)


def test_round_trip_with_a_commit_in_flight(identities: dict[str, IdentityKeyPair]) -> None:
    """Restored, alice's session takes the relay's answer and goes on as if never stored."""
    world, outputs, data = stored_with_pending(identities)
    session = restored(data)
    assert stored(session) == data
    alice = world.clients["alice"]
    assert session.pending is not None and alice.s.pending is not None
    assert session.pending.events == alice.s.pending.events
    assert session.intents == alice.s.intents
    alice.session = session
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "bob", "dave")
    assert world.clients["dave"].s.metadata.name == "x"
    assert world.clients["dave"].s.admins == {"alice", "bob"}


def test_plain_session_round_trip(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob")
    bob = world.clients["bob"].s
    assert stored(restored(stored(bob))) == stored(bob)
    assert isinstance(restored(stored(bob)), GroupSession)


def test_a_message_leaves_the_tree_record_as_it_was(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """What makes a message cost the same in any group: only the small record changes."""
    world = make_group(identities, "bob", "carol")
    alice = world.clients["alice"].s
    before_record, before_tree = stored(alice)
    after, _ = alice.send(b"hello")
    record, tree = stored(after)
    assert tree == before_tree
    assert record != before_record
    assert len(record) < len(tree.data) + 4_096


def test_a_tree_from_another_write_is_refused(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob")
    bob = world.clients["bob"].s
    record, _ = stored(bob)
    _, other_tree = stored(make_group(identities, "carol").clients["alice"].s)
    with pytest.raises(InvalidGroupData, match="not the one its session was saved with"):
        restored((record, other_tree))


def test_versions_1_and_2_with_the_tree_inside_still_load(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """Version 2 held `GroupState.encode()` where version 3 holds the digest and
    `encode_apart()`; version 1 is version 2 without the trailing `optional previous`."""
    world = make_group(identities, "bob")
    bob = world.clients["bob"].s
    record, _ = stored(bob)
    r = Reader(record[2:])
    r.opaque()
    r.opaque()
    rest = record[len(record) - r.remaining :]
    version_2 = uint16(2) + opaque(bob.mls.encode()) + rest
    assert bob.previous is None and rest[-1:] == b"\x00"
    version_1 = uint16(1) + opaque(bob.mls.encode()) + rest[:-1]

    def no_tree(digest: bytes, suite: object) -> NoReturn:
        raise AssertionError("a version 1 or 2 record holds its tree")

    for old in (version_2, version_1):
        session = decode_session(old, no_tree)
        assert stored(session) == (record, stored(bob)[1])


def test_unknown_version_is_named(identities: dict[str, IdentityKeyPair]) -> None:
    _, _, (record, tree) = stored_with_pending(identities)
    with pytest.raises(InvalidGroupData, match="version 4"):
        restored((b"\x00\x04" + record[2:], tree))


@cache
def _stored() -> Stored:
    return stored_with_pending(made())[2]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_truncated_or_altered_bytes_raise_only_invalid_group_data(data: st.DataObject) -> None:
    record, tree = _stored()
    which = data.draw(st.sampled_from(["record", "tree"]))
    blob = record if which == "record" else tree.data

    def with_blob(changed: bytes) -> Stored:
        return (changed, tree) if which == "record" else (record, StoredTree(changed, tree.digest))

    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(InvalidGroupData):
        restored(with_blob(blob[:cut]))
    flip = data.draw(st.integers(0, len(blob) - 1))
    altered = blob[:flip] + bytes([blob[flip] ^ 0xFF]) + blob[flip + 1 :]
    with contextlib.suppress(InvalidGroupData):
        restored(with_blob(altered))
