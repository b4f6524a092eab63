"""MLS groups in PostgreSQL, shared by relay nodes: epochs, members, Commits, fan-out.

The epoch check and increment of a Commit are one statement (`UPDATE ... WHERE
epoch = $n RETURNING`), so two nodes never accept two Commits for one epoch. A
send reads its group's row `FOR SHARE` in the transaction that writes its
deliveries: a Commit's UPDATE waits for that transaction, and a send that comes
after the UPDATE waits for the Commit's transaction, then sees the new epoch and
is refused. So every send of epoch n+1 is written after the Commit of n, and
takes a later sid in every inbox. The same transaction counts the members' queues
(what every node committed) before it writes a copy to any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import (
    CommitOutcome,
    Fanned,
    GroupBody,
    GroupKind,
    GroupSendOutcome,
    GroupState,
    NewCommit,
    NewGroupSend,
    QueueLimits,
    StoredCommit,
)
from securechat.server.store.schema import DEFAULT_DEVICE

_FAN_OUT = """
WITH body AS (
    INSERT INTO envelopes (sender, eid, body, ts, grp, kind, epoch)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sender, eid) DO NOTHING
    RETURNING sid
), delivered AS (
    INSERT INTO deliveries (username, device, sid, size)
    SELECT x.username, $9::integer, body.sid, octet_length($3::bytea)
    FROM body, unnest($8::text[]) AS x(username)
)
SELECT sid FROM body
"""
"""One body, one delivery per recipient: one round trip."""

_OTHER_MEMBERS = (
    "SELECT username FROM group_members WHERE grp = $1 AND username <> $2 ORDER BY username"
)
_QUEUE_USAGE = (
    "SELECT username, COUNT(*), SUM(size) FROM deliveries"
    " WHERE username = ANY($1::text[]) AND device = $2 GROUP BY username"
)


class _EnvelopeIdTaken(Exception):
    """The sender's eid names other data still queued: the transaction is rolled back."""


async def _fan_out(
    conn: Any, body: GroupBody, kind: GroupKind, epoch: int, recipients: Sequence[str]
) -> Fanned | None:
    """One body row, one delivery row per recipient; nothing without a recipient."""
    if not recipients:
        return None
    sid = await conn.fetchval(
        _FAN_OUT,
        body.sender,
        body.eid,
        body.body,
        body.ts,
        body.group,
        kind,
        epoch,
        list(recipients),
        DEFAULT_DEVICE,
    )
    if sid is None:
        raise _EnvelopeIdTaken
    return Fanned(int(sid), tuple(recipients), kind, epoch)


def _resent(
    send: NewGroupSend, epoch: int, sid: int, waiting: list[str], copy: Sequence[Any]
) -> GroupSendOutcome:
    body = GroupBody(send.group, send.sender, send.eid, bytes(copy[0]), float(copy[1]))
    fanned = Fanned(sid, tuple(waiting), "message", int(copy[2])) if waiting else None
    return GroupSendOutcome("resent", epoch, fanned, body=body)


class PostgresGroups(PostgresBase):
    async def group_state(self, group: bytes) -> GroupState | None:
        async with self._conn() as conn:
            epoch = await conn.fetchval("SELECT epoch FROM mls_groups WHERE grp = $1", group)
            if epoch is None:
                return None
            rows = await conn.fetch("SELECT username FROM group_members WHERE grp = $1", group)
        return GroupState(int(epoch), frozenset(row[0] for row in rows))

    async def memberships(self, usernames: Sequence[str]) -> dict[str, int]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT a.username, (SELECT COUNT(*) FROM group_members m"
                " WHERE m.username = a.username) FROM accounts a"
                " WHERE a.username = ANY($1::text[])",
                list(dict.fromkeys(usernames)),
            )
        return {name: int(count) for name, count in rows}

    async def commit_group(self, commit: NewCommit, keep: int) -> CommitOutcome:
        try:
            async with self._conn(transaction=True) as conn:
                return await self._commit_group(conn, commit, keep)
        except _EnvelopeIdTaken:
            return CommitOutcome("eid_taken", commit.epoch)

    async def _commit_group(self, conn: Any, commit: NewCommit, keep: int) -> CommitOutcome:
        group, sender = commit.group, commit.sender
        again = await conn.fetchval(
            "SELECT epoch FROM group_commits WHERE grp = $1 AND sender = $2 AND eid = $3",
            group,
            sender,
            commit.eid,
        )
        if again is not None:
            return CommitOutcome("resent", int(again))
        if commit.create:
            created = await conn.fetchval(
                "INSERT INTO mls_groups VALUES ($1, 0, $2) ON CONFLICT DO NOTHING RETURNING 1",
                group,
                commit.ts,
            )
            if created:
                await conn.execute("INSERT INTO group_members VALUES ($1, $2)", group, sender)
        # The check and the increment in ONE statement: across nodes, one Commit per epoch.
        epoch = await conn.fetchval(
            "UPDATE mls_groups SET epoch = epoch + 1 WHERE grp = $1 AND epoch = $2 AND EXISTS"
            " (SELECT 1 FROM group_members WHERE grp = $1 AND username = $3) RETURNING epoch",
            group,
            commit.epoch,
            sender,
        )
        if epoch is None:
            row = await conn.fetchrow(
                "SELECT epoch, EXISTS (SELECT 1 FROM group_members WHERE grp = $1"
                " AND username = $2) FROM mls_groups WHERE grp = $1",
                group,
                sender,
            )
            if row is None or not row[1]:
                return CommitOutcome("forbidden", 0)
            return CommitOutcome("conflict", int(row[0]))
        epoch = commit.epoch
        await conn.execute(
            "INSERT INTO group_commits VALUES ($1, $2, $3, $4, $5, $6)",
            group,
            epoch,
            sender,
            commit.eid,
            commit.body,
            commit.ts,
        )
        await conn.execute(
            "DELETE FROM group_commits WHERE grp = $1 AND epoch <= $2", group, epoch - keep
        )
        others = [row[0] for row in await conn.fetch(_OTHER_MEMBERS, group, sender)]
        deliveries = [await _fan_out(conn, commit.commit_body(), "commit", epoch, others)]
        welcome = commit.welcome_body()
        if welcome is not None and commit.added:
            deliveries.append(
                await _fan_out(conn, welcome, commit.welcome_kind, epoch + 1, commit.added)
            )
        await conn.execute(
            "DELETE FROM group_members WHERE grp = $1 AND username = ANY($2::text[])",
            group,
            list(commit.removed),
        )
        await conn.execute(
            "INSERT INTO group_members SELECT $1, x FROM unnest($2::text[]) AS x"
            " ON CONFLICT DO NOTHING",
            group,
            list(commit.added),
        )
        return CommitOutcome("accepted", epoch, tuple(d for d in deliveries if d is not None))

    async def group_send_batch(
        self, sends: Sequence[NewGroupSend], limits: QueueLimits
    ) -> list[GroupSendOutcome]:
        if not sends:
            return []
        usage: dict[str, tuple[int, int]] = {}
        async with self._conn(transaction=True) as conn:
            return [await self._group_send(conn, send, limits, usage) for send in sends]

    async def _group_send(
        self,
        conn: Any,
        send: NewGroupSend,
        limits: QueueLimits,
        usage: dict[str, tuple[int, int]],
    ) -> GroupSendOutcome:
        # FOR SHARE: a Commit of this group waits until these deliveries are committed.
        row = await conn.fetchrow(
            "SELECT epoch, EXISTS (SELECT 1 FROM group_members WHERE grp = $1"
            " AND username = $2) FROM mls_groups WHERE grp = $1 FOR SHARE",
            send.group,
            send.sender,
        )
        if row is None or not row[1]:
            return GroupSendOutcome("forbidden")
        epoch = int(row[0])
        if epoch != send.epoch:
            return GroupSendOutcome("conflict", epoch)
        queued = await conn.fetchrow(
            "SELECT grp, sid, body, ts, epoch FROM envelopes WHERE sender = $1 AND eid = $2",
            send.sender,
            send.eid,
        )
        if queued is not None:
            if queued[0] != send.group:
                return GroupSendOutcome("eid_taken", epoch)
            sid = int(queued[1])
            waiting = await conn.fetch("SELECT username FROM deliveries WHERE sid = $1", sid)
            return _resent(send, epoch, sid, [r[0] for r in waiting], queued[2:])
        others = [row[0] for row in await conn.fetch(_OTHER_MEMBERS, send.group, send.sender)]
        unread = [name for name in others if name not in usage]
        if unread:
            # What every node committed so far, read in the transaction that adds the copies;
            # once per member and write batch, which then counts its own copies.
            usage.update(dict.fromkeys(unread, (0, 0)))
            for name, count, size in await conn.fetch(_QUEUE_USAGE, unread, DEFAULT_DEVICE):
                usage[name] = (int(count), int(size))
        recipients, full = limits.share(others, usage, send)
        fanned = await _fan_out(conn, send.stored_body(), "message", epoch, recipients)
        for name in recipients:  # the batch's later sends count these copies too
            count, size = usage[name]
            usage[name] = (count + 1, size + len(send.body))
        return GroupSendOutcome("stored", epoch, fanned, full)

    async def group_commits(self, group: bytes, since: int, max_bytes: int) -> list[StoredCommit]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT epoch, sender, body FROM (SELECT epoch, sender, body,"
                " SUM(octet_length(body)) OVER (ORDER BY epoch) AS upto,"
                " ROW_NUMBER() OVER (ORDER BY epoch) AS n"
                " FROM group_commits WHERE grp = $1 AND epoch >= $2) c"
                " WHERE n = 1 OR upto <= $3 ORDER BY epoch",
                group,
                since,
                max_bytes,
            )
        return [StoredCommit(int(epoch), sender, bytes(body)) for epoch, sender, body in rows]
