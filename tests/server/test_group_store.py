"""The delivery service's store on SQLite and PostgreSQL: one Commit per epoch, one
body per send, the membership changed with the Commit that changes it."""

from __future__ import annotations

import asyncio

from securechat.server.store import Account, Store
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.records import (
    Fanned,
    NewCommit,
    NewEnvelope,
    NewGroupSend,
    QueueLimits,
)
from securechat.server.store.sqlite import SQLiteStore

GROUP = bytes(range(16))
KEEP = 1000
ROOMY = QueueLimits(max_count=10_000, max_bytes=1 << 28)


def commit(
    epoch: int,
    sender: str = "alice",
    eid: str = "",
    added: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
    create: bool = False,
) -> NewCommit:
    return NewCommit(
        group=GROUP,
        epoch=epoch,
        sender=sender,
        eid=eid or f"c{epoch}-{sender}",
        body=b"commit %d" % epoch,
        welcome=b"welcome" if added else None,
        added=added,
        removed=removed,
        ts=1.0,
        create=create,
    )


def send(epoch: int, eid: str, sender: str = "alice") -> NewGroupSend:
    return NewGroupSend(GROUP, epoch, sender, eid, b"message " + eid.encode(), 2.0)


async def count(store: Store, table: str) -> int:
    query = f"SELECT COUNT(*) FROM {table}"
    if isinstance(store, SQLiteStore):
        return int(store._db.execute(query).fetchone()[0])
    assert isinstance(store, PostgresStore)
    return int(await store._pool.fetchval(query))


async def founded(store: Store, *members: str) -> None:
    """alice's group at epoch 2 with `members` added at epoch 1."""
    for name in ("alice", *members):
        await store.create_account(Account(name, b"h", None, 1.0))
    assert (await store.commit_group(commit(0, create=True), KEEP)).status == "accepted"
    assert (await store.commit_group(commit(1, added=members), KEEP)).status == "accepted"


async def test_a_group_is_created_at_epoch_zero_and_grows_by_commits(store: Store) -> None:
    """The creator is the first member; a Commit's Welcome goes to the added users only."""
    for name in ("alice", "bob", "carol"):
        await store.create_account(Account(name, b"h", None, 1.0))
    created = await store.commit_group(commit(0, create=True), KEEP)
    assert (created.status, created.epoch, created.deliveries) == ("accepted", 0, ())
    grown = await store.commit_group(commit(1, added=("bob", "carol")), KEEP)
    assert grown.status == "accepted"
    assert [(d.kind, d.epoch, d.recipients) for d in grown.deliveries] == [
        ("welcome", 2, ("bob", "carol"))
    ]
    state = await store.group_state(GROUP)
    assert state is not None and (state.epoch, state.members) == (2, {"alice", "bob", "carol"})
    assert await store.memberships(["bob", "nobody"]) == {"bob": 1}
    [welcome] = await store.pending("bob", 0, 10)
    assert (welcome.group, welcome.kind, welcome.epoch, welcome.body) == (
        GROUP,
        "welcome",
        2,
        b"welcome",
    )


async def test_one_send_is_one_body_with_a_delivery_per_other_member(store: Store) -> None:
    """Fan-out stores the body once; a re-send of the same eid adds nothing."""
    await founded(store, "bob", "carol", "dave")
    envelopes, deliveries = await count(store, "envelopes"), await count(store, "deliveries")
    [sent] = await store.group_send_batch([send(2, "m1")], ROOMY)
    assert sent.status == "stored" and sent.fanned is not None
    assert sent.fanned.recipients == ("bob", "carol", "dave")
    assert await count(store, "envelopes") == envelopes + 1
    assert await count(store, "deliveries") == deliveries + 3
    resent = NewGroupSend(GROUP, 2, "alice", "m1", b"sealed again", 3.0)
    [again] = await store.group_send_batch([resent], ROOMY)
    assert await count(store, "deliveries") == deliveries + 3
    # The first copy, announced again to whoever still waits for it (a node may have
    # died between storing and announcing it); bob has it already.
    assert again.status == "resent" and again.body is not None
    assert (again.body.body, again.body.ts) == (b"message m1", 2.0)
    assert again.fanned == Fanned(sent.fanned.sid, ("bob", "carol", "dave"), "message", 2)
    await store.ack("bob", [sent.fanned.sid])
    [third] = await store.group_send_batch([resent], ROOMY)
    assert third.fanned is not None and set(third.fanned.recipients) == {"carol", "dave"}


async def test_two_commits_for_one_epoch_one_wins(store: Store) -> None:
    """Raced on several connections (PostgreSQL): exactly one is accepted, the other is
    told the current epoch; re-sending the winner is accepted again for its epoch."""
    await founded(store, "bob")
    results = await asyncio.gather(
        store.commit_group(commit(2, "alice"), KEEP), store.commit_group(commit(2, "bob"), KEEP)
    )
    assert sorted((r.status, r.epoch) for r in results) == [("accepted", 2), ("conflict", 3)]
    winner = "alice" if results[0].status == "accepted" else "bob"
    assert (await store.commit_group(commit(2, winner), KEEP)).status == "resent"
    commits = await store.group_commits(GROUP, 0, 1 << 20)
    assert [(c.epoch, c.sender) for c in commits] == [(0, "alice"), (1, "alice"), (2, winner)]
    assert [c.epoch for c in await store.group_commits(GROUP, 1, 0)] == [1]


async def test_sends_are_checked_against_the_epoch_and_the_membership(store: Store) -> None:
    """A stale epoch is a conflict with the current one; a non-member is forbidden, and so
    is a member removed by a Commit, which was delivered to them and is their last."""
    await founded(store, "bob", "carol")
    assert [(o.status, o.epoch) for o in await store.group_send_batch([send(1, "old")], ROOMY)] == [
        ("conflict", 2)
    ]
    assert [o.status for o in await store.group_send_batch([send(2, "x", "mallory")], ROOMY)] == [
        "forbidden"
    ]
    removing = await store.commit_group(commit(2, removed=("carol",)), KEEP)
    assert [(d.kind, d.recipients) for d in removing.deliveries] == [("commit", ("bob", "carol"))]
    [after] = await store.group_send_batch([send(3, "after")], ROOMY)
    assert after.fanned is not None and after.fanned.recipients == ("bob",)
    assert [o.status for o in await store.group_send_batch([send(3, "y", "carol")], ROOMY)] == [
        "forbidden"
    ]
    assert [(e.kind, e.epoch) for e in await store.pending("carol", 0, 10)] == [
        ("welcome", 2),
        ("commit", 2),
    ]
    assert (await store.commit_group(commit(3, "carol"), KEEP)).status == "forbidden"


async def test_old_commits_beyond_the_kept_number_are_dropped(store: Store) -> None:
    await founded(store, "bob")
    for epoch in range(2, 6):
        assert (await store.commit_group(commit(epoch), keep=2)).status == "accepted"
    assert [c.epoch for c in await store.group_commits(GROUP, 0, 1 << 20)] == [4, 5]


async def test_deleting_a_conversation_keeps_the_peers_group_messages(store: Store) -> None:
    """delete_conversation drops the one-to-one envelopes between two users only."""
    await founded(store, "bob")
    await store.enqueue([NewEnvelope("bob", "alice", "direct", b"d", 1.0)])
    await store.group_send_batch([send(2, "in-group")], ROOMY)
    await store.delete_conversation("bob", "alice")
    assert [(e.eid, e.kind) for e in await store.pending("bob", 0, 10)] == [
        ("c1-alice~w", "welcome"),
        ("in-group", "message"),
    ]


async def test_a_full_member_gets_no_copy_and_the_others_do(store: Store) -> None:
    """The count rule of a one-to-one send: a member at `max_count` is skipped and named,
    a send of the same batch sees the copies of the one before, and room comes back with
    an acknowledgement. When nobody has room nothing is stored."""
    await founded(store, "bob", "carol", "dave")  # each holds the Welcome
    await store.enqueue([NewEnvelope("dave", "eve", "direct", b"d", 1.0)])
    envelopes, deliveries = await count(store, "envelopes"), await count(store, "deliveries")
    limits = QueueLimits(max_count=2, max_bytes=1 << 20)
    first, second = await store.group_send_batch([send(2, "m1"), send(2, "m2")], limits)
    assert first.status == "stored" and first.fanned is not None
    assert (first.fanned.recipients, first.full) == (("bob", "carol"), ("dave",))
    assert (second.status, second.fanned, second.full) == ("stored", None, ("bob", "carol", "dave"))
    assert await count(store, "envelopes") == envelopes + 1
    assert await count(store, "deliveries") == deliveries + 2
    assert [e.eid for e in await store.pending("dave", 0, 10)] == ["c1-alice~w", "direct"]
    [welcome, _] = await store.pending("bob", 0, 10)
    await store.ack("bob", [welcome.sid])
    [third] = await store.group_send_batch([send(2, "m3")], limits)
    assert third.fanned is not None
    assert (third.fanned.recipients, third.full) == (("bob",), ("carol", "dave"))


async def test_a_member_whose_bytes_would_pass_the_limit_gets_no_copy(store: Store) -> None:
    """The bytes rule of a one-to-one send: a copy that would take the queue past
    `max_bytes` is withheld; one that fills it exactly is not."""
    await founded(store, "bob", "carol")  # a 7-byte Welcome each
    await store.enqueue([NewEnvelope("carol", "eve", "big", b"x" * 11, 1.0)])
    limits = QueueLimits(max_count=100, max_bytes=7 + 10 + 10)  # sends of 10 bytes
    [m1] = await store.group_send_batch([send(2, "m1")], limits)
    assert m1.fanned is not None and (m1.fanned.recipients, m1.full) == (("bob",), ("carol",))
    [m2] = await store.group_send_batch([send(2, "m2")], limits)
    assert m2.fanned is not None and (m2.fanned.recipients, m2.full) == (("bob",), ("carol",))
    [m3] = await store.group_send_batch([send(2, "m3")], limits)
    assert (m3.fanned, m3.full) == (None, ("bob", "carol"))
    assert await store.queue_usage("bob") == (3, 27)


async def test_commits_and_handshake_messages_reach_a_full_member_and_count(
    store: Store,
) -> None:
    """A member who misses a Commit or a proposal loses the group: both pass a full queue,
    and are counted in it, so the next message is still withheld."""
    await founded(store, "bob", "carol")
    full = QueueLimits(max_count=1, max_bytes=1 << 20)  # the Welcome fills each queue
    proposal = NewGroupSend(GROUP, 2, "alice", "p1", b"proposal", 2.0, handshake=True)
    [proposed] = await store.group_send_batch([proposal], full)
    assert proposed.fanned is not None
    assert (proposed.fanned.recipients, proposed.full) == (("bob", "carol"), ())
    committed = await store.commit_group(commit(2), KEEP)
    assert [(d.kind, d.recipients) for d in committed.deliveries] == [("commit", ("bob", "carol"))]
    [message] = await store.group_send_batch([send(3, "m3")], full)
    assert (message.fanned, message.full) == (None, ("bob", "carol"))
    assert [(e.kind, e.eid) for e in await store.pending("carol", 0, 10)] == [
        ("welcome", "c1-alice~w"),
        ("message", "p1"),
        ("commit", "c2-alice"),
    ]
    assert await store.queue_usage("carol") == (3, len(b"welcome" + b"proposal" + b"commit 2"))


async def test_expiry_drops_group_copies_and_their_bodies(store: Store) -> None:
    """`queue_ttl` applies to a group's copies as to any envelope: every undelivered copy
    of an old body goes, and the body with them; a newer one stays."""
    await founded(store, "bob", "carol")  # the Welcome at ts 1.0
    old = NewGroupSend(GROUP, 2, "alice", "old", b"old", 2.0)
    new = NewGroupSend(GROUP, 2, "alice", "new", b"new", 5.0)
    await store.group_send_batch([old, new], ROOMY)
    [_, old_copy, _] = await store.pending("bob", 0, 10)
    await store.ack("bob", [old_copy.sid])
    assert await store.expire_envelopes(before=3.0) == 3  # 2 Welcomes and carol's "old"
    assert await count(store, "envelopes") == 1
    for name in ("bob", "carol"):
        assert [e.eid for e in await store.pending(name, 0, 10)] == ["new"]


async def test_a_body_goes_with_its_last_copy_acknowledged_or_its_holder_deleted(
    store: Store,
) -> None:
    """No group body outlives its deliveries: acknowledged by one member, deleted with the
    other member's account."""
    await founded(store, "bob", "carol")
    envelopes = await count(store, "envelopes")
    [sent] = await store.group_send_batch([send(2, "m1")], ROOMY)
    assert sent.fanned is not None and await count(store, "envelopes") == envelopes + 1
    assert await store.ack("bob", [sent.fanned.sid]) == 1
    assert await count(store, "envelopes") == envelopes + 1
    await store.delete_account("carol")
    # carol's Welcome went with her account too.
    assert await count(store, "envelopes") == envelopes
    assert [e.eid for e in await store.pending("bob", 0, 10)] == ["c1-alice~w"]


async def test_the_queue_sizes_a_send_checks_follow_every_write(store: Store) -> None:
    """SQLite keeps the sizes it counted once (counting walks a queue) and every write
    changes them: acknowledgements, one-to-one envelopes, Commits, deleted conversations,
    expiry. Each send here is checked against what the store holds at that moment."""
    await founded(store, "bob", "carol")  # a Welcome each
    limits = QueueLimits(max_count=2, max_bytes=1 << 20)

    async def withheld(eid: str, epoch: int = 2) -> tuple[str, ...]:
        [sent] = await store.group_send_batch([send(epoch, eid)], limits)
        return sent.full

    async def sids(user: str) -> list[int]:
        return [e.sid for e in await store.pending(user, 0, 10)]

    assert await withheld("m1") == ()
    assert await withheld("m2") == ("bob", "carol")  # the copies of m1 counted
    await store.ack("bob", await sids("bob"))
    assert await withheld("m3") == ("carol",)
    await store.enqueue([NewEnvelope("bob", "eve", "direct", b"d", 2.0)])
    assert await withheld("m4") == ("bob", "carol")
    await store.delete_conversation("bob", "eve")
    assert await withheld("m5") == ("carol",)
    await store.ack("bob", await sids("bob"))
    await store.commit_group(commit(2), KEEP)  # bob holds the Commit
    assert await withheld("m6", epoch=3) == ("carol",)
    assert await store.queue_usage("bob") == (2, len(b"commit 2" + b"message m6"))
    await store.expire_envelopes(before=10.0)
    assert await withheld("m7", epoch=3) == ()
