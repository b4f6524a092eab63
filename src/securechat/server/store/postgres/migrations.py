"""Numbered schema migrations of the PostgreSQL database.

Applied at start-up under an advisory lock, so nodes starting together
migrate once; `schema_migrations` holds the numbers applied. A database
newer than this code is refused.
"""

from __future__ import annotations

from typing import Any

from securechat.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
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
    # 4: inboxes per (user, device); a body stored once for all its deliveries.
    """
    CREATE TABLE deliveries (
        username TEXT NOT NULL,
        device INTEGER NOT NULL,
        sid BIGINT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (username, device, sid)
    );
    CREATE INDEX deliveries_sid ON deliveries (sid);
    INSERT INTO deliveries SELECT recipient, 0, sid, octet_length(body) FROM envelopes;
    ALTER TABLE envelopes DROP COLUMN recipient;
    CREATE FUNCTION deliveries_done() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM envelopes WHERE sid = OLD.sid
            AND NOT EXISTS (SELECT 1 FROM deliveries WHERE sid = OLD.sid);
        RETURN NULL;
    END $$;
    CREATE TRIGGER deliveries_done AFTER DELETE ON deliveries
        FOR EACH ROW EXECUTE FUNCTION deliveries_done();
    """,
    # 5: MLS key packages, per device: one-time ones handed out once, one last-resort each.
    """
    CREATE TABLE key_packages (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        device TEXT NOT NULL,
        key_package BYTEA NOT NULL,
        last_resort BOOLEAN NOT NULL
    );
    CREATE INDEX key_packages_device ON key_packages (username, device, last_resort, id);
    """,
    # 6: MLS groups at the delivery service; a group's deliveries share the inboxes.
    """
    ALTER TABLE envelopes ADD COLUMN grp BYTEA, ADD COLUMN kind TEXT, ADD COLUMN epoch BIGINT;
    CREATE TABLE mls_groups (
        grp BYTEA PRIMARY KEY,
        epoch BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE group_members (
        grp BYTEA NOT NULL,
        username TEXT NOT NULL,
        PRIMARY KEY (grp, username)
    );
    CREATE INDEX group_members_user ON group_members (username);
    CREATE TABLE group_commits (
        grp BYTEA NOT NULL,
        epoch BIGINT NOT NULL,
        sender TEXT NOT NULL,
        eid TEXT NOT NULL,
        body BYTEA NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (grp, epoch)
    );
    CREATE UNIQUE INDEX group_commits_eid ON group_commits (grp, sender, eid);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
"""The highest row of `schema_migrations` in a database this code has migrated."""

_MIGRATION_LOCK = 0x5EC0_C4A7


async def migrate(conn: Any) -> None:
    """Applies the missing migrations, each with its number, in one transaction."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        if done and max(done) > SCHEMA_VERSION:
            raise StoreError(
                f"the database has store schema {max(done)}, newer than this relay's "
                f"{SCHEMA_VERSION}: run the newer securechat release that wrote it, or "
                "restore a backup taken before that upgrade"
            )
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version not in done:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1)", version)
