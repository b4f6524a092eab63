"""Failed-login back-off (`throttle`) and the link scan cache in the SQLite file."""

from __future__ import annotations

from securechat.server.store.records import Throttle
from securechat.server.store.sqlite.base import GUARD, SQLiteBase


class SQLiteLimits(SQLiteBase):
    async def get_throttle(self, key: str) -> Throttle | None:
        with GUARD:
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

    # scan cache -------------------------------------------------------------------

    async def get_scan(self, key: bytes, now: float) -> bytes | None:
        with GUARD:
            row = self._db.execute(
                "SELECT verdict FROM scan_cache WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
        return bytes(row[0]) if row else None

    async def put_scan(self, key: bytes, verdict: bytes, expires_at: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO scan_cache VALUES (?, ?, ?)", (key, verdict, expires_at)
            )
