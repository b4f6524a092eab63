"""A relay that replays, drops, reorders or forges group deliveries: each is caught
or recovered from, and the members end in the same epoch."""

from __future__ import annotations

from securechat.crypto.identity import IdentityKeyPair
from securechat.groups.outputs import (
    CommitRefused,
    FetchCommits,
    MessageReceived,
    Rename,
    SendCommit,
)
from tests.groups.test_session import make_group
from tests.groups.world import NOW, World


def rename(world: World, name: str, new: str) -> None:
    client = world.clients[name]
    client.session, outputs = client.s.request(Rename(new), now=NOW, pins=client.pinned)
    world.run(name, outputs)


def test_replayed_commit_is_ignored(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob", "carol")
    rename(world, "alice", "one")
    world.deliver()
    carol = world.clients["carol"].s
    epoch, _, body = world.relay.log[-1]
    assert carol.receive_commit(epoch, body, now=NOW, pins=lambda _: None) == (carol, ())


def test_dropped_commit_is_fetched(identities: dict[str, IdentityKeyPair]) -> None:
    """Carol never gets the Commit of epoch 1; the next one tells her she is behind."""
    world = make_group(identities, "bob", "carol")
    rename(world, "alice", "one")
    world.relay.inboxes["carol"].clear()
    rename(world, "alice", "two")
    carol = world.clients["carol"]
    (_, epoch, body) = world.relay.inboxes["carol"][0]
    fetch = carol.s.receive_commit(epoch, body, now=NOW, pins=carol.pinned)[1]
    assert fetch == (FetchCommits(1, until=epoch + 1),)  # up to the Commit she was given
    world.deliver()
    world.members_agree("alice", "bob", "carol")
    assert carol.s.metadata.name == "two"


def test_message_before_its_commit_is_held(identities: dict[str, IdentityKeyPair]) -> None:
    """The relay puts a message of epoch 2 before the Commit that starts epoch 2:
    carol holds it, asks for what she missed, and shows it once the Commit is in."""
    world = make_group(identities, "bob", "carol")
    rename(world, "alice", "one")
    (_, epoch, commit) = world.relay.inboxes["carol"].pop()
    world.relay.inboxes["bob"].clear()
    world.clients["bob"].session, _ = world.clients["bob"].s.receive_commit(
        epoch, commit, now=NOW, pins=world.clients["bob"].pinned
    )
    bob = world.clients["bob"]
    bob.session, outputs = bob.s.send(b"in epoch 2")
    message = outputs[0].body  # type: ignore[union-attr]
    carol = world.clients["carol"]
    carol.session, held = carol.s.receive_message(message, now=NOW)
    assert held == (FetchCommits(1, until=2),)  # no further than the message needs
    carol.session, outputs = carol.s.receive_commit(epoch, commit, now=NOW, pins=carol.pinned)
    opened = [o for o in outputs if isinstance(o, MessageReceived)]
    assert [(o.sender, o.data) for o in opened] == [("bob", b"in epoch 2")]
    assert carol.s.early == ()


def test_forged_commit_takes_an_epoch_and_nothing_else(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """The relay accepts bytes of its own as a Commit: every member refuses them alike,
    and the next real Commit is taken by all."""
    world = make_group(identities, "bob", "carol")
    junk = SendCommit(1, b"\x00\x01\x00\x02junk", None, (), ())
    assert world.relay.commit("the relay", junk) is None
    world.deliver()
    for name in ("alice", "bob", "carol"):
        assert any(isinstance(e, CommitRefused) for e in world.clients[name].events)
    rename(world, "carol", "after")
    world.deliver()
    world.members_agree("alice", "bob", "carol")
    assert world.clients["alice"].s.metadata.name == "after"
