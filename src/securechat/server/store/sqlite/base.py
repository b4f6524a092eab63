"""The SQLite file the other modules of this package share: connection, transactions, errors.

WAL with synchronous=NORMAL makes a commit durable against a crash of the
process (SIGKILL included) without an fsync per transaction; the relay
batches envelopes into one transaction per loop turn (write batching), so
acknowledging after the batch is written means the envelope is on disk.
Calls run on the loop thread: each is a few microseconds to a few hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from securechat.errors import StorageFullError, StoreError
from securechat.server.store.schema import COUNTED, USER_ROWS
from securechat.server.store.sqlite.migrations import migrate

WAL_LIMIT = 64 * 1024 * 1024
"""Bytes of pages in the WAL past which a checkpoint starts the log over. A passive
checkpoint never blocks a commit, so under steady traffic it never catches up with the
commits made while it copies, and SQLite starts the log over only after one that did:
at 5,000 random-peer messages a second the WAL grew to 500 MB beside an 8 MB database
within six runs of 6.5 s (bench/README.md), and without a pause it grows until the
disk is full. Started over, the file is written again from its beginning: it stays near
this size plus what the commits of one second add."""

WAL_RESTART_WAIT_MS = 50
"""How long the restarting checkpoint waits for a commit or a reader in its way."""


class _Guard:
    """Turns SQLite's failures into errors the relay can answer with.

    A class, not @contextmanager: it wraps every write batch, where the
    generator machinery was a measurable share of the batch's CPU.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            _raise_translated(exc)


GUARD = _Guard()


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
    """BEGIN IMMEDIATE ... COMMIT; any failure rolls back, SQLite errors as with GUARD."""

    __slots__ = ("_store",)

    def __init__(self, store: SQLiteBase) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        with GUARD:
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
        db = self._store._db
        self._store._rolled_back()
        # On SQLITE_FULL SQLite has already rolled back: a second ROLLBACK would
        # replace the real error with "no transaction is active".
        with GUARD:
            if db.in_transaction:
                db.execute("ROLLBACK")


class SQLiteBase:
    """One connection to the database file, migrated to this code's schema on opening."""

    answers_at_once = True

    def __init__(self, path: Path) -> None:
        self.path = path
        with GUARD:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run from `checkpoint()` in a thread, not inside a commit on the loop.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            try:
                migrate(self._db, path)
            except BaseException:
                self._db.close()
                raise

    def _tx(self) -> _Transaction:
        return _Transaction(self)

    def _rolled_back(self) -> None:
        """A transaction failed: what a concern keeps in memory about the file may be wrong."""

    def _inbox_emptied(self, username: str) -> None:
        """Every delivery to the user's inbox is gone (a name registered anew)."""

    def _user_deleted(self, username: str) -> None:
        """The user's rows are gone: a concern forgets what it keeps in memory about them."""

    async def delete_account(self, username: str) -> None:
        """Removes every row `schema.USER_ROWS` says the user owns, in one transaction."""
        with self._tx() as db:
            for rows in USER_ROWS:
                db.execute(
                    f"DELETE FROM {rows.table} WHERE {rows.where.replace('$1', '?1')}",  # noqa: S608
                    (username,),
                )
            self._user_deleted(username)

    async def stats(self) -> dict[str, int]:
        with GUARD:
            counts = {
                table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
                for table in COUNTED
            }
            counts["live_sessions"] = int(
                self._db.execute(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at > ?", (time.time(),)
                ).fetchone()[0]
            )
        return counts

    async def checkpoint(self) -> None:
        """Copies the WAL into the database from a second connection, off the event loop."""
        await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> None:
        with GUARD, contextlib.closing(sqlite3.connect(self.path, timeout=5)) as side:
            _, frames, _ = side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            # Frames in the log, not the file's size: a log started over leaves the file
            # as large as it was, and a quiet relay must not restart it every second.
            if frames * side.execute("PRAGMA page_size").fetchone()[0] > WAL_LIMIT:
                # Copies only what was committed during the passive pass, holding the
                # loop's commits that long (TRUNCATE held them three times as long, for
                # the file's truncation); then the next commit starts the log over. A
                # commit or reader in the way turns it passive: it tries again next time.
                side.execute(f"PRAGMA busy_timeout={WAL_RESTART_WAIT_MS}")
                side.execute("PRAGMA wal_checkpoint(RESTART)")

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
        with GUARD:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
