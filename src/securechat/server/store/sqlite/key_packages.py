"""MLS key packages in the SQLite file: one-time ones handed out once, a last-resort one kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from securechat.server.store.records import HandedKeyPackage
from securechat.server.store.sqlite.base import GUARD, SQLiteBase


def _one_time_left(db: sqlite3.Connection, username: str, device: str) -> int:
    row = db.execute(
        "SELECT COUNT(*) FROM key_packages WHERE username = ? AND device = ? AND NOT last_resort",
        (username, device),
    ).fetchone()
    return int(row[0])


class SQLiteKeyPackages(SQLiteBase):
    async def publish_key_packages(
        self,
        username: str,
        device: str,
        key_packages: Sequence[bytes],
        last_resort: bytes | None,
        *,
        replace: bool = False,
    ) -> int:
        with self._tx() as db:
            if replace:
                db.execute(
                    "DELETE FROM key_packages WHERE username = ? AND device = ?"
                    " AND NOT last_resort",
                    (username, device),
                )
            if last_resort is not None:
                db.execute(
                    "DELETE FROM key_packages WHERE username = ? AND device = ? AND last_resort",
                    (username, device),
                )
                db.execute(
                    "INSERT INTO key_packages (username, device, key_package, last_resort)"
                    " VALUES (?, ?, ?, 1)",
                    (username, device, last_resort),
                )
            db.executemany(
                "INSERT INTO key_packages (username, device, key_package, last_resort)"
                " VALUES (?, ?, ?, 0)",
                [(username, device, package) for package in key_packages],
            )
            return _one_time_left(db, username, device)

    async def fetch_key_packages(self, usernames: Sequence[str]) -> list[HandedKeyPackage]:
        """This process is the file's only writer: one transaction hands each package once."""
        handed: list[HandedKeyPackage] = []
        with self._tx() as db:
            for username in dict.fromkeys(usernames):
                devices = db.execute(
                    "SELECT DISTINCT device FROM key_packages WHERE username = ? ORDER BY device",
                    (username,),
                ).fetchall()
                for (device,) in devices:
                    row = db.execute(
                        "SELECT id, key_package, last_resort FROM key_packages"
                        " WHERE username = ? AND device = ? ORDER BY last_resort, id LIMIT 1",
                        (username, device),
                    ).fetchone()
                    if not row[2]:
                        db.execute("DELETE FROM key_packages WHERE id = ?", (row[0],))
                    left = _one_time_left(db, username, device)
                    handed.append(
                        HandedKeyPackage(username, device, bytes(row[1]), bool(row[2]), left)
                    )
        return handed

    async def key_package_counts(self, username: str) -> dict[str, int]:
        with GUARD:
            rows = self._db.execute(
                "SELECT device, SUM(NOT last_resort) FROM key_packages WHERE username = ?"
                " GROUP BY device",
                (username,),
            ).fetchall()
        return {device: int(count) for device, count in rows}
