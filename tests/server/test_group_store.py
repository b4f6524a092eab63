"""The delivery service's store on SQLite and PostgreSQL: one Commit per epoch, one
body per send, the membership changed with the Commit that changes it."""

from __future__ import annotations

import asyncio

from securechat.server.store import Account, Store
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.records import NewCommit, NewGroupSend
from securechat.server.store.sqlite import SQLiteStore

GROUP = bytes(range(16))
KEEP = 1000


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
    [sent] = await store.group_send_batch([send(2, "m1")])
    assert sent.status == "stored" and sent.fanned is not None
    assert sent.fanned.recipients == ("bob", "carol", "dave")
    assert await count(store, "envelopes") == envelopes + 1
    assert await count(store, "deliveries") == deliveries + 3
    [again] = await store.group_send_batch([send(2, "m1")])
    assert (again.status, again.fanned) == ("resent", None)
    assert await count(store, "deliveries") == deliveries + 3


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
    assert [(o.status, o.epoch) for o in await store.group_send_batch([send(1, "old")])] == [
        ("conflict", 2)
    ]
    assert [o.status for o in await store.group_send_batch([send(2, "x", "mallory")])] == [
        "forbidden"
    ]
    removing = await store.commit_group(commit(2, removed=("carol",)), KEEP)
    assert [(d.kind, d.recipients) for d in removing.deliveries] == [("commit", ("bob", "carol"))]
    [after] = await store.group_send_batch([send(3, "after")])
    assert after.fanned is not None and after.fanned.recipients == ("bob",)
    assert [o.status for o in await store.group_send_batch([send(3, "y", "carol")])] == [
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
