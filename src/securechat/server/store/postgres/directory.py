"""The key directory in PostgreSQL: published prekeys, one-time prekeys handed out once."""

from __future__ import annotations

from collections.abc import Sequence

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import KeyBundle


class PostgresDirectory(PostgresBase):
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
