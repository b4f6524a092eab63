"""Accounts, login sessions and reset tokens in the SQLite file."""

from __future__ import annotations

import sqlite3

from securechat.server.store.records import Account, SessionRecord
from securechat.server.store.schema import DEFAULT_DEVICE
from securechat.server.store.sqlite.base import GUARD, SQLiteBase


class SQLiteAccounts(SQLiteBase):
    async def create_account(self, account: Account) -> bool:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO accounts VALUES (?, ?, ?, ?)",
                    (
                        account.username,
                        account.password_hash,
                        account.recovery_hash,
                        account.created_at,
                    ),
                )
                # Left by an earlier account of the same name (sent while it was being
                # deleted): never the new owner's.
                db.execute(
                    "DELETE FROM deliveries WHERE username = ? AND device = ?",
                    (account.username, DEFAULT_DEVICE),
                )
                self._inbox_emptied(account.username)
        except sqlite3.IntegrityError:
            return False
        return True

    async def get_account(self, username: str) -> Account | None:
        with GUARD:
            row = self._db.execute(
                "SELECT username, password_hash, recovery_hash, created_at FROM accounts"
                " WHERE username = ?",
                (username,),
            ).fetchone()
        return Account(*row) if row else None

    async def update_password(
        self, username: str, password_hash: bytes, recovery_hash: bytes | None
    ) -> None:
        with self._tx() as db:
            if recovery_hash is None:
                db.execute(
                    "UPDATE accounts SET password_hash = ? WHERE username = ?",
                    (password_hash, username),
                )
            else:
                db.execute(
                    "UPDATE accounts SET password_hash = ?, recovery_hash = ? WHERE username = ?",
                    (password_hash, recovery_hash, username),
                )

    # sessions and reset tokens ----------------------------------------------------

    async def put_session(self, session: SessionRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)",
                (session.token_hash, session.username, session.expires_at),
            )

    async def get_session(self, token_hash: bytes) -> SessionRecord | None:
        with GUARD:
            row = self._db.execute(
                "SELECT token_hash, username, expires_at FROM sessions WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        return SessionRecord(*row) if row else None

    async def delete_session(self, token_hash: bytes) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    async def delete_sessions_of(self, username: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))

    async def put_reset_token(self, username: str, token_hash: bytes, expires_at: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO reset_tokens VALUES (?, ?, ?)",
                (token_hash, username, expires_at),
            )

    async def consume_reset_token(self, username: str, token_hash: bytes, now: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM reset_tokens WHERE token_hash = ? AND username = ? AND expires_at > ?",
                (token_hash, username, now),
            )
            db.execute("DELETE FROM reset_tokens WHERE expires_at <= ?", (now,))
            return cur.rowcount == 1
