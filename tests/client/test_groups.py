"""Group conversations through the client's group layer (client/groups.py), three
and more users on one in-memory delivery service (tests/client/group_relay.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from securechat.client import vault_keys as K
from securechat.client.conversation import ConversationId
from securechat.client.events import GroupInvited, MessageReceived
from securechat.client.group_keys import KEY_PACKAGE_BATCH, REFRESH_AFTER
from securechat.client.group_sending import GroupSending
from securechat.client.group_store import Effects
from securechat.client.groups import Groups
from securechat.client.vault_store import Vault
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.suite import DEFAULT_SUITE, get_suite
from securechat.errors import (
    ClientError,
    ClientErrorCode,
    ConnectionLost,
    SecureChatError,
    ServerRejected,
)
from securechat.protocol.frames import ClientFrame, FileBegin, ServerFrame
from securechat.protocol.group_frames import GroupCommit
from tests.client.group_relay import (
    DeliveryService,
    Handler,
    Member,
    answer_lost,
    unreachable,
)
from tests.groups.keys import identities


@pytest.fixture
async def world(tmp_path: Path) -> dict[str, Member]:
    ds = DeliveryService()
    keys = identities()
    members = {
        name: Member(tmp_path, name, keys[name], ds) for name in ("alice", "bob", "carol", "dave")
    }
    for member in members.values():
        await member.groups.keys.publish()
    return members


async def receive_all(world: dict[str, Member]) -> None:
    """Until every queue is empty: a delivery may lead to a Commit others must receive."""
    while any(world[name].ds.queues.get(name) for name in world):
        for member in world.values():
            await member.receive()


async def test_create_message_invite_remove(world: dict[str, Member]) -> None:
    """The whole life of a small group: each member sees the same lines, senders named."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    info = await alice.groups.create("team", ["bob"])
    gid = info.group_id
    assert [(m.user, m.admin) for m in info.members] == [("alice", True), ("bob", False)]
    await receive_all(world)
    invited = [e for e in bob.events() if isinstance(e, GroupInvited)]
    assert invited[0].by == "alice" and invited[0].name == "team" and not invited[0].pinned
    assert invited[0].members == ("alice", "bob")

    await alice.groups.sending.send_text(gid, "hello bob")
    await receive_all(world)
    received = [e for e in bob.events() if isinstance(e, MessageReceived)]
    assert [(e.conversation, e.sender, e.text) for e in received] == [
        (ConversationId.group(gid), "alice", "hello bob")
    ]

    await alice.groups.invite(gid, "carol")
    await receive_all(world)
    await carol.groups.sending.send_text(gid, "hi all")
    await receive_all(world)
    assert bob.texts(gid)[-2:] == [("", "alice added carol"), ("carol", "hi all")]

    await alice.groups.remove(gid, "bob")
    await receive_all(world)
    assert {m.user for m in alice.groups.store.members(gid)} == {"alice", "carol"}
    assert bob.texts(gid)[-1] == ("", "alice removed bob")
    assert bob.groups.store.groups() == []
    with pytest.raises(ClientError) as gone:
        await bob.groups.sending.send_text(gid, "still here?")
    assert gone.value.code == ClientErrorCode.NO_GROUP
    assert alice.groups.store.info(gid).epoch == carol.groups.store.info(gid).epoch == 3


async def test_a_removed_member_cannot_read_what_follows(world: dict[str, Member]) -> None:
    """The relay still hands bob the next message: MLS keeps him from opening it."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    gid = (await alice.groups.create("team", ["bob", "carol"])).group_id
    await receive_all(world)
    await alice.groups.remove(gid, "bob")
    await receive_all(world)
    await alice.groups.sending.send_text(gid, "after bob left")
    group = alice.ds.groups[bytes.fromhex(gid)]
    body = alice.ds.stored[-1]
    group.members.add("bob")  # a relay that keeps delivering to him
    alice.ds._enqueue("bob", bytes.fromhex(gid), "message", group.epoch, "alice", "x1", body)
    bob.events()
    await receive_all(world)
    assert "after bob left" not in [text for _, text in bob.texts(gid)]
    assert not [e for e in bob.events() if isinstance(e, MessageReceived)]
    assert carol.texts(gid)[-1] == ("alice", "after bob left")


async def test_a_member_offline_for_five_epochs_catches_up(world: dict[str, Member]) -> None:
    """Dave's queue keeps the Commits before the messages of their epochs: he reads all."""
    alice, bob, dave = world["alice"], world["bob"], world["dave"]
    gid = (await alice.groups.create("team", ["bob", "dave"])).group_id
    await receive_all(world)
    expected = []
    for n in range(5):
        await alice.groups.rename(gid, f"team {n}")
        text = f"message in epoch {n}"
        await alice.groups.sending.send_text(gid, text)
        expected.append(("alice", text))
        await bob.receive()
    assert len(dave.ds.queues["dave"]) == 10
    await dave.receive()
    texts = [t for t in dave.texts(gid) if t[0] == "alice"]
    assert texts == expected
    assert dave.groups.store.info(gid).name == "team 4"
    assert dave.groups.store.info(gid).epoch == alice.groups.store.info(gid).epoch


async def test_two_members_commit_at_once_one_wins_and_the_other_retries(
    world: dict[str, Member],
) -> None:
    """Alice and bob (both admins) change the group in the same epoch: the relay takes
    alice's; bob is told `conflict`, catches up, builds his change again, and it lands."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    gid = (await alice.groups.create("team", ["bob", "carol"])).group_id
    await receive_all(world)
    await alice.groups.make_admin(gid, "bob")
    await receive_all(world)
    await alice.groups.rename(gid, "renamed")
    assert bob.groups.store.info(gid).epoch == alice.groups.store.info(gid).epoch - 1
    await bob.groups.set_topic(gid, "bob's topic")
    assert alice.ds.conflicts == 1
    await receive_all(world)
    infos = [m.groups.store.info(gid) for m in (alice, bob, carol)]
    assert {(i.name, i.topic, i.epoch) for i in infos} == {("renamed", "bob's topic", 4)}
    sessions = [m.groups.store.session(gid) for m in (alice, bob, carol)]
    assert len({s.mls.epoch_authenticator for s in sessions}) == 1


async def test_the_relay_never_holds_the_group_name_or_a_message(world: dict[str, Member]) -> None:
    """Name, topic and text travel inside MLS: nothing the relay stores contains them."""
    alice = world["alice"]
    gid = (await alice.groups.create("secret-project-name", ["bob", "carol"])).group_id
    await alice.groups.set_topic(gid, "a-topic-nobody-sees")
    await alice.groups.sending.send_text(gid, "a-message-text-nobody-sees")
    await receive_all(world)
    assert world["carol"].texts(gid)[-1] == ("alice", "a-message-text-nobody-sees")
    stored = b"".join(alice.ds.stored)
    for secret in (b"secret-project-name", b"a-topic-nobody-sees", b"a-message-text-nobody-sees"):
        assert secret not in stored


async def test_a_restart_between_storing_and_the_ack_loses_and_repeats_nothing(
    world: dict[str, Member],
) -> None:
    """Bob stores a delivery, dies before the ack, and is handed it again: it shows once,
    and the next message still opens (the group state was saved with the message)."""
    alice, bob = world["alice"], world["bob"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    await alice.groups.sending.send_text(gid, "once")
    envelope = bob.ds.queues["bob"][0]
    bob.groups.on_envelope(envelope)  # stored; the ack never left
    bob.restart()
    await bob.receive()  # the relay delivers it again
    await alice.groups.sending.send_text(gid, "twice")
    await bob.receive()
    assert [t for t in bob.texts(gid) if t[0] == "alice"] == [("alice", "once"), ("alice", "twice")]
    assert [e.text for e in bob.events() if isinstance(e, MessageReceived)] == ["twice"]


async def test_a_members_key_change_blocks_sending_until_the_user_decides(
    world: dict[str, Member],
) -> None:
    """Bob's pinned key differs from the one his credential binds: alice's group sends
    nothing (as 1:1 does) until she trusts the new key."""
    alice, bob = world["alice"], world["bob"]
    assert alice.ctx.vault is not None
    gid = (await alice.groups.create("team", ["bob", "carol"])).group_id
    await receive_all(world)
    await alice.groups.sending.send_text(gid, "before the change")
    other = identities()["mallory"].public.der
    alice.ctx.vault.put("pin:bob", other)
    with pytest.raises(ClientError) as blocked:
        await alice.groups.sending.send_text(gid, "to a swapped key?")
    assert blocked.value.code == ClientErrorCode.KEY_CHANGED
    alice.ctx.vault.put("pin:bob", identities()["bob"].public.der)
    await alice.groups.sending.send_text(gid, "keys agree again")
    await receive_all(world)
    assert bob.texts(gid)[-1] == ("alice", "keys agree again")


async def test_a_pin_changed_by_another_process_blocks_sending_too(
    world: dict[str, Member],
) -> None:
    """Alice's CLI pins another key for bob while her TUI runs on the same vault: the
    TUI's group does not send on the strength of what it remembered."""
    alice = world["alice"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    await alice.groups.sending.send_text(gid, "before the change")
    other_process = Vault.unlock(alice.path, alice.password, "alice")
    other_process.put("pin:bob", identities()["mallory"].public.der)
    other_process.close()
    with pytest.raises(ClientError) as blocked:
        await alice.groups.sending.send_text(gid, "to a swapped key?")
    assert blocked.value.code == ClientErrorCode.KEY_CHANGED


async def test_a_message_rewrites_the_session_record_and_not_the_tree(
    world: dict[str, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps a message's cost flat in large groups: the tree (most of a large
    group's bytes) is written when a Commit changes it, not with every message."""
    alice, bob = world["alice"], world["bob"]
    gid = (await alice.groups.create("team", ["bob", "carol"])).group_id
    await receive_all(world)
    written: list[set[str]] = []
    record_all = Vault.record_all

    def spy(self: Vault, records: object, state: dict[str, bytes], **kw: object) -> list[int]:
        written.append(set(state))
        return record_all(self, records, state, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Vault, "record_all", spy)
    await alice.groups.sending.send_text(gid, "one")
    await bob.receive()
    await alice.groups.sending.send_text(gid, "two")
    await bob.receive()
    assert written and all(f"group_tree:{gid}" not in keys for keys in written)
    assert sum(f"group:{gid}" in keys for keys in written) >= 4
    written.clear()
    await alice.groups.remove(gid, "carol")
    assert any(f"group_tree:{gid}" in keys for keys in written)
    await receive_all(world)
    bob.restart()
    await alice.groups.sending.send_text(gid, "after the restart")
    await bob.receive()
    assert bob.texts(gid)[-1] == ("alice", "after the restart")


async def test_a_write_by_another_object_is_never_built_upon(world: dict[str, Member]) -> None:
    """Bob's second `Groups` on the same vault processes a Commit (a new tree) while the
    first still keeps the old tree: a save by the first writes its tree again instead
    of naming a tree the vault no longer holds."""
    alice, bob = world["alice"], world["bob"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    kept = bob.groups.store.session(gid)
    await alice.groups.invite(gid, "carol")
    other = Groups(bob.ctx, bob.trust, request=bob.ds.requester("bob"))  # type: ignore[arg-type]
    for envelope in bob.ds.queues.pop("bob"):
        other.on_envelope(envelope)
    assert len(other.store.session(gid).members) == 3
    bob.groups.store.save(gid, kept, Effects(received=0.0))
    fresh = Groups(bob.ctx, bob.trust, request=bob.ds.requester("bob"))  # type: ignore[arg-type]
    assert fresh.store.session(gid).epoch == kept.epoch


async def test_sign_in_warms_each_groups_tree(world: dict[str, Member]) -> None:
    """After a restart the trees are read at sign-in, so the first Commit does not read
    (here: cannot read) its tree from the vault."""
    alice, bob = world["alice"], world["bob"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    bob.restart()
    bob.groups.store.warm()
    assert bob.ctx.vault is not None
    bob.ctx.vault.delete(f"group_tree:{gid}")
    await alice.groups.rename(gid, "warm")
    await bob.receive()
    assert bob.groups.store.info(gid).name == "warm"


async def test_a_group_whose_tree_record_is_gone_says_so(world: dict[str, Member]) -> None:
    alice = world["alice"]
    assert alice.ctx.vault is not None
    gid = (await alice.groups.create("team", ["bob"])).group_id
    alice.ctx.vault.delete(f"group_tree:{gid}")
    alice.restart()
    with pytest.raises(SecureChatError, match="tree is missing"):
        await alice.groups.sending.send_text(gid, "hello")


async def test_key_packages_are_replaced_before_their_lifetime_runs_out(
    world: dict[str, Member],
) -> None:
    """A month after publishing, bob's next sign-in puts a new batch and last-resort
    package in place of the old ones (they live 90 days: nobody could add him after);
    the private keys of a replaced batch go one refresh later, not at once, for a
    Welcome the relay may still hold."""
    bob = world["bob"]
    vault = bob.ctx.vault
    assert vault is not None
    suite = get_suite(DEFAULT_SUITE)
    first = list(bob.ds.packages["bob"])
    start = int(time.time())
    await bob.groups.keys.publish(now=start + REFRESH_AFTER - 3_600)
    assert bob.ds.packages["bob"] == first
    month = start + REFRESH_AFTER + 60
    await bob.groups.keys.publish(now=month)
    second = list(bob.ds.packages["bob"])
    assert len(second) == KEY_PACKAGE_BATCH and not set(second) & set(first)
    lifetime = KeyPackage.decode(bob.ds.last_resort["bob"]).leaf_node.lifetime
    assert lifetime is not None and lifetime[1] > month + 80 * 24 * 3600
    old_key = K.key_package(KeyPackage.decode(first[0]).ref(suite))
    assert vault.get(old_key) is not None
    await bob.groups.keys.publish(now=month + REFRESH_AFTER)
    assert vault.get(old_key) is None
    assert vault.get(K.key_package(KeyPackage.decode(second[0]).ref(suite))) is not None


async def test_only_admins_change_the_group(world: dict[str, Member]) -> None:
    """Bob is a member, not an admin: the client refuses with a code before any Commit to
    add; renaming and the topic are any member's (groups/policy.py)."""
    alice, bob = world["alice"], world["bob"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    with pytest.raises(ClientError) as refused:
        await bob.groups.invite(gid, "carol")
    assert refused.value.code == ClientErrorCode.NOT_ADMIN
    await bob.groups.rename(gid, "bob's name for it")
    await bob.groups.set_topic(gid, "any member may")
    await receive_all(world)
    assert alice.groups.store.info(gid).name == "bob's name for it"
    assert alice.groups.store.info(gid).topic == "any member may"
    await bob.groups.leave(gid)
    await receive_all(world)
    assert [m.user for m in alice.groups.store.members(gid)] == ["alice"]
    assert alice.texts(gid)[-1] == ("", "bob left")
    assert bob.groups.store.groups() == []


async def test_a_commit_whose_answer_was_lost_is_sent_again_after_reconnecting(
    world: dict[str, Member],
) -> None:
    """The relay took alice's Commit but the answer never arrived: the group waits
    (nothing is sent on a guess) until the reconnect sends the Commit again and the
    relay repeats its answer; the Commit is applied once."""
    alice, bob = world["alice"], world["bob"]
    ds = alice.ds
    gid = (await alice.groups.create("team", ["carol"])).group_id
    handle = ds.handle

    def answer_lost(user: str, frame: object) -> object:
        answer = handle(user, frame)  # type: ignore[arg-type]
        if isinstance(frame, GroupCommit):
            ds.handle = handle  # type: ignore[method-assign]
            raise ConnectionLost("the connection dropped")
        return answer

    ds.handle = answer_lost  # type: ignore[method-assign]
    with pytest.raises(ConnectionLost):
        await alice.groups.invite(gid, "bob")
    with pytest.raises(ClientError) as busy:
        await alice.groups.sending.send_text(gid, "hello?")
    assert busy.value.code == ClientErrorCode.GROUP_BUSY
    await alice.groups.resume()
    await receive_all(world)
    await alice.groups.sending.send_text(gid, "hello bob")
    await receive_all(world)
    assert bob.texts(gid)[-1] == ("alice", "hello bob")
    assert ds.groups[bytes.fromhex(gid)].epoch == 2


def _states(member: Member, group_id: str) -> list[tuple[str, str]]:
    assert member.ctx.vault is not None
    page = member.ctx.vault.messages("#" + group_id, limit=500)
    return [(m.record.text, m.record.state) for m in page if m.record.outgoing]


async def test_messages_written_offline_go_out_in_order_after_reconnecting(
    world: dict[str, Member],
) -> None:
    """The relay is out of reach: alice's messages wait (SENDING) instead of failing, go
    out in order after the reconnect, sealed for the epoch the group is in by then, and a
    new message does not overtake them."""
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    ds = alice.ds
    gid = (await alice.groups.create("team", ["bob", "carol"])).group_id
    await receive_all(world)
    await alice.groups.make_admin(gid, "carol")
    await receive_all(world)

    def alice_unreachable(handle: Handler, user: str, frame: ClientFrame) -> ServerFrame:
        return unreachable(handle, user, frame) if user == "alice" else handle(user, frame)

    with ds.intercepted(alice_unreachable):
        await alice.groups.sending.send_text(gid, "one")
        await alice.groups.sending.send_text(gid, "two")
        assert _states(alice, gid) == [("one", "sending"), ("two", "sending")]
        await carol.groups.rename(gid, "later")
        await bob.receive()
        await carol.receive()
    await alice.receive()
    await alice.groups.sending.send_text(gid, "three")
    await receive_all(world)
    assert [t for t in bob.texts(gid) if t[0] == "alice"][-3:] == [
        ("alice", "one"),
        ("alice", "two"),
        ("alice", "three"),
    ]
    assert _states(alice, gid) == [("one", "sent"), ("two", "sent"), ("three", "sent")]
    assert alice.groups.sending.queued() == []


async def test_a_message_the_relay_was_too_busy_for_goes_out_shortly(
    world: dict[str, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = world["alice"], world["bob"]
    monkeypatch.setattr(GroupSending, "retry_after", 0.05)
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)

    def busy(handle: Handler, user: str, frame: ClientFrame) -> ServerFrame:
        raise ServerRejected("rate_limited", "slow down")

    with alice.ds.intercepted(busy):
        await alice.groups.sending.send_text(gid, "in a moment")
        assert _states(alice, gid) == [("in a moment", "sending")]
    await asyncio.sleep(0.3)
    assert _states(alice, gid) == [("in a moment", "sent")]
    await bob.receive()
    assert bob.texts(gid)[-1] == ("alice", "in a moment")


async def test_a_queued_message_whose_answer_was_lost_is_stored_once(
    world: dict[str, Member],
) -> None:
    """The relay stored alice's message but the answer was lost: after the reconnect it
    goes again under the same eid, and the relay answers for the first copy."""
    alice, bob = world["alice"], world["bob"]
    ds = alice.ds
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    with ds.intercepted(answer_lost):
        await alice.groups.sending.send_text(gid, "only once")
    await alice.groups.resume()
    await receive_all(world)
    assert [t for t in bob.texts(gid) if t[0] == "alice"] == [("alice", "only once")]
    assert _states(alice, gid) == [("only once", "sent")]


async def test_a_queued_message_that_can_no_longer_go_fails_and_says_why(
    world: dict[str, Member],
) -> None:
    alice, bob = world["alice"], world["bob"]
    assert alice.ctx.vault is not None
    ds = alice.ds
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    with ds.intercepted(unreachable):
        await alice.groups.sending.send_text(gid, "to whom?")
    alice.ctx.vault.put("pin:bob", identities()["mallory"].public.der)
    alice.events()
    await alice.groups.resume()
    assert _states(alice, gid) == [("to whom?", "failed")]
    assert any("was not sent" in str(e) for e in alice.events())
    assert not bob.ds.queues.get("bob")


async def test_a_change_the_relay_refuses_for_good_is_dropped_and_the_group_goes_on(
    world: dict[str, Member],
) -> None:
    """The relay refuses alice's add (its Welcome is over the relay's limit): she is told
    why, the group is not left waiting for an answer that will never come, and the next
    message and the next change go through."""
    alice, bob = world["alice"], world["bob"]
    ds = alice.ds
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)

    def welcome_too_large(handle: Handler, user: str, frame: ClientFrame) -> ServerFrame:
        if isinstance(frame, GroupCommit) and frame.welcome is not None:
            raise ServerRejected("too_large", "a Welcome may be at most 512 bytes on this relay")
        return handle(user, frame)

    with (
        ds.intercepted(welcome_too_large),
        pytest.raises(ClientError, match=r"too large for this relay .* nobody was added"),
    ):
        await alice.groups.invite(gid, "carol")
    assert alice.groups.store.session(gid).pending is None
    await alice.groups.sending.send_text(gid, "still here")
    await alice.groups.invite(gid, "dave")
    await receive_all(world)
    assert bob.texts(gid)[-2:] == [("alice", "still here"), ("", "alice added dave")]


async def test_a_welcome_file_the_relay_will_not_take_drops_the_change_too(
    world: dict[str, Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Welcome must go as a file and the relay refuses the upload (the sender's
    storage quota is used up): the add is dropped as a refused Commit is, not left in
    flight for ever."""
    alice = world["alice"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    monkeypatch.setattr(Groups, "welcome_inline_max", 100)

    def quota_used_up(handle: Handler, user: str, frame: ClientFrame) -> ServerFrame:
        if isinstance(frame, FileBegin):
            raise ServerRejected("too_large", "your relay storage quota (100 MB) is used up")
        return handle(user, frame)

    with (
        alice.ds.intercepted(quota_used_up),
        pytest.raises(ClientError, match=r"quota \(100 MB\) is used up.*nobody was added"),
    ):
        await alice.groups.invite(gid, "carol")
    assert alice.groups.store.session(gid).pending is None
    await alice.groups.sending.send_text(gid, "still here")
    await receive_all(world)
    assert world["bob"].texts(gid)[-1] == ("alice", "still here")


async def test_a_commit_the_relay_drops_for_one_member_is_fetched(
    world: dict[str, Member],
) -> None:
    """Dave never gets the first rename's Commit: the next Commit names a later epoch,
    his client fetches what it missed, and he reads what follows."""
    alice, dave = world["alice"], world["dave"]
    gid = (await alice.groups.create("team", ["bob", "dave"])).group_id
    await receive_all(world)
    await alice.groups.rename(gid, "one")
    dropped = dave.ds.queues["dave"].pop()
    assert dropped.kind == "commit"
    await alice.groups.rename(gid, "two")
    await alice.groups.sending.send_text(gid, "after two")
    await receive_all(world)
    assert dave.texts(gid)[-1] == ("alice", "after two")
    assert dave.groups.store.info(gid).name == "two"


async def test_a_replayed_commit_and_a_message_ahead_of_its_commit(
    world: dict[str, Member],
) -> None:
    """A Commit delivered twice changes nothing the second time; a message the relay
    puts before its epoch's Commit is held, the Commit fetched, and the message opened."""
    alice, bob = world["alice"], world["bob"]
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await receive_all(world)
    await alice.groups.rename(gid, "renamed")
    commit = bob.ds.queues["bob"][0]
    await bob.receive()
    bob.ds.queues["bob"].append(msgspec.structs.replace(commit, sid=10_000))
    await bob.receive()
    assert [t for _, t in bob.texts(gid)].count("alice renamed the group to renamed") == 1
    await alice.groups.set_topic(gid, "new topic")
    await alice.groups.sending.send_text(gid, "in the topic's epoch")
    queue = bob.ds.queues["bob"]
    queue.reverse()  # the message first, then its Commit
    await bob.receive()
    assert bob.texts(gid)[-1] == ("alice", "in the topic's epoch")
    assert bob.groups.store.info(gid).topic == "new topic"
