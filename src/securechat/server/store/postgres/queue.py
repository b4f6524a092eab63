"""Inboxes and contacts in PostgreSQL: the relay's hot path.

As on SQLite, a body is one row of `envelopes` and each delivery to an inbox
a row of `deliveries`; the `deliveries_done` trigger drops a body with its
last delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import NewEnvelope, StoredEnvelope
from securechat.server.store.schema import DEFAULT_DEVICE

_ENVELOPE = (
    "SELECT d.sid, d.username, e.sender, e.eid, e.body, e.ts FROM deliveries d"
    " JOIN envelopes e ON e.sid = d.sid"
)
"""A delivery as the recipient gets it: its inbox row joined with the body."""


class PostgresQueue(PostgresBase):
    async def reserve_sid(self, sender: str, eid: str) -> None:
        """Nodes share the sequence: a sid is known only once the envelope is stored."""
        return None

    async def enqueue(self, envelopes: Sequence[NewEnvelope]) -> list[int]:
        async with self._conn(transaction=True) as conn:
            return [sid for sid, _ in await self._enqueue(conn, envelopes)]

    async def write_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
        acknowledged: Sequence[NewEnvelope] = (),
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        # Nothing is acknowledged before its batch here: reserve_sid gives no sids.
        async with self._conn(transaction=True) as conn:
            stored = await self._enqueue(conn, envelopes) if envelopes else []
            freed = {
                recipient: await self._ack(conn, recipient, ids) for recipient, ids in acks.items()
            }
        return stored, freed

    async def _enqueue(self, conn: Any, envelopes: Sequence[NewEnvelope]) -> list[tuple[int, bool]]:
        stored: list[tuple[int, bool]] = []
        for env in envelopes:
            sid = await conn.fetchval(
                "WITH body AS (INSERT INTO envelopes (sender, eid, body, ts)"
                " VALUES ($3, $4, $5, $6) ON CONFLICT (sender, eid) DO NOTHING RETURNING sid)"
                " INSERT INTO deliveries (username, device, sid, size)"
                " SELECT $1::text, $2::integer, sid, $7::integer FROM body RETURNING sid",
                env.recipient,
                DEFAULT_DEVICE,
                env.sender,
                env.eid,
                env.body,
                env.ts,
                len(env.body),
            )
            fresh = sid is not None
            if not fresh:
                sid = await conn.fetchval(
                    "SELECT d.sid FROM envelopes e JOIN deliveries d ON d.sid = e.sid"
                    " WHERE e.sender = $1 AND e.eid = $2 AND d.username = $3 AND d.device = $4",
                    env.sender,
                    env.eid,
                    env.recipient,
                    DEFAULT_DEVICE,
                )
            stored.append((int(sid or 0), fresh))
        pairs = {(e.sender, e.recipient) for e in envelopes}
        pairs |= {(b, a) for a, b in pairs}
        await conn.executemany(
            "INSERT INTO contacts VALUES ($1, $2) ON CONFLICT DO NOTHING", sorted(pairs)
        )
        return stored

    async def _ack(self, conn: Any, recipient: str, sids: Sequence[int]) -> tuple[int, int]:
        rows = await conn.fetch(
            "DELETE FROM deliveries WHERE username = $1 AND device = $2"
            " AND sid = ANY($3::bigint[]) RETURNING size",
            recipient,
            DEFAULT_DEVICE,
            list(sids),
        )
        return len(rows), sum(int(row[0]) for row in rows)

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
                "DELETE FROM deliveries WHERE (username = $1"
                " AND sid IN (SELECT sid FROM envelopes WHERE sender = $2))"
                " OR (username = $2 AND sid IN (SELECT sid FROM envelopes WHERE sender = $1))"
                " RETURNING sid",
                user,
                peer,
            )
            await conn.execute(
                "DELETE FROM contacts WHERE (a = $1 AND b = $2) OR (a = $2 AND b = $1)", user, peer
            )
        return len(rows)

    async def contacts_of(self, username: str) -> set[str]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT b FROM contacts WHERE a = $1", username)
        return {row[0] for row in rows}
