"""The PostgreSQL database the other modules of this package share: the pool, errors, operations.

Every write that the relay acknowledges is committed first, as with SQLite.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

import asyncpg

from securechat.errors import StorageFullError, StoreError
from securechat.server.store.postgres.migrations import migrate
from securechat.server.store.schema import COUNTED, USER_ROWS


class PostgresBase:
    answers_at_once = False

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Self:
        """A store on a new pool, its schema migrated."""
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        store = cls(pool)
        await store.migrate()
        return store

    async def migrate(self) -> None:
        async with self._pool.acquire() as conn:
            await migrate(conn)

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

    async def delete_account(self, username: str) -> None:
        """Removes every row `schema.USER_ROWS` says the user owns, in one transaction."""
        async with self._conn(transaction=True) as conn:
            for rows in USER_ROWS:
                await conn.execute(f"DELETE FROM {rows.table} WHERE {rows.where}", username)  # noqa: S608

    async def stats(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self._conn() as conn:
            for table in COUNTED:
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
