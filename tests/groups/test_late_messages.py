"""A message of the epoch just ended, delivered after the Commit that ended it: the
session keeps that one previous epoch to open its application data, once each
(issue 20: every accepted message reaches every member)."""

from __future__ import annotations

from securechat.crypto.identity import IdentityKeyPair
from securechat.groups.outputs import (
    MessageReceived,
    MessageUnreadable,
    Output,
    ProposalDropped,
    RemoveMember,
    Rename,
    SendCommit,
    SendHandshake,
    SendMessage,
)
from tests.groups.test_session import make_group
from tests.groups.test_stored import restored, stored
from tests.groups.world import NOW, World


def held_message(world: World, sender: str, text: bytes) -> bytes:
    """`sender`'s message as the relay accepted it, not delivered yet."""
    client = world.clients[sender]
    client.session, outputs = client.s.send(text)
    (action,) = outputs
    assert isinstance(action, SendMessage)
    assert world.relay.send(sender, action.epoch, action.body) is None
    for inbox in world.relay.inboxes.values():
        inbox.clear()
    return action.body


def opened(outputs: tuple[Output, ...]) -> list[tuple[str, bytes]]:
    assert all(isinstance(o, MessageReceived) for o in outputs)
    return [(o.sender, o.data) for o in outputs if isinstance(o, MessageReceived)]


def rename(world: World, name: str, *, deliver: bool = True) -> None:
    """alice's Commit, accepted; processed by everyone unless `deliver` is False."""
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(Rename(name), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    if deliver:
        world.deliver()


def test_a_message_of_the_previous_epoch_opens_once(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """For the committer (own accepted Commit) and a member who processed it alike;
    the same bytes again are refused, the key having been deleted."""
    world = make_group(identities, "bob", "carol")
    body = held_message(world, "bob", b"sent before the rename")
    rename(world, "renamed")
    for name in ("alice", "carol"):
        client = world.clients[name]
        assert client.s.previous is not None
        assert client.s.previous.epoch == client.s.mls.epoch - 1
        client.session, outputs = client.s.receive_message(body, now=NOW)
        assert opened(outputs) == [("bob", b"sent before the rename")]
        before = client.s
        client.session, again = client.s.receive_message(body, now=NOW)
        assert len(again) == 1 and isinstance(again[0], MessageUnreadable)
        assert client.s == before


def test_a_message_two_epochs_back_is_refused_with_a_clear_event(
    identities: dict[str, IdentityKeyPair],
) -> None:
    world = make_group(identities, "bob")
    body = held_message(world, "bob", b"too late")
    rename(world, "one")
    rename(world, "two")
    alice = world.clients["alice"]
    assert alice.s.previous is not None and alice.s.previous.epoch == alice.s.mls.epoch - 1
    alice.session, outputs = alice.s.receive_message(body, now=NOW)
    assert len(outputs) == 1 and isinstance(outputs[0], MessageUnreadable)
    assert "only the previous epoch's keys are kept" in outputs[0].reason


def test_a_proposal_of_the_previous_epoch_is_dropped(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """RFC 9420: a proposal is valid only in its epoch; the member proposes again."""
    world = make_group(identities, "bob", "carol")
    carol = world.clients["carol"]
    carol.session, outputs = carol.s.leave()
    (action,) = outputs
    assert isinstance(action, SendHandshake)
    rename(world, "renamed", deliver=False)
    alice = world.clients["alice"]
    before = alice.s
    alice.session, dropped = alice.s.receive_message(action.body, now=NOW)
    assert len(dropped) == 1 and isinstance(dropped[0], ProposalDropped)
    assert alice.s == before


def test_a_commit_of_the_previous_epoch_is_never_processed(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """Bob's Commit lost the epoch to alice's; offered as a message, the retained
    state does not take it."""
    world = make_group(identities, "bob")
    bob = world.clients["bob"]
    bob.session, outputs = bob.s.request(Rename("bob's"), now=NOW, pins=bob.pinned)
    (action,) = outputs
    assert isinstance(action, SendCommit)
    rename(world, "alice's", deliver=False)
    alice = world.clients["alice"]
    before = alice.s
    alice.session, refused = alice.s.receive_message(action.commit, now=NOW)
    assert len(refused) == 1 and isinstance(refused[0], MessageUnreadable)
    assert "Commit" in refused[0].reason
    assert alice.s == before


def test_the_retained_epoch_is_stored_and_still_opens_once(
    identities: dict[str, IdentityKeyPair],
) -> None:
    world = make_group(identities, "bob")
    body = held_message(world, "bob", b"survives a restart")
    rename(world, "renamed")
    alice = world.clients["alice"]
    data = stored(alice.s)
    session = restored(data)
    assert session.previous is not None
    assert stored(session) == data
    after, outputs = session.receive_message(body, now=NOW)
    assert opened(outputs) == [("bob", b"survives a restart")]
    _, again = restored(stored(after)).receive_message(body, now=NOW)
    assert len(again) == 1 and isinstance(again[0], MessageUnreadable)


def test_removal_forgets_the_previous_epoch(identities: dict[str, IdentityKeyPair]) -> None:
    world = make_group(identities, "bob", "carol")
    alice = world.clients["alice"]
    alice.session, outputs = alice.s.request(RemoveMember("carol"), now=NOW, pins=alice.pinned)
    world.run("alice", outputs)
    world.deliver()
    assert world.clients["carol"].s.removed
    assert world.clients["carol"].s.previous is None
