"""Relay databases written by older releases open, migrate and keep everything.

`samples/relay-v2/` is a data directory the relay of store schema 2 wrote
(`samples/make_relay_v2.py`): one envelope per row, addressed by username.
Moved here from test_store.py: the version 1 and migration 1 tests.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from securechat.errors import StoreError
from securechat.server.app import RelayServer
from securechat.server.store import NewEnvelope
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.postgres import migrations as pg_migrations
from securechat.server.store.sqlite import SQLiteStore
from securechat.server.store.sqlite.migrations import SCHEMA_VERSION
from tests.conftest import fast_config
from tests.services import pg_schema
from tests.wire import b64, logged_in

SAMPLE = Path(__file__).parent / "samples" / "relay-v2"
SAMPLE_FILE_ID = "MloY2wUZwWbDySLu6oZljYeqII9CFbtb"
SAMPLE_FILE_DATA = bytes(range(256)) * 4


@pytest.fixture
async def upgraded(tmp_path: Path) -> AsyncIterator[RelayServer]:
    data = tmp_path / "relay"
    shutil.copytree(SAMPLE, data)
    server = RelayServer(fast_config(data))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_schema_2_sample_migrates_and_delivers_what_waited(
    upgraded: RelayServer,
) -> None:
    """Bob logs in with his old password and gets the three envelopes queued for him, in order."""
    url = f"ws://127.0.0.1:{upgraded.port}"
    bob = await logged_in(url, "bob")
    envelopes = (await bob.next_push("deliver"))["envelopes"]
    assert [(e["sid"], e["sender"], e["eid"]) for e in envelopes] == [
        (1, "alice", "a-b-0"),
        (2, "alice", "a-b-1"),
        (3, "alice", "a-b-2"),
    ]
    assert [base64.b64decode(e["body"]) for e in envelopes] == [b"m0", b"m1", b"m2"]
    assert await upgraded.store.queue_usage("bob") == (3, 6)
    await bob.send({"type": "ack", "rid": 0, "sids": [1, 2, 3]})
    assert (await bob.call("watch", users=["alice"]))["states"] == {"alice": "offline"}
    await upgraded.relay.drain()  # the acknowledgements ride on the next write batch
    assert await upgraded.store.queue_usage("bob") == (0, 0)
    stats = await upgraded.store.stats()
    assert stats["envelopes"] == 1 and stats["deliveries"] == 1  # carol's, still waiting


async def test_the_schema_2_sample_keeps_keys_files_and_eid_rules(upgraded: RelayServer) -> None:
    """Prekeys, the file and contacts survive; re-sends stay idempotent and new sids follow."""
    url = f"ws://127.0.0.1:{upgraded.port}"
    alice = await logged_in(url, "alice")
    bundle = await alice.call("fetch_bundle", user="bob")
    assert bundle["type"] == "bundle", bundle
    assert base64.b64decode(bundle["identity"]) == b"ik-bob"
    assert base64.b64decode(bundle["one_time_prekey"]) == b"otpk-bob-0"
    assert base64.b64decode(bundle["one_time_kem_prekey"]) == b"otkem-bob-0"

    again = await alice.call("send", to="carol", eid="a-c-0", body=b64(b"hi carol"))
    assert again["type"] == "accepted"
    elsewhere = await alice.call("send", to="bob", eid="a-c-0", body=b64(b"hi carol"))
    assert elsewhere["type"] == "error" and elsewhere["code"] == "conflict"
    fresh = await alice.call("send", to="bob", eid="a-b-new", body=b64(b"new"))
    assert fresh["type"] == "accepted"

    carol = await logged_in(url, "carol")
    [waiting] = (await carol.next_push("deliver"))["envelopes"]
    assert (waiting["sid"], waiting["eid"]) == (4, "a-c-0")
    assert (await carol.call("watch", users=["alice"]))["states"] == {"alice": "online"}

    bob = await logged_in(url, "bob")
    data = await bob.call("file_get", file_id=SAMPLE_FILE_ID, index=0)
    assert data["type"] == "file_data", data
    assert base64.b64decode(data["data"]) == SAMPLE_FILE_DATA
    got = []
    while len(got) < 4:
        got += [(e["sid"], e["eid"]) for e in (await bob.next_push("deliver"))["envelopes"]]
    assert got[:3] == [(1, "a-b-0"), (2, "a-b-1"), (3, "a-b-2")]
    assert got[3][1] == "a-b-new" and got[3][0] > 4


async def test_the_schema_2_sample_is_at_the_current_version_after_opening(
    tmp_path: Path,
) -> None:
    """The migration runs once, on opening; the file then says so."""
    shutil.copytree(SAMPLE, tmp_path / "relay")
    path = tmp_path / "relay" / "relay.sqlite3"
    store = SQLiteStore(path)
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in db.execute("PRAGMA table_info(envelopes)")}
        assert "recipient" not in columns


async def test_a_sqlite_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    """An older relay never writes a newer file: it says what to do instead."""
    path = tmp_path / "relay.sqlite3"
    await SQLiteStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=r"newer than this relay's .*restore a backup"):
        SQLiteStore(path)


async def test_a_postgresql_database_newer_than_the_code_is_refused() -> None:
    async for dsn in pg_schema():
        await (await PostgresStore.connect(dsn, min_size=1, max_size=2)).close()
        conn = await asyncpg.connect(dsn)
        await conn.execute("INSERT INTO schema_migrations VALUES (999)")
        await conn.close()
        with pytest.raises(StoreError, match=r"newer than this relay's .*restore a backup"):
            await PostgresStore.connect(dsn, min_size=1, max_size=2)


async def test_a_postgresql_queue_of_migration_3_moves_into_inboxes() -> None:
    """Today's PostgreSQL queue (one row per envelope, by username) migrates and works."""
    async for dsn in pg_schema():
        await _at_postgresql_migration(dsn, 3)
        conn = await asyncpg.connect(dsn)
        for name in ("alice", "bob"):
            await conn.execute("INSERT INTO accounts VALUES ($1, 'h', NULL, 1.0)", name)
        await conn.executemany(
            "INSERT INTO envelopes (recipient, sender, eid, body, ts) VALUES ($1, $2, $3, $4, $5)",
            [("bob", "alice", f"e{i}", b"x" * (i + 1), float(i)) for i in range(3)],
        )
        await conn.execute("INSERT INTO contacts VALUES ('alice', 'bob'), ('bob', 'alice')")
        await conn.execute(
            "INSERT INTO identity_keys VALUES ('bob', 'ik', 'spk', 'kem');"
            " INSERT INTO one_time_prekeys (username, prekey) VALUES ('bob', 'o1')"
        )
        await conn.execute(
            "INSERT INTO files VALUES ('f1', 'alice', 10, '{bob}', '{}', 1, true, 5.0)"
        )
        await conn.close()
        store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
        try:
            pending = await store.pending("bob", 0, 10)
            assert [(e.sid, e.recipient, e.eid, e.body) for e in pending] == [
                (1, "bob", "e0", b"x"),
                (2, "bob", "e1", b"xx"),
                (3, "bob", "e2", b"xxx"),
            ]
            assert await store.queue_usage("bob") == (3, 6)
            again = NewEnvelope("bob", "alice", "e1", b"xx", 9.0)
            elsewhere = NewEnvelope("alice", "alice", "e2", b"xxx", 9.0)
            stored, freed = await store.write_batch([again, elsewhere], {"bob": [1]})
            assert stored == [(2, False), (0, False)] and freed == {"bob": (1, 1)}
            assert (await store.stats())["envelopes"] == 2
            bundle = await store.fetch_bundle("bob")
            assert bundle is not None and bundle.one_time_prekey == b"o1"
            assert [f.file_id for f in await store.files_of("alice")] == ["f1"]
            # A pair of contacts from before reads as two users following each other.
            assert await store.watchers_of("bob") == {"alice"}
            assert await store.watchers_of("alice") == {"bob"}
            await store.delete_account("alice")
            assert await store.pending("bob", 0, 10) == []
            assert (await store.stats())["envelopes"] == 0
        finally:
            await store.close()


async def test_a_version_1_sqlite_database_gains_the_throttle_table(tmp_path: Path) -> None:
    """A relay database written before the back-off was stored upgrades in place."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_SQLITE_V1_SCHEMA)
    old.execute("INSERT INTO accounts VALUES ('alice', x'00', NULL, 1.0)")
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    store = SQLiteStore(path)
    try:
        assert await store.get_account("alice") is not None
        assert await store.count_failure("login:fail:a:192.0.2.1", 1.0, 3600.0) == 1
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as reopened:
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_postgresql_schema_at_migration_1_gains_the_throttle_table() -> None:
    """Nodes started on a database migrated by an older relay add the table once."""
    async for dsn in pg_schema():
        await _at_postgresql_migration(dsn, 1)
        first = await asyncpg.connect(dsn)
        await first.execute("INSERT INTO accounts VALUES ('alice', 'hash', NULL, 1.0)")
        await first.close()
        upgraded = await PostgresStore.connect(dsn, min_size=1, max_size=2)
        try:
            assert await upgraded.get_account("alice") is not None
            assert await upgraded.count_failure("login:fail:a:192.0.2.1", 1.0, 3600.0) == 1
            assert await upgraded.one_time_kem_prekey_count("alice") == 0
        finally:
            await upgraded.close()


async def _at_postgresql_migration(dsn: str, version: int) -> None:
    """A database as a relay that knew migrations 1 to `version` left it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
        for number, sql in enumerate(pg_migrations.MIGRATIONS[:version], start=1):
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1)", number)
    finally:
        await conn.close()


_SQLITE_V1_SCHEMA = """
CREATE TABLE accounts (username TEXT PRIMARY KEY COLLATE NOCASE, password_hash BLOB NOT NULL,
    recovery_hash BLOB, created_at REAL NOT NULL);
CREATE TABLE sessions (token_hash BLOB PRIMARY KEY, username TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE INDEX sessions_user ON sessions(username);
CREATE TABLE reset_tokens (token_hash BLOB PRIMARY KEY, username TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE TABLE envelopes (sid INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL,
    sender TEXT NOT NULL, eid TEXT NOT NULL, body BLOB NOT NULL, ts REAL NOT NULL,
    UNIQUE (sender, eid));
CREATE INDEX envelopes_recipient ON envelopes(recipient, sid);
CREATE TABLE contacts (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE identity_keys (username TEXT PRIMARY KEY, identity BLOB NOT NULL,
    signed_prekey BLOB NOT NULL, kem_prekey BLOB NOT NULL);
CREATE TABLE one_time_prekeys (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL,
    prekey BLOB NOT NULL);
CREATE INDEX otpk_user ON one_time_prekeys(username, id);
CREATE TABLE files (file_id TEXT PRIMARY KEY, owner TEXT NOT NULL, size INTEGER NOT NULL,
    recipients TEXT NOT NULL, fetched_by TEXT NOT NULL, next_index INTEGER NOT NULL,
    complete INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE INDEX files_owner ON files(owner);
CREATE TABLE scan_cache (key BLOB PRIMARY KEY, verdict BLOB NOT NULL, expires_at REAL NOT NULL);
"""
