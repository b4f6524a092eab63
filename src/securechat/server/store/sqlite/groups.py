"""MLS groups in the SQLite file: epochs, members, kept Commits, one body to N inboxes.

This process is the file's only writer and each method is one transaction run
without a pause on the event loop, so the epoch check, the increment and the
deliveries are atomic with respect to every other Commit and send: a send for
epoch n is either written before the Commit of n (its sids come first in every
inbox) or refused as a conflict after it. A send's queue limits are checked in its
transaction too, against what the file holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

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
from securechat.server.store.sqlite.base import GUARD
from securechat.server.store.sqlite.queue import SQLiteQueue


class _EnvelopeIdTaken(Exception):
    """The sender's eid names other data still queued: the Commit is rolled back."""


class SQLiteGroups(SQLiteQueue):
    """Shares the queue's sid counter: a group's deliveries and one-to-one envelopes are
    one sid order in each inbox."""

    async def group_state(self, group: bytes) -> GroupState | None:
        with GUARD:
            row = self._db.execute(
                "SELECT epoch FROM mls_groups WHERE grp = ?", (group,)
            ).fetchone()
            if row is None:
                return None
            members = self._db.execute(
                "SELECT username FROM group_members WHERE grp = ?", (group,)
            ).fetchall()
        return GroupState(int(row[0]), frozenset(name for (name,) in members))

    async def memberships(self, usernames: Sequence[str]) -> dict[str, int]:
        names = list(dict.fromkeys(usernames))
        with GUARD:
            rows = self._db.execute(
                "SELECT a.username, (SELECT COUNT(*) FROM group_members m"
                " WHERE m.username = a.username) FROM accounts a"
                " WHERE a.username IN (SELECT value FROM json_each(?))",
                (json.dumps(names),),
            ).fetchall()
        return {name: int(count) for name, count in rows}

    async def commit_group(self, commit: NewCommit, keep: int) -> CommitOutcome:
        try:
            with self._tx() as db:
                return self._commit_group(db, commit, keep)
        except _EnvelopeIdTaken:
            return CommitOutcome("eid_taken", commit.epoch)

    def _commit_group(self, db: sqlite3.Connection, commit: NewCommit, keep: int) -> CommitOutcome:
        group, sender = commit.group, commit.sender
        again = db.execute(
            "SELECT epoch FROM group_commits WHERE grp = ? AND sender = ? AND eid = ?",
            (group, sender, commit.eid),
        ).fetchone()
        if again is not None:
            return CommitOutcome("resent", int(again[0]))
        if commit.create:
            created = db.execute(
                "INSERT INTO mls_groups VALUES (?, 0, ?) ON CONFLICT DO NOTHING",
                (group, commit.ts),
            ).rowcount
            if created:
                db.execute("INSERT INTO group_members VALUES (?, ?)", (group, sender))
        # The check and the increment in one statement, as on PostgreSQL.
        row = db.execute(
            "UPDATE mls_groups SET epoch = epoch + 1 WHERE grp = ?1 AND epoch = ?2 AND EXISTS"
            " (SELECT 1 FROM group_members WHERE grp = ?1 AND username = ?3) RETURNING epoch",
            (group, commit.epoch, sender),
        ).fetchone()
        if row is None:
            current = db.execute("SELECT epoch FROM mls_groups WHERE grp = ?", (group,)).fetchone()
            member = db.execute(
                "SELECT 1 FROM group_members WHERE grp = ? AND username = ?", (group, sender)
            ).fetchone()
            if current is None or member is None:
                return CommitOutcome("forbidden", 0)
            return CommitOutcome("conflict", int(current[0]))
        epoch = commit.epoch
        db.execute(
            "INSERT INTO group_commits VALUES (?, ?, ?, ?, ?, ?)",
            (group, epoch, sender, commit.eid, commit.body, commit.ts),
        )
        db.execute("DELETE FROM group_commits WHERE grp = ? AND epoch <= ?", (group, epoch - keep))
        others = [
            name
            for (name,) in db.execute(
                "SELECT username FROM group_members WHERE grp = ? AND username <> ?"
                " ORDER BY username",
                (group, sender),
            )
        ]
        deliveries = [self._fan_out(db, commit.commit_body(), "commit", epoch, others)]
        welcome = commit.welcome_body()
        if welcome is not None and commit.added:
            deliveries.append(
                self._fan_out(db, welcome, commit.welcome_kind, epoch + 1, commit.added)
            )
        db.executemany(
            "DELETE FROM group_members WHERE grp = ? AND username = ?",
            [(group, name) for name in commit.removed],
        )
        db.executemany(
            "INSERT OR IGNORE INTO group_members VALUES (?, ?)",
            [(group, name) for name in commit.added],
        )
        return CommitOutcome("accepted", epoch, tuple(d for d in deliveries if d is not None))

    def _fan_out(
        self,
        db: sqlite3.Connection,
        body: GroupBody,
        kind: GroupKind,
        epoch: int,
        recipients: Sequence[str],
    ) -> Fanned | None:
        """One body row, one delivery row per recipient; nothing without a recipient."""
        if not recipients:
            return None
        sid = self._take_sid(db)
        stored = db.execute(
            "INSERT INTO envelopes (sid, sender, eid, body, ts, grp, kind, epoch)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender, eid) DO NOTHING",
            (sid, body.sender, body.eid, body.body, body.ts, body.group, kind, epoch),
        ).rowcount
        if not stored:
            raise _EnvelopeIdTaken
        db.executemany(
            "INSERT INTO deliveries VALUES (?, ?, ?, ?)",
            [(name, DEFAULT_DEVICE, sid, len(body.body)) for name in recipients],
        )
        if self._inboxes:
            self._counted((name, len(body.body)) for name in recipients)
        return Fanned(sid, tuple(recipients), kind, epoch)

    async def group_send_batch(
        self, sends: Sequence[NewGroupSend], limits: QueueLimits
    ) -> list[GroupSendOutcome]:
        if not sends:
            return []
        with self._tx() as db:
            return [self._group_send(db, send, limits) for send in sends]

    def _group_send(
        self, db: sqlite3.Connection, send: NewGroupSend, limits: QueueLimits
    ) -> GroupSendOutcome:
        row = db.execute(
            "SELECT epoch, EXISTS (SELECT 1 FROM group_members WHERE grp = ?1 AND username = ?2)"
            " FROM mls_groups WHERE grp = ?1",
            (send.group, send.sender),
        ).fetchone()
        if row is None or not row[1]:
            return GroupSendOutcome("forbidden")
        epoch = int(row[0])
        if epoch != send.epoch:
            return GroupSendOutcome("conflict", epoch)
        queued = db.execute(
            "SELECT grp, sid, body, ts, epoch FROM envelopes WHERE sender = ? AND eid = ?",
            (send.sender, send.eid),
        ).fetchone()
        if queued is not None:
            if queued[0] != send.group:
                return GroupSendOutcome("eid_taken", epoch)
            sid, copy, ts, copy_epoch = queued[1:]
            waiting = [
                name
                for (name,) in db.execute("SELECT username FROM deliveries WHERE sid = ?", (sid,))
            ]
            body = GroupBody(send.group, send.sender, send.eid, copy, ts)
            fanned = Fanned(sid, tuple(waiting), "message", copy_epoch) if waiting else None
            return GroupSendOutcome("resent", epoch, fanned, body=body)
        others = [
            name
            for (name,) in db.execute(
                "SELECT username FROM group_members WHERE grp = ? AND username <> ?"
                " ORDER BY username",
                (send.group, send.sender),
            )
        ]
        recipients, full = limits.share(others, self._inbox_usage(db, others), send)
        fanned = self._fan_out(db, send.stored_body(), "message", epoch, recipients)
        return GroupSendOutcome("stored", epoch, fanned, full)

    async def group_commits(self, group: bytes, since: int, max_bytes: int) -> list[StoredCommit]:
        commits: list[StoredCommit] = []
        size = 0
        with GUARD:
            for epoch, sender, body in self._db.execute(
                "SELECT epoch, sender, body FROM group_commits WHERE grp = ? AND epoch >= ?"
                " ORDER BY epoch",
                (group, since),
            ):
                size += len(body)
                if commits and size > max_bytes:
                    break
                commits.append(StoredCommit(int(epoch), sender, bytes(body)))
        return commits
