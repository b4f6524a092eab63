"""Inboxes and presence watches in the SQLite file: the relay's hot path.

An envelope's body is one row of `envelopes`, keyed by its sid; its delivery
to an inbox is a row of `deliveries` (`schema.py`). Acknowledging deletes
the delivery, and the `deliveries_done` trigger the body with the last one.
A row `(a, b)` of `contacts` says that b follows a's presence; no envelope
writes one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from securechat.server.store.records import NewEnvelope, StoredEnvelope
from securechat.server.store.schema import DEFAULT_DEVICE
from securechat.server.store.sqlite.base import GUARD, SQLiteBase

INBOXES_KEPT = 16_384
"""Inboxes whose size `_inbox_usage` keeps (about 3 MiB); emptied when full."""

INBOXES_RECOUNTED = 60.0
"""Seconds after which the kept sizes are counted again: every write here keeps them
exact, and this bounds the error of one that would not."""

SID_BLOCK = 1024
"""Sids claimed on disk at a time: one small write per this many envelopes."""

_ENVELOPE = (
    "SELECT d.sid, d.username, e.sender, e.eid, e.body, e.ts, e.grp, e.kind, e.epoch"
    " FROM deliveries d"
    " JOIN envelopes e ON e.sid = d.sid"
)
"""A delivery as the recipient gets it: its inbox row joined with the body (and, for a
group's, the group, kind and epoch)."""


class SQLiteQueue(SQLiteBase):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        with GUARD:
            self._last_sid: int = self._db.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'),"
                " 0), COALESCE((SELECT MAX(sid) FROM envelopes), 0))"
            ).fetchone()[0]
        self._reserved_until = self._last_sid
        """Sids up to here are recorded as used in `sqlite_sequence`."""
        self._inboxes: dict[str, tuple[int, int]] = {}
        """(count, bytes) of the inboxes group sends checked, kept by every write of
        deliveries here (this process is the file's only writer): counting walks the
        queue, and a group with members away for long would walk all of theirs for every
        message (21 ms a batch for 100 members holding 2,000 envelopes each)."""
        self._inboxes_since = time.monotonic()

    def _rolled_back(self) -> None:
        super()._rolled_back()
        self._inboxes.clear()
        # A sid block reserved in this transaction is not on disk: reserve again.
        self._reserved_until = min(self._reserved_until, self._last_sid)

    def _user_deleted(self, username: str) -> None:
        super()._user_deleted(username)
        self._inboxes.clear()  # what the user sent left the other inboxes too

    async def enqueue(self, envelopes: Sequence[NewEnvelope]) -> list[int]:
        with self._tx() as db:
            stored = self._enqueue(db, envelopes)
        return [sid for sid, _ in stored]

    async def reserve_sid(self, sender: str, eid: str) -> int | None:
        """This process is the database's only writer, so a counter hands sids out.

        The counter claims `SID_BLOCK` sids at a time in `sqlite_sequence`, so a sid
        whose envelope was never written (acknowledged before its write batch) is not
        handed out again after a restart either.
        """
        with GUARD:
            queued = self._db.execute(
                "SELECT 1 FROM envelopes WHERE sender = ? AND eid = ?", (sender, eid)
            ).fetchone()
        if queued:
            return None
        if self._last_sid >= self._reserved_until:
            with self._tx() as db:
                self._reserve_sids(db)
        self._last_sid += 1
        return self._last_sid

    def _inbox_usage(
        self, db: sqlite3.Connection, names: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """(count, bytes) of these inboxes, counted in this transaction the first time."""
        unread = [name for name in names if name not in self._inboxes]
        if not unread:
            return self._inboxes
        if len(self._inboxes) + len(unread) > INBOXES_KEPT:
            self._inboxes.clear()
            unread = list(dict.fromkeys(names))
        counted = dict.fromkeys(unread, (0, 0))
        for name, count, size in db.execute(
            "SELECT username, COUNT(*), SUM(size) FROM deliveries"
            " WHERE username IN (SELECT value FROM json_each(?)) AND device = ?"
            " GROUP BY username",
            (json.dumps(unread), DEFAULT_DEVICE),
        ):
            counted[name] = (int(count), int(size))
        self._inboxes.update(counted)
        return self._inboxes

    def _counted(self, deliveries: Iterable[tuple[str, int]]) -> None:
        """These (inbox, bytes) deliveries were written."""
        inboxes = self._inboxes
        for name, size in deliveries:
            kept = inboxes.get(name)
            if kept is not None:
                inboxes[name] = (kept[0] + 1, kept[1] + size)

    def _take_sid(self, db: sqlite3.Connection) -> int:
        """A sid inside a transaction already open on `db`."""
        if self._last_sid >= self._reserved_until:
            self._reserve_sids(db)
        self._last_sid += 1
        return self._last_sid

    def _reserve_sids(self, db: sqlite3.Connection) -> None:
        """Claims the next block, after whatever another process on this file claimed."""
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'").fetchone()
        self._last_sid = max(self._last_sid, row[0] if row else 0)
        self._reserved_until = self._last_sid + SID_BLOCK
        updated = db.execute(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = 'envelopes'", (self._reserved_until,)
        )
        if updated.rowcount == 0:
            db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('envelopes', ?)",
                (self._reserved_until,),
            )

    async def write_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        if not envelopes and not acks:
            return [], {}
        with self._tx() as db:
            stored = self._enqueue(db, envelopes) if envelopes else []
            freed = {recipient: self._ack(db, recipient, ids) for recipient, ids in acks.items()}
        return stored, freed

    def _enqueue(
        self, db: sqlite3.Connection, envelopes: Sequence[NewEnvelope]
    ) -> list[tuple[int, bool]]:
        """One `executemany` for the bodies, one for the deliveries: a statement per envelope
        was a sixth of the store's cost per envelope under a flood (bench/README.md)."""
        rows = [
            (
                self._take_sid(db) if env.sid is None else env.sid,
                env.sender,
                env.eid,
                env.body,
                env.ts,
            )
            for env in envelopes
        ]
        # Only a repeated (sender, eid) is ignored: a sid clash must fail loudly.
        inserted = db.executemany(
            "INSERT INTO envelopes (sid, sender, eid, body, ts)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (sender, eid) DO NOTHING",
            rows,
        ).rowcount
        if inserted == len(rows):
            stored = [(row[0], True) for row in rows]
            deliveries = [
                (env.recipient, DEFAULT_DEVICE, row[0], len(env.body))
                for env, row in zip(envelopes, rows, strict=True)
            ]
        else:
            stored, deliveries = self._sort_out_resends(db, envelopes, rows)
        db.executemany("INSERT INTO deliveries VALUES (?, ?, ?, ?)", deliveries)
        if self._inboxes:
            self._counted((recipient, size) for recipient, _, _, size in deliveries)
        return stored

    def _sort_out_resends(
        self,
        db: sqlite3.Connection,
        envelopes: Sequence[NewEnvelope],
        rows: Sequence[tuple[int, str, str, bytes, float]],
    ) -> tuple[list[tuple[int, bool]], list[tuple[str, int, int, int]]]:
        """Which bodies the batch wrote (the row holds the sid it tried) and which were
        re-sends of a (sender, eid) stored before or earlier in the batch."""
        stored: list[tuple[int, bool]] = []
        deliveries: list[tuple[str, int, int, int]] = []
        # (sender, eid) -> (sid, recipient) of the bodies written by this batch so far.
        written: dict[tuple[str, str], tuple[int, str]] = {}
        for env, (sid, *_) in zip(envelopes, rows, strict=True):
            held = db.execute(
                "SELECT sid FROM envelopes WHERE sender = ? AND eid = ?", (env.sender, env.eid)
            ).fetchone()
            if held[0] == sid and (env.sender, env.eid) not in written:
                stored.append((sid, True))
                written[env.sender, env.eid] = (sid, env.recipient)
                deliveries.append((env.recipient, DEFAULT_DEVICE, sid, len(env.body)))
            else:
                stored.append((self._queued_sid(db, env, written), False))
        return stored, deliveries

    def _queued_sid(
        self,
        db: sqlite3.Connection,
        env: NewEnvelope,
        written: Mapping[tuple[str, str], tuple[int, str]],
    ) -> int:
        """The sid a re-sent (sender, eid) has in its recipient's inbox; 0 if it went elsewhere."""
        here = written.get((env.sender, env.eid))
        if here is not None:
            return here[0] if here[1] == env.recipient else 0
        row = db.execute(
            "SELECT d.sid FROM envelopes e JOIN deliveries d ON d.sid = e.sid"
            " WHERE e.sender = ? AND e.eid = ? AND d.username = ? AND d.device = ?",
            (env.sender, env.eid, env.recipient, DEFAULT_DEVICE),
        ).fetchone()
        return int(row[0]) if row else 0

    def _ack(self, db: sqlite3.Connection, recipient: str, sids: Sequence[int]) -> tuple[int, int]:
        """What the acknowledgement freed, counted first, then one `executemany` for the
        deletions: cheaper than a DELETE ... RETURNING per sid once there are several."""
        if len(sids) == 1:
            row = db.execute(
                "DELETE FROM deliveries WHERE username = ? AND device = ? AND sid = ?"
                " RETURNING size",
                (recipient, DEFAULT_DEVICE, sids[0]),
            ).fetchone()
            count, size = (1, int(row[0])) if row is not None else (0, 0)
        else:
            count, total = db.execute(
                "SELECT COUNT(*), TOTAL(size) FROM deliveries WHERE username = ? AND device = ?"
                " AND sid IN (SELECT value FROM json_each(?))",
                (recipient, DEFAULT_DEVICE, json.dumps(list(sids))),
            ).fetchone()
            count, size = int(count), int(total)
            if count:
                db.executemany(
                    "DELETE FROM deliveries WHERE username = ? AND device = ? AND sid = ?",
                    [(recipient, DEFAULT_DEVICE, sid) for sid in sids],
                )
        kept = self._inboxes.get(recipient)
        if kept is not None:
            self._inboxes[recipient] = (kept[0] - count, kept[1] - size)
        return count, size

    async def pending(self, recipient: str, after_sid: int, limit: int) -> list[StoredEnvelope]:
        with GUARD:
            rows = self._db.execute(
                f"{_ENVELOPE} WHERE d.username = ? AND d.device = ? AND d.sid > ?"
                " ORDER BY d.sid LIMIT ?",
                (recipient, DEFAULT_DEVICE, after_sid, limit),
            ).fetchall()
        return [StoredEnvelope(*row) for row in rows]

    async def envelopes(self, recipient: str, sids: Sequence[int]) -> list[StoredEnvelope]:
        with GUARD:
            rows = [
                self._db.execute(
                    f"{_ENVELOPE} WHERE d.username = ? AND d.device = ? AND d.sid = ?",
                    (recipient, DEFAULT_DEVICE, sid),
                ).fetchone()
                for sid in sids
            ]
        return [StoredEnvelope(*row) for row in rows if row is not None]

    async def ack(self, recipient: str, sids: Sequence[int]) -> int:
        with self._tx() as db:
            return self._ack(db, recipient, sids)[0]

    async def queue_usage(self, recipient: str) -> tuple[int, int] | None:
        with GUARD:
            row = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = ?1),"
                " COUNT(*), COALESCE(SUM(size), 0) FROM deliveries"
                " WHERE username = ?1 AND device = ?2",
                (recipient, DEFAULT_DEVICE),
            ).fetchone()
        return (int(row[1]), int(row[2])) if row[0] else None

    async def expire_envelopes(self, before: float) -> int:
        """Deliveries of old bodies; the bodies follow (and any a delivery never reached)."""
        with self._tx() as db:
            expired = db.execute(
                "DELETE FROM deliveries WHERE sid IN (SELECT sid FROM envelopes WHERE ts < ?)",
                (before,),
            ).rowcount
            db.execute("DELETE FROM envelopes WHERE ts < ?", (before,))
            self._inboxes.clear()
        return expired

    async def purge_queue(self, recipient: str) -> int:
        with self._tx() as db:
            self._inbox_emptied(recipient)
            return db.execute(
                "DELETE FROM deliveries WHERE username = ? AND device = ?",
                (recipient, DEFAULT_DEVICE),
            ).rowcount

    def _inbox_emptied(self, username: str) -> None:
        self._inboxes.pop(username, None)

    async def delete_conversation(self, user: str, peer: str) -> int:
        with self._tx() as db:
            deleted = db.execute(
                "DELETE FROM deliveries WHERE (username = ?1 AND sid IN"
                " (SELECT sid FROM envelopes WHERE sender = ?2 AND grp IS NULL))"
                " OR (username = ?2 AND sid IN"
                " (SELECT sid FROM envelopes WHERE sender = ?1 AND grp IS NULL))",
                (user, peer),
            ).rowcount
            db.execute("DELETE FROM contacts WHERE a = ? AND b = ?", (peer, user))
            self._inboxes.pop(user, None)
            self._inboxes.pop(peer, None)
        return deleted

    async def record_watches(self, watcher: str, users: Sequence[str]) -> list[str]:
        with self._tx() as db:
            rows = db.execute(
                "INSERT OR IGNORE INTO contacts (a, b)"
                " SELECT username, ?1 FROM accounts"
                " WHERE username IN (SELECT value FROM json_each(?2)) AND username != ?1"
                " AND EXISTS (SELECT 1 FROM accounts WHERE username = ?1)"
                " RETURNING a",
                (watcher, json.dumps(list(users))),
            ).fetchall()
        return [row[0] for row in rows]

    async def watchers_of(self, username: str) -> set[str]:
        with GUARD:
            rows = self._db.execute("SELECT b FROM contacts WHERE a = ?", (username,)).fetchall()
        return {row[0] for row in rows}

    async def checkpoint(self) -> None:
        if time.monotonic() - self._inboxes_since > INBOXES_RECOUNTED:
            self._inboxes.clear()
            self._inboxes_since = time.monotonic()
        await super().checkpoint()
