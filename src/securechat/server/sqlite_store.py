"""The embedded store: one SQLite file in WAL mode.

WAL with synchronous=NORMAL makes a commit durable against a crash of the
process (SIGKILL included) without an fsync per transaction; the relay
batches envelopes into one transaction per loop turn (group commit), so
acknowledging after `enqueue` returns means the envelope is on disk.
Calls run on the loop thread: each is a few microseconds to a few hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from securechat.errors import StorageFullError, StoreError
from securechat.server.store import (
    Account,
    FileRecord,
    KeyBundle,
    NewEnvelope,
    SessionRecord,
    StoredEnvelope,
    Throttle,
)

SCHEMA_VERSION = 2
"""2 added `throttle` (login back-off that survives a restart); a version 1 file gains it."""

KNOWN_CONTACTS_CACHED = 4096
"""Pairs remembered as contacts, so most batches skip their insert. Emptied when full:
at 100,000 the cache alone held 15 MiB, which the allocator did not give back."""

SID_BLOCK = 1024
"""Sids claimed on disk at a time: one small write per this many envelopes."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash BLOB NOT NULL,
    recovery_hash BLOB,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(username);
CREATE TABLE IF NOT EXISTS reset_tokens (
    token_hash BLOB PRIMARY KEY,
    username TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS envelopes (
    sid INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    eid TEXT NOT NULL,
    body BLOB NOT NULL,
    ts REAL NOT NULL,
    UNIQUE (sender, eid)
);
CREATE INDEX IF NOT EXISTS envelopes_recipient ON envelopes(recipient, sid);
CREATE TABLE IF NOT EXISTS contacts (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identity_keys (
    username TEXT PRIMARY KEY,
    identity BLOB NOT NULL,
    signed_prekey BLOB NOT NULL,
    kem_prekey BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    prekey BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS otpk_user ON one_time_prekeys(username, id);
CREATE TABLE IF NOT EXISTS one_time_kem_prekeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    prekey BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS otkem_user ON one_time_kem_prekeys(username, id);
CREATE TABLE IF NOT EXISTS files (
    file_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    size INTEGER NOT NULL,
    recipients TEXT NOT NULL,
    fetched_by TEXT NOT NULL,
    next_index INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_owner ON files(owner);
CREATE TABLE IF NOT EXISTS scan_cache (
    key BLOB PRIMARY KEY,
    verdict BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS throttle (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    last REAL NOT NULL
) WITHOUT ROWID;
"""


class _Guard:
    """Turns SQLite's failures into errors the relay can answer with.

    A class, not @contextmanager: it wraps every group commit, where the
    generator machinery was a measurable share of the commit's CPU.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            _raise_translated(exc)


_GUARD = _Guard()


def _raise_translated(exc: BaseException) -> None:
    """Raises the relay's error for a SQLite failure; integrity errors stay as they are."""
    if not isinstance(exc, sqlite3.Error) or isinstance(exc, sqlite3.IntegrityError):
        return
    text = str(exc).lower()
    if "full" in text or "readonly" in text or "read-only" in text or "disk i/o" in text:
        raise StorageFullError(
            "the relay's data directory is full or read-only; free space or fix permissions"
        ) from exc
    raise StoreError(f"database error: {exc}") from exc


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT; any failure rolls back, SQLite errors as with _Guard."""

    __slots__ = ("_store",)

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        with _GUARD:
            self._store._db.execute("BEGIN IMMEDIATE")
        return self._store._db

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._store._db.execute("COMMIT")
                return
            except BaseException as failure:
                self._abandon()
                _raise_translated(failure)
                raise
        self._abandon()
        _raise_translated(exc)

    def _abandon(self) -> None:
        store = self._store
        db = store._db
        store._known_contacts.clear()
        # A sid block reserved in this transaction is not on disk: reserve again.
        store._reserved_until = min(store._reserved_until, store._last_sid)
        # On SQLITE_FULL SQLite has already rolled back: a second ROLLBACK would
        # replace the real error with "no transaction is active".
        with _GUARD:
            if db.in_transaction:
                db.execute("ROLLBACK")


_ONE_TIME_TABLES = ("one_time_prekeys", "one_time_kem_prekeys")


def _take_one(db: sqlite3.Connection, table: str, username: str) -> bytes | None:
    """The user's oldest prekey in `table`, deleted as it is handed out."""
    row = db.execute(
        f"SELECT id, prekey FROM {table} WHERE username = ? ORDER BY id LIMIT 1",  # noqa: S608
        (username,),
    ).fetchone()
    if row is None:
        return None
    db.execute(f"DELETE FROM {table} WHERE id = ?", (row[0],))  # noqa: S608
    return bytes(row[1])


class SQLiteStore:
    """`Store` on one SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known_contacts: set[tuple[str, str]] = set()
        """Pairs already in `contacts`: most envelopes go between people who talked before."""
        self._unwritten_contacts: set[tuple[str, str]] = set()
        """New pairs of commits that wrote nothing else: they ride along with the next
        transaction, or `checkpoint` writes them within a second (`contacts_of` reads them).
        With random peers a new pair per envelope made every group commit a transaction
        of its own, where fixed pairs acknowledged before the commit need none."""
        with _GUARD:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run from `checkpoint()` in a thread, not inside a commit on the loop.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} was written by a newer securechat (schema {version}); upgrade first"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._last_sid: int = self._db.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'envelopes'),"
                " 0), COALESCE((SELECT MAX(sid) FROM envelopes), 0))"
            ).fetchone()[0]
            self._reserved_until = self._last_sid
            """Sids up to here are recorded as used in `sqlite_sequence`."""

    def _tx(self) -> _Transaction:
        return _Transaction(self)

    # accounts -------------------------------------------------------------------

    async def create_account(self, account: Account) -> bool:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO accounts VALUES (?, ?, ?, ?)",
                    (
                        account.username,
                        account.password_hash,
                        account.recovery_hash,
                        account.created_at,
                    ),
                )
                # Left by an earlier account of the same name (sent while it was being
                # deleted): never the new owner's.
                db.execute("DELETE FROM envelopes WHERE recipient = ?", (account.username,))
        except sqlite3.IntegrityError:
            return False
        return True

    async def get_account(self, username: str) -> Account | None:
        with _GUARD:
            row = self._db.execute(
                "SELECT username, password_hash, recovery_hash, created_at FROM accounts"
                " WHERE username = ?",
                (username,),
            ).fetchone()
        return Account(*row) if row else None

    async def update_password(
        self, username: str, password_hash: bytes, recovery_hash: bytes | None
    ) -> None:
        with self._tx() as db:
            if recovery_hash is None:
                db.execute(
                    "UPDATE accounts SET password_hash = ? WHERE username = ?",
                    (password_hash, username),
                )
            else:
                db.execute(
                    "UPDATE accounts SET password_hash = ?, recovery_hash = ? WHERE username = ?",
                    (password_hash, recovery_hash, username),
                )

    async def delete_account(self, username: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM accounts WHERE username = ?", (username,))
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))
            db.execute("DELETE FROM reset_tokens WHERE username = ?", (username,))
            db.execute(
                "DELETE FROM envelopes WHERE recipient = ? OR sender = ?", (username, username)
            )
            db.execute("DELETE FROM contacts WHERE a = ? OR b = ?", (username, username))
            self._known_contacts = {p for p in self._known_contacts if username not in p}
            self._unwritten_contacts = {p for p in self._unwritten_contacts if username not in p}
            db.execute("DELETE FROM identity_keys WHERE username = ?", (username,))
            db.execute("DELETE FROM one_time_prekeys WHERE username = ?", (username,))
            db.execute("DELETE FROM one_time_kem_prekeys WHERE username = ?", (username,))
            db.execute("DELETE FROM files WHERE owner = ?", (username,))

    # sessions -------------------------------------------------------------------

    async def put_session(self, session: SessionRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)",
                (session.token_hash, session.username, session.expires_at),
            )

    async def get_session(self, token_hash: bytes) -> SessionRecord | None:
        with _GUARD:
            row = self._db.execute(
                "SELECT token_hash, username, expires_at FROM sessions WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        return SessionRecord(*row) if row else None

    async def delete_session(self, token_hash: bytes) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    async def delete_sessions_of(self, username: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))

    async def put_reset_token(self, username: str, token_hash: bytes, expires_at: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO reset_tokens VALUES (?, ?, ?)",
                (token_hash, username, expires_at),
            )

    async def consume_reset_token(self, username: str, token_hash: bytes, now: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM reset_tokens WHERE token_hash = ? AND username = ? AND expires_at > ?",
                (token_hash, username, now),
            )
            db.execute("DELETE FROM reset_tokens WHERE expires_at <= ?", (now,))
            return cur.rowcount == 1

    # failed-login back-off ------------------------------------------------------

    async def get_throttle(self, key: str) -> Throttle | None:
        with _GUARD:
            row = self._db.execute(
                "SELECT count, locked_until, last FROM throttle WHERE key = ?", (key,)
            ).fetchone()
        return Throttle(*row) if row else None

    async def count_failure(self, key: str, now: float, forget: float) -> int:
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO throttle VALUES (?, 1, 0, ?) ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN ? - last > ? THEN 1 ELSE count + 1 END, last = excluded.last"
                " RETURNING count",
                (key, now, now, forget),
            ).fetchone()
        return int(row[0])

    async def put_throttle(self, key: str, throttle: Throttle) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO throttle VALUES (?, ?, ?, ?)",
                (key, throttle.count, throttle.locked_until, throttle.last),
            )

    async def delete_throttle(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM throttle WHERE key = ?", (key,))

    async def expire_throttle(self, before: float) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM throttle WHERE last < ?", (before,)).rowcount

    # relay queue ----------------------------------------------------------------

    async def enqueue(self, envelopes: Sequence[NewEnvelope]) -> list[int]:
        pairs = self._new_contacts(envelopes)
        with self._tx() as db:
            stored = self._enqueue(db, envelopes)
            self._record_contacts(db, pairs)
        return [sid for sid, _ in stored]

    async def reserve_sid(self, sender: str, eid: str) -> int | None:
        """This process is the database's only writer, so a counter hands sids out.

        The counter claims `SID_BLOCK` sids at a time in `sqlite_sequence`, so a sid
        whose envelope was never written (acknowledged before its commit) is not
        handed out again after a restart either.
        """
        with _GUARD:
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

    async def commit_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
        acknowledged: Sequence[NewEnvelope] = (),
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        self._unwritten_contacts |= self._new_contacts(envelopes, acknowledged)
        if not envelopes and not acks:
            return [], {}
        with self._tx() as db:
            stored = self._enqueue(db, envelopes) if envelopes else []
            self._record_contacts(db, self._unwritten_contacts)
            freed = {recipient: self._ack(db, recipient, ids) for recipient, ids in acks.items()}
        self._unwritten_contacts = set()
        return stored, freed

    def _enqueue(
        self, db: sqlite3.Connection, envelopes: Sequence[NewEnvelope]
    ) -> list[tuple[int, bool]]:
        stored: list[tuple[int, bool]] = []
        for env in envelopes:
            sid = self._take_sid(db) if env.sid is None else env.sid
            # Only a repeated (sender, eid) is ignored: a sid clash must fail loudly.
            cur = db.execute(
                "INSERT INTO envelopes (sid, recipient, sender, eid, body, ts)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sender, eid) DO NOTHING",
                (sid, env.recipient, env.sender, env.eid, env.body, env.ts),
            )
            if cur.rowcount == 1:
                stored.append((sid, True))
            else:
                row = db.execute(
                    "SELECT sid FROM envelopes WHERE sender = ? AND eid = ? AND recipient = ?",
                    (env.sender, env.eid, env.recipient),
                ).fetchone()
                stored.append((int(row[0]) if row else 0, False))
        return stored

    def _new_contacts(self, *groups: Sequence[NewEnvelope]) -> set[tuple[str, str]]:
        """(sender, recipient) pairs not known to be contacts yet."""
        pairs = {(e.sender, e.recipient) for group in groups for e in group}
        return pairs - self._known_contacts - self._unwritten_contacts

    def _record_contacts(self, db: sqlite3.Connection, pairs: set[tuple[str, str]]) -> None:
        if not pairs:
            return
        db.executemany(
            "INSERT OR IGNORE INTO contacts VALUES (?, ?)", pairs | {(b, a) for a, b in pairs}
        )
        if len(self._known_contacts) > KNOWN_CONTACTS_CACHED:
            self._known_contacts.clear()
        self._known_contacts |= pairs

    def _ack(self, db: sqlite3.Connection, recipient: str, sids: Sequence[int]) -> tuple[int, int]:
        count = size = 0
        for sid in sids:
            row = db.execute(
                "DELETE FROM envelopes WHERE sid = ? AND recipient = ? RETURNING LENGTH(body)",
                (sid, recipient),
            ).fetchone()
            if row is not None:
                count += 1
                size += int(row[0])
        return count, size

    async def pending(self, recipient: str, after_sid: int, limit: int) -> list[StoredEnvelope]:
        with _GUARD:
            rows = self._db.execute(
                "SELECT sid, recipient, sender, eid, body, ts FROM envelopes"
                " WHERE recipient = ? AND sid > ? ORDER BY sid LIMIT ?",
                (recipient, after_sid, limit),
            ).fetchall()
        return [StoredEnvelope(*row) for row in rows]

    async def envelopes(self, recipient: str, sids: Sequence[int]) -> list[StoredEnvelope]:
        with _GUARD:
            rows = [
                self._db.execute(
                    "SELECT sid, recipient, sender, eid, body, ts FROM envelopes"
                    " WHERE sid = ? AND recipient = ?",
                    (sid, recipient),
                ).fetchone()
                for sid in sids
            ]
        return [StoredEnvelope(*row) for row in rows if row is not None]

    async def ack(self, recipient: str, sids: Sequence[int]) -> int:
        with self._tx() as db:
            return self._ack(db, recipient, sids)[0]

    async def queue_usage(self, recipient: str) -> tuple[int, int] | None:
        with _GUARD:
            row = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = ?),"
                " COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM envelopes WHERE recipient = ?",
                (recipient, recipient),
            ).fetchone()
        return (int(row[1]), int(row[2])) if row[0] else None

    async def expire_envelopes(self, before: float) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM envelopes WHERE ts < ?", (before,)).rowcount

    async def purge_queue(self, recipient: str) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM envelopes WHERE recipient = ?", (recipient,)).rowcount

    async def delete_conversation(self, user: str, peer: str) -> int:
        with self._tx() as db:
            deleted = db.execute(
                "DELETE FROM envelopes WHERE (recipient = ? AND sender = ?)"
                " OR (recipient = ? AND sender = ?)",
                (user, peer, peer, user),
            ).rowcount
            db.execute(
                "DELETE FROM contacts WHERE (a = ? AND b = ?) OR (a = ? AND b = ?)",
                (user, peer, peer, user),
            )
            self._known_contacts -= {(user, peer), (peer, user)}
            self._unwritten_contacts -= {(user, peer), (peer, user)}
        return deleted

    async def contacts_of(self, username: str) -> set[str]:
        with _GUARD:
            rows = self._db.execute("SELECT b FROM contacts WHERE a = ?", (username,)).fetchall()
        unwritten = self._unwritten_contacts
        return (
            {row[0] for row in rows}
            | {b for a, b in unwritten if a == username}
            | {a for a, b in unwritten if b == username}
        )

    # key directory --------------------------------------------------------------

    async def publish_keys(
        self,
        username: str,
        identity: bytes,
        signed_prekey: bytes,
        kem_prekey: bytes,
        one_time_prekeys: Sequence[bytes],
        replace_one_time: bool,
        one_time_kem_prekeys: Sequence[bytes] = (),
    ) -> int:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO identity_keys VALUES (?, ?, ?, ?)",
                (username, identity, signed_prekey, kem_prekey),
            )
            for table, keys in (
                ("one_time_prekeys", one_time_prekeys),
                ("one_time_kem_prekeys", one_time_kem_prekeys),
            ):
                if replace_one_time:
                    db.execute(f"DELETE FROM {table} WHERE username = ?", (username,))  # noqa: S608
                db.executemany(
                    f"INSERT INTO {table} (username, prekey) VALUES (?, ?)",  # noqa: S608
                    [(username, key) for key in keys],
                )
            row = db.execute(
                "SELECT COUNT(*) FROM one_time_prekeys WHERE username = ?", (username,)
            ).fetchone()
        return int(row[0])

    async def fetch_bundle(self, username: str) -> KeyBundle | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT identity, signed_prekey, kem_prekey FROM identity_keys WHERE username = ?",
                (username,),
            ).fetchone()
            if row is None:
                return None
            otpk, otkem = (_take_one(db, table, username) for table in _ONE_TIME_TABLES)
        return KeyBundle(row[0], row[1], row[2], otpk, otkem)

    async def one_time_kem_prekey_count(self, username: str) -> int:
        with _GUARD:
            row = self._db.execute(
                "SELECT COUNT(*) FROM one_time_kem_prekeys WHERE username = ?", (username,)
            ).fetchone()
        return int(row[0])

    async def one_time_prekey_count(self, username: str) -> int:
        with _GUARD:
            row = self._db.execute(
                "SELECT COUNT(*) FROM one_time_prekeys WHERE username = ?", (username,)
            ).fetchone()
        return int(row[0])

    # files ----------------------------------------------------------------------

    async def create_file(self, record: FileRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.file_id,
                    record.owner,
                    record.size,
                    ",".join(sorted(record.recipients)),
                    ",".join(sorted(record.fetched_by)),
                    record.next_index,
                    int(record.complete),
                    record.created_at,
                ),
            )

    async def get_file(self, file_id: str) -> FileRecord | None:
        with _GUARD:
            row = self._db.execute(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE file_id = ?",
                (file_id,),
            ).fetchone()
        return _file_record(row) if row else None

    async def set_file_progress(self, file_id: str, next_index: int, complete: bool) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE files SET next_index = ?, complete = ? WHERE file_id = ?",
                (next_index, int(complete), file_id),
            )

    async def mark_file_fetched(self, file_id: str, username: str) -> FileRecord | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE file_id = ?",
                (file_id,),
            ).fetchone()
            if row is None:
                return None
            record = _file_record(row)
            fetched = record.fetched_by | {username}
            db.execute(
                "UPDATE files SET fetched_by = ? WHERE file_id = ?",
                (",".join(sorted(fetched)), file_id),
            )
        return FileRecord(
            record.file_id,
            record.owner,
            record.size,
            record.recipients,
            frozenset(fetched),
            record.next_index,
            record.complete,
            record.created_at,
        )

    async def delete_file(self, file_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM files WHERE file_id = ?", (file_id,))

    async def files_of(self, username: str) -> list[FileRecord]:
        with _GUARD:
            rows = self._db.execute(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE owner = ?",
                (username,),
            ).fetchall()
        return [_file_record(row) for row in rows]

    async def expired_files(self, before: float) -> list[str]:
        with _GUARD:
            rows = self._db.execute(
                "SELECT file_id FROM files WHERE created_at < ?", (before,)
            ).fetchall()
        return [row[0] for row in rows]

    async def storage_used(self, username: str) -> tuple[int, int]:
        with _GUARD:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE owner = ?", (username,)
            ).fetchone()
        return int(row[0]), int(row[1])

    # scan cache -----------------------------------------------------------------

    async def get_scan(self, key: bytes, now: float) -> bytes | None:
        with _GUARD:
            row = self._db.execute(
                "SELECT verdict FROM scan_cache WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
        return bytes(row[0]) if row else None

    async def put_scan(self, key: bytes, verdict: bytes, expires_at: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO scan_cache VALUES (?, ?, ?)", (key, verdict, expires_at)
            )

    # operations -----------------------------------------------------------------

    async def stats(self) -> dict[str, int]:
        with _GUARD:
            counts = {
                table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
                for table in ("accounts", "sessions", "envelopes", "one_time_prekeys", "files")
            }
            counts["live_sessions"] = int(
                self._db.execute(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at > ?", (time.time(),)
                ).fetchone()[0]
            )
        return counts

    async def checkpoint(self) -> None:
        """Writes contact pairs still held in memory, then copies the WAL into the database
        from a second connection, off the event loop."""
        if self._unwritten_contacts:
            with self._tx() as db:
                self._record_contacts(db, self._unwritten_contacts)
            self._unwritten_contacts = set()
        await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> None:
        with _GUARD, contextlib.closing(sqlite3.connect(self.path, timeout=5)) as side:
            side.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def ping(self) -> None:
        """Takes the write lock from a side connection and lets it go, off the event loop."""
        try:
            await asyncio.to_thread(self._ping)
        except sqlite3.Error as exc:
            raise StoreError(f"the database cannot be written: {exc}") from exc

    def _ping(self) -> None:
        with contextlib.closing(sqlite3.connect(self.path, timeout=1)) as side:
            side.execute("BEGIN IMMEDIATE")
            side.execute("ROLLBACK")

    async def close(self) -> None:
        if self._unwritten_contacts:
            with self._tx() as db:
                self._record_contacts(db, self._unwritten_contacts)
        with _GUARD:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()


def _file_record(row: tuple[Any, ...]) -> FileRecord:
    """sqlite3 rows are untyped (`Any`): each column is converted to what the record says."""
    file_id, owner, size, recipients, fetched_by, next_index, complete, created_at = row
    return FileRecord(
        file_id=str(file_id),
        owner=str(owner),
        size=int(size),
        recipients=frozenset(filter(None, str(recipients).split(","))),
        fetched_by=frozenset(filter(None, str(fetched_by).split(","))),
        next_index=int(next_index),
        complete=bool(complete),
        created_at=float(created_at),
    )
