"""A group conversation end to end through GroupSession and an in-memory relay."""

from __future__ import annotations

import pytest

from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.mls import group as g
from securechat.crypto.mls.errors import MLSError
from securechat.groups.device import mls_policy
from securechat.groups.errors import GroupBusy, PolicyViolation
from securechat.groups.outputs import (
    AddMembers,
    AdminsChanged,
    CommitRefused,
    FetchCommits,
    IdentityFirstSeen,
    IdentityKeyChanged,
    Invited,
    MakeAdmin,
    MemberAdded,
    MemberLeft,
    MemberRemoved,
    MessageReceived,
    RemovedFromGroup,
    RemoveMember,
    Rename,
    Renamed,
    SendCommit,
    SetTopic,
    TopicChanged,
)
from securechat.groups.session import GroupSession
from tests.groups.world import NOW, World


def make_group(identities: dict[str, IdentityKeyPair], *others: str) -> World:
    """alice creates "team" and adds `others` in one Commit."""
    world = World(identities)
    alice = world.client("alice")
    alice.session = GroupSession.create(alice.device, "team", now=NOW, topic="plans")
    packages = tuple((name, world.fetch_key_package(name)) for name in others)
    alice.session, outputs = alice.s.request(AddMembers(packages), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    return world


def send(world: World, sender: str, text: bytes) -> None:
    client = world.clients[sender]
    client.session, outputs = client.s.send(text)
    world.run(sender, outputs)
    world.deliver()


def received(world: World, name: str) -> list[tuple[str, bytes]]:
    return [
        (e.sender, e.data) for e in world.clients[name].events if isinstance(e, MessageReceived)
    ]


def test_three_members_created_and_talk(identities: dict[str, IdentityKeyPair]) -> None:
    """Bob and carol see who invited them, the name and the members, and read each other."""
    world = make_group(identities, "bob", "carol")
    world.members_agree("alice", "bob", "carol")
    invited = [e for e in world.clients["bob"].events if isinstance(e, Invited)]
    assert invited == [Invited("alice", "team", "plans", ("alice", "bob", "carol"))]
    added = [e for e in world.clients["alice"].events if isinstance(e, MemberAdded)]
    assert [(e.by, e.user) for e in added] == [("alice", "bob"), ("alice", "carol")]
    send(world, "carol", b"hi all")
    assert received(world, "alice") == received(world, "bob") == [("carol", b"hi all")]
    assert world.relay.members == {"alice", "bob", "carol"}


def test_add_then_remove_and_removed_member_cannot_read(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """After alice removes bob, bob learns it and cannot open what follows."""
    world = make_group(identities, "bob", "carol")
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(
        AddMembers((("dave", world.fetch_key_package("dave")),)), now=NOW, pins=alice.pinned
    )
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "bob", "carol", "dave")
    bob_before = world.clients["bob"].s
    alice.session, outputs = alice.s.request(RemoveMember("bob"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "carol", "dave")
    assert world.clients["bob"].events[-1] == RemovedFromGroup("alice")
    assert MemberRemoved("alice", "bob") in world.clients["carol"].events
    assert "bob" not in world.relay.members
    carol = world.clients["carol"]
    carol.session, outputs = carol.s.send(b"after bob")
    world.run("carol", outputs)
    world.deliver()
    assert received(world, "dave")[-1] == ("carol", b"after bob")
    body = outputs[0].body  # type: ignore[union-attr]
    held, fetch = bob_before.receive_message(body, now=NOW)
    assert fetch == (FetchCommits(bob_before.epoch, until=bob_before.epoch + 1),)
    epoch, _, removal = world.relay.log[-1]
    _, outputs = held.receive_commit(epoch, removal, now=NOW, pins=lambda _: None)
    assert outputs == (RemovedFromGroup("alice"),)
    assert world.clients["bob"].s.receive_message(body, now=NOW)[1] == ()
    with pytest.raises(MLSError):
        g.process(bob_before.mls, body, mls_policy(NOW))


def test_leave_by_self_remove(identities: dict[str, IdentityKeyPair]) -> None:
    """Carol's leave proposal is committed by the first member staying; all see "carol left"."""
    world = make_group(identities, "bob", "carol")
    carol = world.clients["carol"]
    carol.session, outputs = carol.s.leave()
    world.run("carol", outputs)
    world.deliver()
    world.members_agree("alice", "bob")
    assert MemberLeft("carol") in world.clients["bob"].events
    assert carol.events[-1] == RemovedFromGroup("alice")
    assert "carol" not in world.relay.members


def test_leaving_while_own_commit_is_pending(identities: dict[str, IdentityKeyPair]) -> None:
    """Bob asks to leave while his own Commit awaits the relay: the leave waits for the
    answer (a proposal from the old state would reuse the Commit's handshake key), and
    the relay sees the proposal only after the Commit."""
    world = make_group(identities, "bob", "carol")
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(MakeAdmin("bob"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    bob = world.clients["bob"]
    bob.session, commit = bob.s.request(
        AddMembers((("dave", world.fetch_key_package("dave")),)), now=NOW, pins=bob.pinned
    )
    bob.session, leave = bob.s.leave()
    assert leave == ()
    world.run("bob", commit)
    world.deliver()
    world.members_agree("alice", "carol", "dave")
    assert world.clients["dave"].s.admins == {"alice"}
    assert MemberLeft("bob") in world.clients["dave"].events


def test_a_commit_refused_for_good_is_dropped_and_the_next_change_goes_out(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """The relay refuses alice's add for good: her session goes back to the state the
    Commit was built on, and a rename asked for meanwhile goes out as the next Commit."""
    world = make_group(identities, "bob")
    alice = world.clients["alice"]
    before = alice.s.mls.epoch_authenticator
    alice.session, outputs = alice.s.request(
        AddMembers((("carol", world.fetch_key_package("carol")),)), now=NOW, pins=alice.pinned
    )
    (commit,) = [o for o in outputs if isinstance(o, SendCommit)]
    alice.session, waiting = alice.s.request(Rename("renamed"), now=NOW, pins=alice.pinned)
    assert waiting == () and alice.s.pending is not None
    alice.session, outputs = alice.s.refused(commit.epoch, now=NOW)
    assert alice.s.mls.epoch_authenticator == before
    (rename,) = [o for o in outputs if isinstance(o, SendCommit)]
    assert rename.added == () and alice.s.pending is not None
    world.run("alice", outputs)
    world.deliver()
    assert world.clients["bob"].s.metadata.name == "renamed"
    assert "carol" not in {m.username for m in world.clients["bob"].s.members}
    assert alice.s.refused(commit.epoch, now=NOW) == (alice.s, ())


def test_only_admins_add_remove_and_promote(identities: dict[str, IdentityKeyPair]) -> None:
    """Bob may rename and set the topic, not add or remove, until alice makes him admin."""
    world = make_group(identities, "bob", "carol")
    bob = world.clients["bob"]
    with pytest.raises(PolicyViolation):
        bob.s.request(RemoveMember("carol"), now=NOW, pins=bob.pinned)
    bob.session, outputs = bob.s.request(Rename("crew"), now=NOW, pins=bob.pinned)
    world.run("bob", outputs)
    bob.session, outputs = bob.s.request(SetTopic("lunch"), now=NOW, pins=bob.pinned)
    world.run("bob", outputs)
    world.deliver()
    assert Renamed("bob", "crew") in world.clients["carol"].events
    assert TopicChanged("bob", "lunch") in world.clients["carol"].events
    assert world.clients["alice"].s.metadata.name == "crew"
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(MakeAdmin("bob"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    assert AdminsChanged("alice", ("bob",), ()) in world.clients["carol"].events
    bob.session, outputs = bob.s.request(RemoveMember("carol"), now=NOW, pins=bob.pinned)
    world.run("bob", outputs)
    world.deliver()
    world.members_agree("alice", "bob")


def test_only_admin_cannot_leave_before_promoting(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob")
    with pytest.raises(PolicyViolation, match="only admin"):
        world.clients["alice"].s.leave()


def test_admin_leaving_is_pruned_from_the_policy(identities: dict[str, IdentityKeyPair]) -> None:
    """When admin bob leaves, the committer drops him from the admin list (anyone may)."""
    world = make_group(identities, "bob", "carol")
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(MakeAdmin("bob"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    bob = world.clients["bob"]
    bob.session, outputs = bob.s.leave()
    world.run("bob", outputs)
    world.deliver()
    world.members_agree("alice", "carol")
    assert world.clients["carol"].s.admins == {"alice"}


def test_concurrent_commits_one_retries_and_all_agree(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """Alice and bob commit in the same epoch: the relay takes alice's, bob's gets
    `conflict`, bob catches up, builds his change again and it lands next epoch."""
    world = make_group(identities, "bob", "carol")
    alice, bob = world.clients["alice"], world.clients["bob"]
    alice.session, outputs = alice.s.request(MakeAdmin("bob"), now=NOW, pins=alice.pinned)
    alice.session, alice_outputs = alice.s.request(
        AddMembers((("dave", world.fetch_key_package("dave")),)), now=NOW, pins=alice.pinned
    )
    assert alice_outputs == ()
    bob.session, bob_outputs = bob.s.request(Rename("crew"), now=NOW, pins=bob.pinned)
    world.run("alice", outputs)
    world.run("bob", bob_outputs)
    assert world.conflicts == 1
    world.deliver()
    world.members_agree("alice", "bob", "carol", "dave")
    assert world.clients["dave"].s.metadata.name == "crew"
    assert world.clients["carol"].s.admins == {"alice", "bob"}


def test_key_change_blocks_sending_until_resolved(identities: dict[str, IdentityKeyPair]) -> None:
    """Carol pinned another key for dave: adding dave warns her and stops her sending."""
    world = make_group(identities, "bob", "carol")
    carol = world.clients["carol"]
    carol.pins["dave"] = identities["mallory"].public
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(
        AddMembers((("dave", world.fetch_key_package("dave")),)), now=NOW, pins=alice.pinned
    )
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "bob", "carol", "dave")
    warning = [e for e in carol.events if isinstance(e, IdentityKeyChanged)]
    assert [w.member.username for w in warning] == ["dave"]
    assert IdentityFirstSeen in {type(e) for e in world.clients["bob"].events}
    with pytest.raises(GroupBusy, match="dave"):
        carol.s.send(b"hello")
    carol.pins["dave"] = identities["dave"].public
    carol.session = carol.s.recheck(carol.pinned)
    send(world, "carol", b"hello")
    assert received(world, "dave") == [("carol", b"hello")]


def test_admin_will_not_add_a_swapped_key_package(identities: dict[str, IdentityKeyPair]) -> None:
    """A key package the relay hands out for dave, signed by another identity than the
    one alice pinned, is refused before any Commit."""
    world = make_group(identities, "bob")
    alice = world.clients["alice"]
    daves = world.fetch_key_package("dave")
    alice.pins["dave"] = identities["mallory"].public
    with pytest.raises(GroupBusy, match="verify"):
        alice.s.request(AddMembers((("dave", daves),)), now=NOW, pins=alice.pinned)
    with pytest.raises(PolicyViolation, match="belongs to"):
        alice.s.request(AddMembers((("erin", daves),)), now=NOW, pins=alice.pinned)


def test_commit_breaking_policy_is_refused_by_everyone(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """A modified client (bob, no admin) commits carol's removal: every member refuses
    it, stays in its MLS epoch, and the next honest Commit is taken by all."""
    world = make_group(identities, "bob", "carol")
    bob = world.clients["bob"]
    result = g.commit(
        bob.s.mls,
        mls_policy(NOW),
        proposals=[g.Remove(world.clients["carol"].s.mls.own_leaf)],
        private=True,
    )
    assert world.relay.commit("bob", SendCommit(bob.s.epoch, result.message, None, (), ())) is None
    world.deliver()
    for name in ("alice", "carol"):
        refused = [e for e in world.clients[name].events if isinstance(e, CommitRefused)]
        assert refused
        assert "only admins remove" in refused[-1].reason
    bob.session = GroupSession(bob.s.mls, bob.s.epoch + 1)
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(Rename("still us"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "bob", "carol")
