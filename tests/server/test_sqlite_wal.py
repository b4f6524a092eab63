"""The SQLite store's write-ahead log: bounded under steady traffic (store/sqlite/base.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from securechat.server.store import NewEnvelope
from securechat.server.store.sqlite import SQLiteStore
from securechat.server.store.sqlite import base as sqlite_base


async def test_sqlite_checkpoint_starts_a_wal_past_its_limit_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits made while a passive checkpoint copies leave it short of the log's end, so
    under steady traffic SQLite never starts the log over (500 MB beside an 8 MB database
    in bench/README.md): past `WAL_LIMIT` the checkpoint does, and the file stays bounded.

    A reader pins the log during the passive pass, as commits racing it do, and leaves
    once it is over. A log started over leaves the file as large as it was: what is
    counted is the log, so a quiet relay does not start it over every second."""
    monkeypatch.setattr(sqlite_base, "WAL_LIMIT", 256 * 1024, raising=False)
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path)
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connect = sqlite3.connect
    restarts: list[str] = []

    class RacedCheckpoint:
        def __init__(self, database: Path, timeout: float = 5.0) -> None:
            self._side = connect(database, timeout=timeout)

        def execute(self, sql: str) -> sqlite3.Cursor:
            cursor = self._side.execute(sql)
            if "RESTART" in sql:
                restarts.append(sql)
            if "PASSIVE" in sql and reader.in_transaction:
                reader.execute("COMMIT")
            return cursor

        def close(self) -> None:
            self._side.close()

    monkeypatch.setattr(sqlite3, "connect", RacedCheckpoint)
    for burst in range(12):
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM envelopes").fetchone()
        envelopes = [
            NewEnvelope("bob", "alice", f"{burst}-{i}", bytes(4096), 1.0) for i in range(16)
        ]
        await store.write_batch(envelopes, {})
        await store.checkpoint()

    assert Path(f"{path}-wal").stat().st_size < 2 * 256 * 1024
    assert len(await store.pending("bob", 0, 1000)) == 12 * 16
    started_over = len(restarts)
    for quiet in range(3):
        await store.write_batch([NewEnvelope("bob", "alice", f"quiet-{quiet}", b"x", 1.0)], {})
        await store.checkpoint()
    assert restarts and len(restarts) == started_over
    reader.close()
    await store.close()
