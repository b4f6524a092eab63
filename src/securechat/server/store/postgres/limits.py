"""Failed-login back-off (`throttle`) and the link scan cache in PostgreSQL."""

from __future__ import annotations

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import Throttle


class PostgresLimits(PostgresBase):
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
