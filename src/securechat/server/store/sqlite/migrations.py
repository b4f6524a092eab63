"""Numbered schema migrations of the SQLite file, like PostgreSQL's.

`PRAGMA user_version` is the number of the last one applied. Each runs in
its own transaction with the version it sets, so a crash leaves the file at
one version or the next. A file newer than this code is refused, never
written: an older relay would drop what it does not know.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from securechat.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema. IF NOT EXISTS: files from before the numbering hold parts of it.
    """
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
    """,
    # 2: login back-off that survives a restart.
    """
    CREATE TABLE IF NOT EXISTS throttle (
        key TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        locked_until REAL NOT NULL,
        last REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: inboxes per (user, device); a body stored once for all its deliveries. The
    # one-time ML-KEM prekeys arrived without a number: a file at 1 or 2 may lack them.
    """
    CREATE TABLE IF NOT EXISTS one_time_kem_prekeys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        prekey BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS otkem_user ON one_time_kem_prekeys(username, id);
    CREATE TABLE deliveries (
        username TEXT NOT NULL,
        device INTEGER NOT NULL,
        sid INTEGER NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (username, device, sid)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_sid ON deliveries(sid);
    INSERT INTO deliveries SELECT recipient, 0, sid, LENGTH(body) FROM envelopes;
    DROP INDEX envelopes_recipient;
    ALTER TABLE envelopes DROP COLUMN recipient;
    CREATE TRIGGER deliveries_done AFTER DELETE ON deliveries
    WHEN NOT EXISTS (SELECT 1 FROM deliveries WHERE sid = OLD.sid)
    BEGIN
        DELETE FROM envelopes WHERE sid = OLD.sid;
    END;
    """,
    # 4: MLS key packages, per device: one-time ones handed out once, one last-resort each.
    """
    CREATE TABLE key_packages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        device TEXT NOT NULL,
        key_package BLOB NOT NULL,
        last_resort INTEGER NOT NULL
    );
    CREATE INDEX key_packages_device ON key_packages(username, device, last_resort, id);
    """,
    # 5: MLS groups at the delivery service; a group's deliveries share the inboxes.
    """
    ALTER TABLE envelopes ADD COLUMN grp BLOB;
    ALTER TABLE envelopes ADD COLUMN kind TEXT;
    ALTER TABLE envelopes ADD COLUMN epoch INTEGER;
    CREATE TABLE mls_groups (
        grp BLOB PRIMARY KEY,
        epoch INTEGER NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE group_members (
        grp BLOB NOT NULL,
        username TEXT NOT NULL,
        PRIMARY KEY (grp, username)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_user ON group_members(username);
    CREATE TABLE group_commits (
        grp BLOB NOT NULL,
        epoch INTEGER NOT NULL,
        sender TEXT NOT NULL,
        eid TEXT NOT NULL,
        body BLOB NOT NULL,
        ts REAL NOT NULL,
        PRIMARY KEY (grp, epoch)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX group_commits_eid ON group_commits(grp, sender, eid);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
"""What `PRAGMA user_version` says of a file this code has migrated."""


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Brings the file to `SCHEMA_VERSION`, one numbered step at a time."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has store schema {version}, newer than this relay's {SCHEMA_VERSION}: "
            "run the newer securechat release that wrote it, or restore a backup taken "
            "before that upgrade"
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        try:
            db.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[number - 1]}; PRAGMA user_version={number}; COMMIT;"
            )
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
