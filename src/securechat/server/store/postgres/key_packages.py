"""MLS key packages in PostgreSQL: one-time ones handed out once, a last-resort one kept."""

from __future__ import annotations

from collections.abc import Sequence

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import HandedKeyPackage

_TAKE_ONE_TIME = """
DELETE FROM key_packages WHERE id = (
    SELECT id FROM key_packages WHERE username = $1 AND device = $2 AND NOT last_resort
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
) RETURNING key_package
"""
"""SKIP LOCKED: two nodes fetching at once take two different packages, never one twice."""

_ONE_TIME_LEFT = (
    "SELECT COUNT(*) FROM key_packages WHERE username = $1 AND device = $2 AND NOT last_resort"
)


class PostgresKeyPackages(PostgresBase):
    async def publish_key_packages(
        self,
        username: str,
        device: str,
        key_packages: Sequence[bytes],
        last_resort: bytes | None,
        *,
        replace: bool = False,
    ) -> int:
        async with self._conn(transaction=True) as conn:
            if replace:
                await conn.execute(
                    "DELETE FROM key_packages WHERE username = $1 AND device = $2"
                    " AND NOT last_resort",
                    username,
                    device,
                )
            if last_resort is not None:
                await conn.execute(
                    "DELETE FROM key_packages WHERE username = $1 AND device = $2 AND last_resort",
                    username,
                    device,
                )
                await conn.execute(
                    "INSERT INTO key_packages (username, device, key_package, last_resort)"
                    " VALUES ($1, $2, $3, TRUE)",
                    username,
                    device,
                    last_resort,
                )
            await conn.executemany(
                "INSERT INTO key_packages (username, device, key_package, last_resort)"
                " VALUES ($1, $2, $3, FALSE)",
                [(username, device, package) for package in key_packages],
            )
            return int(await conn.fetchval(_ONE_TIME_LEFT, username, device))

    async def fetch_key_packages(self, usernames: Sequence[str]) -> list[HandedKeyPackage]:
        handed: list[HandedKeyPackage] = []
        async with self._conn(transaction=True) as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT username, device FROM key_packages"
                " WHERE username = ANY($1::text[]) ORDER BY username, device",
                list(dict.fromkeys(usernames)),
            )
            for username, device in rows:
                package = await conn.fetchval(_TAKE_ONE_TIME, username, device)
                last_resort = package is None
                if last_resort:
                    package = await conn.fetchval(
                        "SELECT key_package FROM key_packages"
                        " WHERE username = $1 AND device = $2 AND last_resort",
                        username,
                        device,
                    )
                    if package is None:
                        continue  # its last one-time package went to another fetcher just now
                left = int(await conn.fetchval(_ONE_TIME_LEFT, username, device))
                handed.append(HandedKeyPackage(username, device, package, last_resort, left))
        return handed

    async def key_package_counts(self, username: str) -> dict[str, int]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT device, COUNT(*) FILTER (WHERE NOT last_resort) FROM key_packages"
                " WHERE username = $1 GROUP BY device",
                username,
            )
        return {device: int(count) for device, count in rows}
