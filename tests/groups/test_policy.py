"""Commits and proposals the policy refuses, each from a member running modified
code (the honest session never builds them): every other member refuses alike."""

from __future__ import annotations

from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.mls import group as g
from securechat.crypto.mls.group_context import Extension
from securechat.groups.device import capabilities, mls_policy, new_device
from securechat.groups.extensions import GroupMetadata, GroupPolicy, group_extensions
from securechat.groups.outputs import CommitRefused, ProposalDropped, Rename, SendCommit
from securechat.groups.session import GroupSession
from tests.groups.test_session import make_group
from tests.groups.world import NOW, World


def forged_commit(world: World, sender: str, **kwargs: object) -> None:
    """`sender` commits with the raw MLS API and the relay accepts it."""
    client = world.clients[sender]
    result = g.commit(client.s.mls, mls_policy(NOW), private=True, **kwargs)  # type: ignore[arg-type]
    action = SendCommit(client.s.epoch, result.message, result.welcome, (), ())
    assert world.relay.commit(sender, action) is None
    client.session = GroupSession(client.s.mls, client.s.epoch + 1)
    world.deliver()


def refusals(world: World, *names: str) -> set[str]:
    return {
        e.reason
        for name in names
        for e in world.clients[name].events
        if isinstance(e, CommitRefused)
    }


def test_non_admin_cannot_add(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob", "carol")
    forged_commit(world, "bob", proposals=[g.Add(world.fetch_key_package("dave"))])
    (reason,) = refusals(world, "alice", "carol")
    assert reason == "bob added dave, but only admins add members."
    assert world.clients["alice"].s.mls.epoch == 1


def test_non_admin_cannot_make_themselves_admin(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob", "carol")
    extensions = group_extensions(GroupPolicy(frozenset({"alice", "bob"})), GroupMetadata("team"))
    forged_commit(world, "bob", proposals=[g.GroupContextExtensions(extensions)])
    assert refusals(world, "alice", "carol") == {
        "bob changed who administers the group, but is no admin."
    }


def test_admin_list_names_only_members(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob")
    extensions = group_extensions(GroupPolicy(frozenset({"alice", "zed"})), GroupMetadata("team"))
    forged_commit(world, "alice", proposals=[g.GroupContextExtensions(extensions)])
    assert refusals(world, "bob") == {"The admin list names zed, who is not a member of the group."}


def test_other_extensions_stay(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob")
    extensions = (*world.clients["alice"].s.mls.context.extensions, Extension(0xF5FF, b""))
    forged_commit(world, "alice", proposals=[g.GroupContextExtensions(extensions)])
    assert refusals(world, "bob") == {"Only the group's policy, name and topic may change."}


def test_proposals_other_than_update_and_leave_are_dropped(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """Bob proposes removing carol: nobody caches it, so no Commit can include it."""
    world = make_group(identities, "bob", "carol")
    bob = world.clients["bob"]
    _, body = g.propose_remove(bob.s.mls, world.clients["carol"].s.mls.own_leaf, private=True)
    assert world.relay.send("bob", bob.s.epoch, body) is None
    world.deliver()
    dropped = [e for e in world.clients["alice"].events if isinstance(e, ProposalDropped)]
    assert [d.reason for d in dropped] == [
        "bob sent a REMOVE proposal; members propose only updates and leaving, admins commit "
        "the rest."
    ]
    assert world.clients["alice"].s.mls.proposals == ()


def test_update_proposals_are_committed(identities: dict[str, IdentityKeyPair]) -> None:
    """A member's Update is kept and the next Commit includes it."""
    world = make_group(identities, "bob", "carol")
    carol = world.clients["carol"]
    leaf = carol.s.mls.own_leaf
    before = world.clients["alice"].s.mls.tree.leaf(leaf)
    mls, body = g.propose_update(carol.s.mls, private=True)
    carol.session = GroupSession(mls, carol.s.epoch)
    assert world.relay.send("carol", carol.s.epoch, body) is None
    world.deliver()
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(Rename("new"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    world.members_agree("alice", "bob", "carol")
    assert world.clients["bob"].s.mls.tree.leaf(leaf) != before


def test_external_joins_are_refused(identities: dict[str, IdentityKeyPair]) -> None:
    """An outsider holding a GroupInfo joins by external Commit: the members refuse it."""
    world = make_group(identities, "bob")
    info = g.group_info(world.clients["alice"].s.mls)
    mallory = new_device(identities["mallory"], "mallory", suite_id=1)
    _, commit = g.join_external(
        info,
        mallory.credential,
        mallory.signature_private,
        mls_policy(NOW),
        capabilities=capabilities(1),
    )
    assert world.relay.commit("mallory", SendCommit(1, commit, None, (), ())) is None
    world.deliver()
    assert refusals(world, "alice", "bob") == {
        "The group takes no external joins; members are added by admins."
    }
