"""Inboxes and presence watches in PostgreSQL: the relay's hot path.

As on SQLite, a body is one row of `envelopes` and each delivery to an inbox
a row of `deliveries`; the `deliveries_done` trigger drops a body with its
last delivery. A row `(a, b)` of `contacts` says that b follows a's presence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import NewEnvelope, StoredEnvelope
from securechat.server.store.schema import DEFAULT_DEVICE

_ENVELOPE = (
    "SELECT d.sid, d.username, e.sender, e.eid, e.body, e.ts, e.grp, e.kind, e.epoch"
    " FROM deliveries d"
    " JOIN envelopes e ON e.sid = d.sid"
)
"""A delivery as the recipient gets it: its inbox row joined with the body (and, for a
group's, the group, kind and epoch)."""

_NEW, _QUEUED, _FREED = 1, 2, 3
"""The first column of `_WRITE_BATCH`'s rows: a body inserted (sid, sender, eid), a
re-send's queued sid (sid, its index from 1), a delivery acknowledged (size, user)."""

_WRITE_BATCH = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::float8[],
        $6::bool[]) WITH ORDINALITY AS x(recipient, sender, eid, body, ts, first, i)
), new AS (
    INSERT INTO envelopes (sender, eid, body, ts)
    SELECT sender, eid, body, ts FROM input WHERE first ORDER BY i
    ON CONFLICT (sender, eid) DO NOTHING
    RETURNING sid, sender, eid
), delivered AS (
    INSERT INTO deliveries (username, device, sid, size)
    SELECT x.recipient, $7::integer, n.sid, octet_length(x.body)
    FROM new n JOIN input x ON x.first AND x.sender = n.sender AND x.eid = n.eid
), queued AS (
    SELECT x.i, d.sid FROM input x
    JOIN envelopes e ON e.sender = x.sender AND e.eid = x.eid
    JOIN deliveries d ON d.sid = e.sid AND d.username = x.recipient AND d.device = $7
), freed AS (
    DELETE FROM deliveries d USING unnest($8::text[], $9::bigint[]) AS x(username, sid)
    WHERE d.username = x.username AND d.device = $7 AND d.sid = x.sid
    RETURNING d.username, d.size
)
SELECT 1, sid, NULL::bigint, sender, eid FROM new
UNION ALL SELECT 2, sid, i, NULL, NULL FROM queued
UNION ALL SELECT 3, NULL, size, username, NULL FROM freed
"""
"""`write_batch` in one statement. Every part sees the database as it was before the
statement: `queued` finds a re-send's first copy even if `freed` deletes it (a re-send
answered before the acknowledgement, as one transaction of statements did)."""


class PostgresQueue(PostgresBase):
    async def reserve_sid(self, sender: str, eid: str) -> None:
        """Nodes share the sequence: a sid is known only once the envelope is stored."""
        return None

    async def enqueue(self, envelopes: Sequence[NewEnvelope]) -> list[int]:
        stored, _ = await self.write_batch(envelopes, {})
        return [sid for sid, _ in stored]

    async def write_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        """The write batch as ONE statement: one round trip, one implicit transaction.

        Bodies, deliveries and acknowledged deliveries travel as arrays
        (`unnest`) into data-modifying CTEs, instead of a statement per
        envelope and recipient inside BEGIN ... COMMIT: a round trip each
        was most of a PostgreSQL node's time per message.
        """
        # Nothing is acknowledged before its batch here: reserve_sid gives no sids.
        gone = [(recipient, sid) for recipient, sids in acks.items() for sid in sids]
        if not envelopes and not gone:
            return [], {recipient: (0, 0) for recipient in acks}
        # Only the first copy of a (sender, eid) is inserted; the others are re-sends.
        first: dict[tuple[str, str], int] = {}
        for i, env in enumerate(envelopes):
            first.setdefault((env.sender, env.eid), i)
        async with self._conn() as conn:
            rows = await conn.fetch(
                _WRITE_BATCH,
                [e.recipient for e in envelopes],
                [e.sender for e in envelopes],
                [e.eid for e in envelopes],
                [e.body for e in envelopes],
                [e.ts for e in envelopes],
                [first[e.sender, e.eid] == i for i, e in enumerate(envelopes)],
                DEFAULT_DEVICE,
                [recipient for recipient, _ in gone],
                [sid for _, sid in gone],
            )
            inserted: dict[tuple[str, str], int] = {}
            queued: dict[int, int] = {}
            freed = {recipient: (0, 0) for recipient in acks}
            for kind, sid, number, name, eid in rows:
                if kind == _NEW:
                    inserted[name, eid] = int(sid)
                elif kind == _QUEUED:
                    queued[int(number) - 1] = int(sid)
                else:
                    count, size = freed[name]
                    freed[name] = (count + 1, size + int(number))
            stored: list[tuple[int, bool]] = []
            unknown: list[int] = []
            for i, env in enumerate(envelopes):
                key = (env.sender, env.eid)
                sid = inserted.get(key)
                if sid is not None:
                    if first[key] == i:
                        stored.append((sid, True))
                    else:
                        same = envelopes[first[key]].recipient == env.recipient
                        stored.append((sid if same else 0, False))
                    continue
                stored.append((queued.get(i, 0), False))
                if i not in queued:
                    unknown.append(i)
            if unknown:
                await self._queued_since(conn, envelopes, unknown, stored)
        return stored, freed

    @staticmethod
    async def _queued_since(
        conn: Any,
        envelopes: Sequence[NewEnvelope],
        unknown: list[int],
        stored: list[tuple[int, bool]],
    ) -> None:
        """Sids of re-sends whose first copy the batch's snapshot did not show: another
        node stored it meanwhile. Rare, and usually none is found: the id went to another
        recipient (sid 0, a conflict)."""
        rows = await conn.fetch(
            "SELECT x.i, d.sid FROM unnest($1::int[], $2::text[], $3::text[], $4::text[])"
            " AS x(i, sender, eid, recipient) JOIN envelopes e"
            " ON e.sender = x.sender AND e.eid = x.eid"
            " JOIN deliveries d ON d.sid = e.sid AND d.username = x.recipient AND d.device = $5",
            unknown,
            [envelopes[i].sender for i in unknown],
            [envelopes[i].eid for i in unknown],
            [envelopes[i].recipient for i in unknown],
            DEFAULT_DEVICE,
        )
        for i, sid in rows:
            stored[i] = (int(sid), False)

    async def pending(self, recipient: str, after_sid: int, limit: int) -> list[StoredEnvelope]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"{_ENVELOPE} WHERE d.username = $1 AND d.device = $2 AND d.sid > $3"
                " ORDER BY d.sid LIMIT $4",
                recipient,
                DEFAULT_DEVICE,
                after_sid,
                limit,
            )
        return [StoredEnvelope(*row) for row in rows]

    async def envelopes(self, recipient: str, sids: Sequence[int]) -> list[StoredEnvelope]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"{_ENVELOPE} WHERE d.username = $1 AND d.device = $2"
                " AND d.sid = ANY($3::bigint[]) ORDER BY d.sid",
                recipient,
                DEFAULT_DEVICE,
                list(sids),
            )
        return [StoredEnvelope(*row) for row in rows]

    async def ack(self, recipient: str, sids: Sequence[int]) -> int:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM deliveries WHERE username = $1 AND device = $2"
                " AND sid = ANY($3::bigint[]) RETURNING sid",
                recipient,
                DEFAULT_DEVICE,
                list(sids),
            )
        return len(rows)

    async def queue_usage(self, recipient: str) -> tuple[int, int] | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = $1),"
                " COUNT(*), COALESCE(SUM(size), 0) FROM deliveries"
                " WHERE username = $1 AND device = $2",
                recipient,
                DEFAULT_DEVICE,
            )
        return (int(row[1]), int(row[2])) if row[0] else None

    async def expire_envelopes(self, before: float) -> int:
        """Deliveries of old bodies; the bodies follow, and so does a body whose last two
        deliveries two nodes deleted at once (each trigger saw the other's row)."""
        async with self._conn(transaction=True) as conn:
            rows = await conn.fetch(
                "DELETE FROM deliveries WHERE sid IN (SELECT sid FROM envelopes WHERE ts < $1)"
                " RETURNING sid",
                before,
            )
            await conn.execute("DELETE FROM envelopes WHERE ts < $1", before)
        return len(rows)

    async def purge_queue(self, recipient: str) -> int:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM deliveries WHERE username = $1 AND device = $2 RETURNING sid",
                recipient,
                DEFAULT_DEVICE,
            )
        return len(rows)

    async def delete_conversation(self, user: str, peer: str) -> int:
        async with self._conn(transaction=True) as conn:
            rows = await conn.fetch(
                "DELETE FROM deliveries WHERE (username = $1 AND sid IN"
                " (SELECT sid FROM envelopes WHERE sender = $2 AND grp IS NULL))"
                " OR (username = $2 AND sid IN"
                " (SELECT sid FROM envelopes WHERE sender = $1 AND grp IS NULL))"
                " RETURNING sid",
                user,
                peer,
            )
            await conn.execute("DELETE FROM contacts WHERE a = $1 AND b = $2", peer, user)
        return len(rows)

    async def record_watches(self, watcher: str, users: Sequence[str]) -> list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "INSERT INTO contacts (a, b)"
                " SELECT username, $1 FROM accounts"
                " WHERE username = ANY($2::text[]) AND username <> $1"
                " AND EXISTS (SELECT 1 FROM accounts WHERE username = $1)"
                " ORDER BY username ON CONFLICT DO NOTHING RETURNING a",
                watcher,
                list(users),
            )
        return [row[0] for row in rows]

    async def watchers_of(self, username: str) -> set[str]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT b FROM contacts WHERE a = $1", username)
        return {row[0] for row in rows}
