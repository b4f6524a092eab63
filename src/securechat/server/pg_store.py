"""`Store` on PostgreSQL, for several relay nodes sharing one database.

Schema changes are numbered migrations applied at start-up under an advisory
lock, so nodes starting together migrate once. Every write that the relay
acknowledges is committed first, as with SQLite.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

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

MIGRATIONS: list[str] = [
    """
    CREATE TABLE accounts (
        username TEXT PRIMARY KEY,
        password_hash BYTEA NOT NULL,
        recovery_hash BYTEA,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE UNIQUE INDEX accounts_lower ON accounts (lower(username));
    CREATE TABLE sessions (
        token_hash BYTEA PRIMARY KEY,
        username TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (username);
    CREATE TABLE reset_tokens (
        token_hash BYTEA PRIMARY KEY,
        username TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE envelopes (
        sid BIGSERIAL PRIMARY KEY,
        recipient TEXT NOT NULL,
        sender TEXT NOT NULL,
        eid TEXT NOT NULL,
        body BYTEA NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        UNIQUE (sender, eid)
    );
    CREATE INDEX envelopes_recipient ON envelopes (recipient, sid);
    CREATE TABLE contacts (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b));
    CREATE TABLE identity_keys (
        username TEXT PRIMARY KEY,
        identity BYTEA NOT NULL,
        signed_prekey BYTEA NOT NULL,
        kem_prekey BYTEA NOT NULL
    );
    CREATE TABLE one_time_prekeys (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        prekey BYTEA NOT NULL
    );
    CREATE INDEX otpk_user ON one_time_prekeys (username, id);
    CREATE TABLE files (
        file_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        size BIGINT NOT NULL,
        recipients TEXT[] NOT NULL,
        fetched_by TEXT[] NOT NULL,
        next_index INTEGER NOT NULL,
        complete BOOLEAN NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX files_owner ON files (owner);
    CREATE TABLE scan_cache (
        key BYTEA PRIMARY KEY,
        verdict BYTEA NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: login back-off that survives a restart (a node without Redis keeps it here).
    """
    CREATE TABLE throttle (
        key TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        locked_until DOUBLE PRECISION NOT NULL,
        last DOUBLE PRECISION NOT NULL
    );
    """,
    # 3: one-time ML-KEM prekeys, handed out once like the X25519 ones.
    """
    CREATE TABLE one_time_kem_prekeys (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        prekey BYTEA NOT NULL
    );
    CREATE INDEX otkem_user ON one_time_kem_prekeys (username, id);
    """,
]

_MIGRATION_LOCK = 0x5EC0_C4A7

_COMMIT_BATCH = """
WITH new AS (
    INSERT INTO envelopes (recipient, sender, eid, body, ts)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::float8[])
    ON CONFLICT (sender, eid) DO NOTHING
    RETURNING sid, sender, eid
), pairs AS (
    INSERT INTO contacts SELECT * FROM unnest($6::text[], $7::text[]) ON CONFLICT DO NOTHING
), freed AS (
    DELETE FROM envelopes e USING unnest($8::text[], $9::bigint[]) AS x(recipient, sid)
    WHERE e.recipient = x.recipient AND e.sid = x.sid
    RETURNING e.recipient, octet_length(e.body) AS length
)
SELECT sid, sender, eid, NULL::text AS recipient, NULL::int AS length FROM new
UNION ALL
SELECT NULL, NULL, NULL, recipient, length FROM freed
"""
"""`commit_batch` in one statement: new envelopes, their contact pairs, acknowledged ones."""


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        store = cls(pool)
        await store.migrate()
        return store

    async def migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            if done and max(done) > len(MIGRATIONS):
                raise StoreError(
                    f"the database schema ({max(done)}) is newer than this relay; upgrade it"
                )
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version not in done:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1)", version)

    @asynccontextmanager
    async def _conn(self, transaction: bool = False) -> AsyncIterator[Any]:
        try:
            async with self._pool.acquire() as conn:
                if transaction:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except asyncpg.DiskFullError as exc:
            raise StorageFullError("the database is out of space") from exc
        except asyncpg.ReadOnlySQLTransactionError as exc:
            raise StorageFullError("the database is read-only") from exc
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"PostgreSQL is unreachable: {exc}") from exc

    # accounts -------------------------------------------------------------------

    async def create_account(self, account: Account) -> bool:
        try:
            async with self._conn(transaction=True) as conn:
                await conn.execute(
                    "INSERT INTO accounts VALUES ($1, $2, $3, $4)",
                    account.username,
                    account.password_hash,
                    account.recovery_hash,
                    account.created_at,
                )
                # Left by an earlier account of the same name (sent while it was being
                # deleted): never the new owner's.
                await conn.execute("DELETE FROM envelopes WHERE recipient = $1", account.username)
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def get_account(self, username: str) -> Account | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT username, password_hash, recovery_hash, created_at FROM accounts"
                " WHERE lower(username) = lower($1)",
                username,
            )
        return Account(*row) if row else None

    async def update_password(
        self, username: str, password_hash: bytes, recovery_hash: bytes | None
    ) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE accounts SET password_hash = $2,"
                " recovery_hash = COALESCE($3, recovery_hash) WHERE username = $1",
                username,
                password_hash,
                recovery_hash,
            )

    async def delete_account(self, username: str) -> None:
        async with self._conn(transaction=True) as conn:
            for sql in (
                "DELETE FROM accounts WHERE username = $1",
                "DELETE FROM sessions WHERE username = $1",
                "DELETE FROM reset_tokens WHERE username = $1",
                "DELETE FROM envelopes WHERE recipient = $1 OR sender = $1",
                "DELETE FROM contacts WHERE a = $1 OR b = $1",
                "DELETE FROM identity_keys WHERE username = $1",
                "DELETE FROM one_time_prekeys WHERE username = $1",
                "DELETE FROM one_time_kem_prekeys WHERE username = $1",
                "DELETE FROM files WHERE owner = $1",
            ):
                await conn.execute(sql, username)

    # sessions -------------------------------------------------------------------

    async def put_session(self, session: SessionRecord) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO sessions VALUES ($1, $2, $3) ON CONFLICT (token_hash)"
                " DO UPDATE SET username = $2, expires_at = $3",
                session.token_hash,
                session.username,
                session.expires_at,
            )

    async def get_session(self, token_hash: bytes) -> SessionRecord | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT token_hash, username, expires_at FROM sessions WHERE token_hash = $1",
                token_hash,
            )
        return SessionRecord(*row) if row else None

    async def delete_session(self, token_hash: bytes) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def delete_sessions_of(self, username: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM sessions WHERE username = $1", username)

    async def put_reset_token(self, username: str, token_hash: bytes, expires_at: float) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO reset_tokens VALUES ($1, $2, $3) ON CONFLICT (token_hash)"
                " DO UPDATE SET username = $2, expires_at = $3",
                token_hash,
                username,
                expires_at,
            )

    async def consume_reset_token(self, username: str, token_hash: bytes, now: float) -> bool:
        async with self._conn(transaction=True) as conn:
            deleted = await conn.fetchval(
                "DELETE FROM reset_tokens WHERE token_hash = $1 AND username = $2"
                " AND expires_at > $3 RETURNING 1",
                token_hash,
                username,
                now,
            )
            await conn.execute("DELETE FROM reset_tokens WHERE expires_at <= $1", now)
        return bool(deleted == 1)

    # failed-login back-off ------------------------------------------------------

    async def get_throttle(self, key: str) -> Throttle | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT count, locked_until, last FROM throttle WHERE key = $1", key
            )
        return Throttle(*row) if row else None

    async def count_failure(self, key: str, now: float, forget: float) -> int:
        async with self._conn() as conn:
            count = await conn.fetchval(
                "INSERT INTO throttle VALUES ($1, 1, 0, $2) ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN $2 - throttle.last > $3 THEN 1 ELSE throttle.count + 1 END,"
                " last = $2 RETURNING count",
                key,
                now,
                forget,
            )
        return int(count)

    async def put_throttle(self, key: str, throttle: Throttle) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO throttle VALUES ($1, $2, $3, $4) ON CONFLICT (key)"
                " DO UPDATE SET count = $2, locked_until = $3, last = $4",
                key,
                throttle.count,
                throttle.locked_until,
                throttle.last,
            )

    async def delete_throttle(self, key: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM throttle WHERE key = $1", key)

    async def expire_throttle(self, before: float) -> int:
        async with self._conn() as conn:
            done = await conn.execute("DELETE FROM throttle WHERE last < $1", before)
        return int(done.split()[-1])

    # relay queue ----------------------------------------------------------------

    async def reserve_sid(self, sender: str, eid: str) -> None:
        """Nodes share the sequence: a sid is known only once the envelope is stored."""
        return None

    async def enqueue(self, envelopes: Sequence[NewEnvelope]) -> list[int]:
        stored, _ = await self.commit_batch(envelopes, {})
        return [sid for sid, _ in stored]

    async def commit_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
        acknowledged: Sequence[NewEnvelope] = (),
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        """The group commit as ONE statement: one round trip, one implicit transaction.

        Inserts, contact rows and deletions travel as arrays (`unnest`) in one
        statement of data-modifying CTEs instead of a statement per envelope,
        per recipient and per pair inside BEGIN ... COMMIT: a round trip each
        was most of a PostgreSQL node's time per message.
        """
        # Nothing is acknowledged before its commit here: reserve_sid gives no sids.
        one_way = {(e.sender, e.recipient) for e in envelopes}
        # Sorted: two nodes inserting the same pairs take their row locks in one order.
        pairs = sorted(one_way | {(b, a) for a, b in one_way})
        gone = [(recipient, sid) for recipient, sids in acks.items() for sid in sids]
        if not envelopes and not gone:
            return [], {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                _COMMIT_BATCH,
                [e.recipient for e in envelopes],
                [e.sender for e in envelopes],
                [e.eid for e in envelopes],
                [e.body for e in envelopes],
                [e.ts for e in envelopes],
                [a for a, _ in pairs],
                [b for _, b in pairs],
                [recipient for recipient, _ in gone],
                [sid for _, sid in gone],
            )
            inserted: dict[tuple[str, str], int] = {}
            freed: dict[str, tuple[int, int]] = {}
            for row in rows:
                if row["sid"] is not None:
                    inserted[(row["sender"], row["eid"])] = int(row["sid"])
                else:
                    count, size = freed.get(row["recipient"], (0, 0))
                    freed[row["recipient"]] = (count + 1, size + int(row["length"]))
            stored: list[tuple[int, bool]] = []
            again: list[int] = []
            for i, env in enumerate(envelopes):
                sid = inserted.pop((env.sender, env.eid), None)
                stored.append((sid or 0, sid is not None))
                if sid is None:
                    again.append(i)
            if again:
                await self._resent(conn, envelopes, again, stored)
        return stored, freed

    @staticmethod
    async def _resent(
        conn: Any,
        envelopes: Sequence[NewEnvelope],
        again: list[int],
        stored: list[tuple[int, bool]],
    ) -> None:
        """Sids of re-sent envelopes, already stored by an earlier commit (0: the id was
        used for another recipient). Rare: read after the commit, the first copy is there."""
        rows = await conn.fetch(
            "SELECT x.i, e.sid FROM unnest($1::int[], $2::text[], $3::text[], $4::text[])"
            " AS x(i, sender, eid, recipient) JOIN envelopes e ON e.sender = x.sender"
            " AND e.eid = x.eid AND e.recipient = x.recipient",
            again,
            [envelopes[i].sender for i in again],
            [envelopes[i].eid for i in again],
            [envelopes[i].recipient for i in again],
        )
        for row in rows:
            stored[row["i"]] = (int(row["sid"]), False)

    async def pending(self, recipient: str, after_sid: int, limit: int) -> list[StoredEnvelope]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT sid, recipient, sender, eid, body, ts FROM envelopes"
                " WHERE recipient = $1 AND sid > $2 ORDER BY sid LIMIT $3",
                recipient,
                after_sid,
                limit,
            )
        return [StoredEnvelope(*row) for row in rows]

    async def envelopes(self, recipient: str, sids: Sequence[int]) -> list[StoredEnvelope]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT sid, recipient, sender, eid, body, ts FROM envelopes"
                " WHERE recipient = $1 AND sid = ANY($2::bigint[]) ORDER BY sid",
                recipient,
                list(sids),
            )
        return [StoredEnvelope(*row) for row in rows]

    async def ack(self, recipient: str, sids: Sequence[int]) -> int:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM envelopes WHERE recipient = $1 AND sid = ANY($2::bigint[])"
                " RETURNING sid",
                recipient,
                list(sids),
            )
        return len(rows)

    async def queue_usage(self, recipient: str) -> tuple[int, int] | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = $1),"
                " COUNT(*), COALESCE(SUM(octet_length(body)), 0) FROM envelopes"
                " WHERE recipient = $1",
                recipient,
            )
        return (int(row[1]), int(row[2])) if row[0] else None

    async def expire_envelopes(self, before: float) -> int:
        async with self._conn() as conn:
            rows = await conn.fetch("DELETE FROM envelopes WHERE ts < $1 RETURNING sid", before)
        return len(rows)

    async def purge_queue(self, recipient: str) -> int:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "DELETE FROM envelopes WHERE recipient = $1 RETURNING sid", recipient
            )
        return len(rows)

    async def delete_conversation(self, user: str, peer: str) -> int:
        async with self._conn(transaction=True) as conn:
            rows = await conn.fetch(
                "DELETE FROM envelopes WHERE (recipient = $1 AND sender = $2)"
                " OR (recipient = $2 AND sender = $1) RETURNING sid",
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
        async with self._conn(transaction=True) as conn:
            await conn.execute(
                "INSERT INTO identity_keys VALUES ($1, $2, $3, $4) ON CONFLICT (username)"
                " DO UPDATE SET identity = $2, signed_prekey = $3, kem_prekey = $4",
                username,
                identity,
                signed_prekey,
                kem_prekey,
            )
            for table, keys in (
                ("one_time_prekeys", one_time_prekeys),
                ("one_time_kem_prekeys", one_time_kem_prekeys),
            ):
                if replace_one_time:
                    await conn.execute(f"DELETE FROM {table} WHERE username = $1", username)  # noqa: S608
                await conn.executemany(
                    f"INSERT INTO {table} (username, prekey) VALUES ($1, $2)",  # noqa: S608
                    [(username, key) for key in keys],
                )
            count = await conn.fetchval(
                "SELECT COUNT(*) FROM one_time_prekeys WHERE username = $1", username
            )
        return int(count)

    async def fetch_bundle(self, username: str) -> KeyBundle | None:
        async with self._conn(transaction=True) as conn:
            row = await conn.fetchrow(
                "SELECT identity, signed_prekey, kem_prekey FROM identity_keys WHERE username = $1",
                username,
            )
            if row is None:
                return None
            # SKIP LOCKED: two nodes fetching at once never hand out the same prekey.
            otpk, otkem = [
                await conn.fetchval(
                    f"DELETE FROM {table} WHERE id = (SELECT id FROM {table}"  # noqa: S608
                    " WHERE username = $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                    " RETURNING prekey",
                    username,
                )
                for table in ("one_time_prekeys", "one_time_kem_prekeys")
            ]
        return KeyBundle(row[0], row[1], row[2], otpk, otkem)

    async def one_time_kem_prekey_count(self, username: str) -> int:
        async with self._conn() as conn:
            return int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM one_time_kem_prekeys WHERE username = $1", username
                )
            )

    async def one_time_prekey_count(self, username: str) -> int:
        async with self._conn() as conn:
            return int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM one_time_prekeys WHERE username = $1", username
                )
            )

    # files ----------------------------------------------------------------------

    _FILE_COLUMNS = "file_id, owner, size, recipients, fetched_by, next_index, complete, created_at"

    async def create_file(self, record: FileRecord) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO files VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                record.file_id,
                record.owner,
                record.size,
                sorted(record.recipients),
                sorted(record.fetched_by),
                record.next_index,
                record.complete,
                record.created_at,
            )

    async def get_file(self, file_id: str) -> FileRecord | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE file_id = $1",
                file_id,
            )
        return _file_record(row) if row else None

    async def set_file_progress(self, file_id: str, next_index: int, complete: bool) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE files SET next_index = $2, complete = $3 WHERE file_id = $1",
                file_id,
                next_index,
                complete,
            )

    async def mark_file_fetched(self, file_id: str, username: str) -> FileRecord | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "UPDATE files SET fetched_by ="
                " array(SELECT DISTINCT unnest(fetched_by || $2::text))"
                " WHERE file_id = $1 RETURNING file_id, owner, size, recipients, fetched_by,"
                " next_index, complete, created_at",
                file_id,
                username,
            )
        return _file_record(row) if row else None

    async def delete_file(self, file_id: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM files WHERE file_id = $1", file_id)

    async def files_of(self, username: str) -> list[FileRecord]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE owner = $1",
                username,
            )
        return [_file_record(row) for row in rows]

    async def expired_files(self, before: float) -> list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT file_id FROM files WHERE created_at < $1", before)
        return [row[0] for row in rows]

    async def storage_used(self, username: str) -> tuple[int, int]:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE owner = $1", username
            )
        return int(row[0]), int(row[1])

    # scan cache -----------------------------------------------------------------

    async def get_scan(self, key: bytes, now: float) -> bytes | None:
        async with self._conn() as conn:
            value = await conn.fetchval(
                "SELECT verdict FROM scan_cache WHERE key = $1 AND expires_at > $2", key, now
            )
        return bytes(value) if value is not None else None

    async def put_scan(self, key: bytes, verdict: bytes, expires_at: float) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO scan_cache VALUES ($1, $2, $3) ON CONFLICT (key)"
                " DO UPDATE SET verdict = $2, expires_at = $3",
                key,
                verdict,
                expires_at,
            )

    # operations -----------------------------------------------------------------

    async def stats(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self._conn() as conn:
            for table in ("accounts", "sessions", "envelopes", "one_time_prekeys", "files"):
                counts[table] = int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608
            counts["live_sessions"] = int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at > $1", time.time()
                )
            )
        return counts

    async def checkpoint(self) -> None:
        """PostgreSQL checkpoints on its own."""

    async def ping(self) -> None:
        async with self._conn(transaction=True) as conn:
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        await self._pool.close()


def _file_record(row: Any) -> FileRecord:
    return FileRecord(
        file_id=row["file_id"],
        owner=row["owner"],
        size=int(row["size"]),
        recipients=frozenset(row["recipients"]),
        fetched_by=frozenset(row["fetched_by"]),
        next_index=int(row["next_index"]),
        complete=bool(row["complete"]),
        created_at=float(row["created_at"]),
    )
