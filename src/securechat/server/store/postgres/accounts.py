"""Accounts, login sessions and reset tokens in PostgreSQL."""

from __future__ import annotations

import asyncpg

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import Account, SessionRecord
from securechat.server.store.schema import DEFAULT_DEVICE


class PostgresAccounts(PostgresBase):
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
                await conn.execute(
                    "DELETE FROM deliveries WHERE username = $1 AND device = $2",
                    account.username,
                    DEFAULT_DEVICE,
                )
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

    # sessions and reset tokens ---------------------------------------------------------------

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
