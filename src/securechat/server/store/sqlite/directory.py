"""The key directory in the SQLite file: published prekeys, one-time prekeys handed out once."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from securechat.server.store.records import KeyBundle
from securechat.server.store.sqlite.base import GUARD, SQLiteBase

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


class SQLiteDirectory(SQLiteBase):
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
        with GUARD:
            row = self._db.execute(
                "SELECT COUNT(*) FROM one_time_kem_prekeys WHERE username = ?", (username,)
            ).fetchone()
        return int(row[0])

    async def one_time_prekey_count(self, username: str) -> int:
        with GUARD:
            row = self._db.execute(
                "SELECT COUNT(*) FROM one_time_prekeys WHERE username = ?", (username,)
            ).fetchone()
        return int(row[0])
