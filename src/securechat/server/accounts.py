"""Accounts: registration, login, session tokens, password reset, deletion.

Answers never reveal whether a username exists (registration aside, where a
taken name must be said): a missing account costs the same bcrypt work and
gets the same sentence as a wrong password.

Failed logins and resets back off per (username, address) and per address
(OWASP ASVS 2.2.1). A per-username limit catches guessing spread over many
addresses, but it must not hand the owner's account to whoever knows the
name: from an address that logged in to the user before (or resumed one of
its sessions) it only slows the login down, it never refuses it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from securechat.errors import ProtocolError
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import OPERATOR_TOKEN_PREFIX, USERNAME_PATTERN
from securechat.protocol.passwords import password_problem
from securechat.server.passwords import PasswordHasher, same_hash, token_hash
from securechat.server.ratelimit import Backoff, FailureLimiter
from securechat.server.store import (
    Account,
    AccountStore,
    QueueStore,
    SessionRecord,
    SessionStore,
    ThrottleStore,
)
from securechat.server.store_limits import StoreFailureLimiter

log = logging.getLogger("securechat.accounts")

_USERNAME = re.compile(USERNAME_PATTERN)
_LOGIN_FAILED = "wrong username or password"
_RESET_FAILED = "that reset token is not valid for this account (tokens are single use)"

TRUSTED_SLOWDOWN = 2.0
"""At most this long a login from a known address waits while its name is under attack."""


@dataclass(frozen=True, slots=True)
class IssuedSession:
    username: str
    token: str
    expires_at: float
    replaced: bool = False
    """A session this login superseded was ended: its connections must close."""


class AccountStores(AccountStore, SessionStore, ThrottleStore, QueueStore, Protocol):
    """Accounts, their sessions and login back-off; the queue only to empty a reused name."""


class AccountService:
    def __init__(
        self,
        store: AccountStores,
        hasher: PasswordHasher,
        *,
        session_ttl: float = 30 * 86400,
        reset_token_ttl: float = 30 * 60,
        clock: Callable[[], float] = time.time,
        login_limiter: FailureLimiter | None = None,
        reset_limiter: FailureLimiter | None = None,
        trusted_slowdown: float = TRUSTED_SLOWDOWN,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.session_ttl = session_ttl
        self.reset_token_ttl = reset_token_ttl
        self.clock = clock
        self.login_backoff = login_limiter or StoreFailureLimiter(store, "login", login_policy())
        self.reset_backoff = reset_limiter or StoreFailureLimiter(store, "reset", reset_policy())
        self.trusted_slowdown = trusted_slowdown
        self._sleep = sleep

    async def register(self, username: str, password: str, recovery_token: bytes) -> str:
        username = normalise_username(username)
        problem = password_problem(password, username)
        if problem:
            raise ProtocolError(ErrorCode.BAD_REQUEST, problem)
        account = Account(
            username=username,
            password_hash=await self.hasher.hash(password),
            recovery_hash=token_hash(recovery_token),
            created_at=self.clock(),
        )
        if not await self.store.create_account(account):
            raise ProtocolError(ErrorCode.CONFLICT, f"the username {username!r} is taken")
        # Envelopes addressed to this name before it existed (or to a deleted account
        # of the same name) are not for this person.
        await self.store.purge_queue(username)
        log.info("account registered")
        return username

    async def login(
        self, username: str, password: str, address: str, replaces: str | None = None
    ) -> IssuedSession:
        """`replaces` is the token the same device held before: that session ends.

        Without this, every login on a device left its previous session valid for
        its 30 days, a token nobody would use again but anyone who copied it could.
        """
        username = normalise_username(username)
        await self._check_backoff(self.login_backoff, username, address)
        account = await self.store.get_account(username)
        ok = await self.hasher.verify(password, account.password_hash if account else None)
        if not ok or account is None:
            await self._failed(self.login_backoff, username, address)
            raise ProtocolError(ErrorCode.UNAUTHORIZED, _LOGIN_FAILED)
        await self._succeeded(self.login_backoff, account.username, address)
        replaced = replaces is not None and await self._end_own_session(account.username, replaces)
        issued = await self._issue_session(account.username)
        return IssuedSession(issued.username, issued.token, issued.expires_at, replaced)

    async def _end_own_session(self, username: str, token: str) -> bool:
        """Another user's token is left alone: a login cannot end someone else's session."""
        record = await self.store.get_session(token_hash(token))
        if record is None or record.username != username:
            return False
        await self.store.delete_session(record.token_hash)
        return True

    async def resume(self, token: str, address: str) -> IssuedSession:
        """A live session vouches for its address, as a login from there would."""
        record = await self._live_session(token)
        if record is None:
            raise ProtocolError(
                ErrorCode.UNAUTHORIZED, "this session has expired or was revoked; log in again"
            )
        await self.login_backoff.remember(_pair(record.username, address), self.clock())
        return IssuedSession(record.username, token, record.expires_at)

    async def is_live(self, token: str) -> bool:
        """For connections opened before a revocation this node may not have heard of."""
        return await self._live_session(token) is not None

    async def _live_session(self, token: str) -> SessionRecord | None:
        record = await self.store.get_session(token_hash(token))
        if record is None or record.expires_at <= self.clock():
            return None
        return record

    async def logout(self, token: str) -> None:
        await self.store.delete_session(token_hash(token))

    async def issue_reset_token(self, username: str) -> str:
        """For the operator (`securechat-server reset-token`): valid 30 minutes, single use."""
        username = normalise_username(username)
        if await self.store.get_account(username) is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no account named {username!r}")
        token = OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.store.put_reset_token(
            username, token_hash(token), self.clock() + self.reset_token_ttl
        )
        return token

    async def reset_password(
        self,
        username: str,
        token: str,
        new_password: str,
        new_recovery_token: bytes | None,
        address: str,
    ) -> None:
        """Consumes the token, sets the password and revokes every session."""
        username = normalise_username(username)
        await self._check_backoff(self.reset_backoff, username, address)
        problem = password_problem(new_password, username)
        if problem:
            raise ProtocolError(ErrorCode.BAD_REQUEST, problem)
        now = self.clock()
        account = await self.store.get_account(username)
        recovery_hash: bytes | None = None
        valid = False
        if account is not None and token.startswith(OPERATOR_TOKEN_PREFIX):
            valid = await self.store.consume_reset_token(username, token_hash(token), now)
        elif account is not None:
            presented = _recovery_bytes(token)
            if presented is not None and same_hash(account.recovery_hash, token_hash(presented)):
                if new_recovery_token is None:
                    raise ProtocolError(
                        ErrorCode.BAD_REQUEST,
                        "a recovery code is single use: send a new recovery token with the reset",
                    )
                valid = True
                recovery_hash = token_hash(new_recovery_token)
        if not valid or account is None:
            await self._failed(self.reset_backoff, username, address)
            raise ProtocolError(ErrorCode.UNAUTHORIZED, _RESET_FAILED)
        await self._succeeded(self.reset_backoff, account.username, address)
        password_hash = await self.hasher.hash(new_password)
        await self.store.update_password(account.username, password_hash, recovery_hash)
        await self.store.delete_sessions_of(account.username)
        log.info("password reset")

    async def verify_password(self, username: str, password: str, address: str) -> None:
        """Re-authentication before destructive actions (account deletion)."""
        await self._check_backoff(self.login_backoff, username, address)
        account = await self.store.get_account(username)
        if account is None or not await self.hasher.verify(password, account.password_hash):
            await self._failed(self.login_backoff, username, address)
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "wrong password")

    async def _issue_session(self, username: str) -> IssuedSession:
        token = secrets.token_urlsafe(32)
        expires_at = self.clock() + self.session_ttl
        await self.store.put_session(SessionRecord(token_hash(token), username, expires_at))
        return IssuedSession(username, token, expires_at)

    async def _check_backoff(self, backoff: FailureLimiter, username: str, address: str) -> None:
        """Refuses while this pair or this address is locked; the name's lock only slows a
        known address (one that logged in to the user, or resumed its session, lately)."""
        now = self.clock()
        wait = max(
            await backoff.retry_after(_pair(username, address), now),
            await backoff.retry_after("a:" + address, now),
        )
        if wait > 0:
            raise RateLimited(wait)
        name_wait = await backoff.retry_after("u:" + username, now)
        if name_wait <= 0:
            return
        if not await self.login_backoff.remembered(_pair(username, address), now):
            raise RateLimited(name_wait)
        await self._sleep(min(name_wait, self.trusted_slowdown))

    async def _failed(self, backoff: FailureLimiter, username: str, address: str) -> None:
        now = self.clock()
        for key in (_pair(username, address), "a:" + address, "u:" + username):
            await backoff.failed(key, now)

    async def _succeeded(self, backoff: FailureLimiter, username: str, address: str) -> None:
        """The owner got in: their own typos are forgotten and this address is known.

        The address's count stays: an attacker could clear it by logging in to an
        account of their own between guesses.
        """
        await backoff.succeeded(_pair(username, address))
        await backoff.succeeded("u:" + username)
        await self.login_backoff.remember(_pair(username, address), self.clock())


class RateLimited(ProtocolError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(
            ErrorCode.RATE_LIMITED, f"too many failed attempts; try again in {retry_after:.0f} s"
        )
        self.retry_after = retry_after


def login_policy() -> Backoff:
    """5 free failures, then 1 s doubling up to 15 minutes."""
    return Backoff()


def reset_policy() -> Backoff:
    """Resets are rarer than logins: 3 free failures, then 5 s doubling."""
    return Backoff(free=3, base=5.0)


def _pair(username: str, address: str) -> str:
    """Usernames cannot hold '|', so no pair collides with another."""
    return f"ua:{username}|{address}"


def normalise_username(username: str) -> str:
    lowered = username.strip().lower()
    if not _USERNAME.match(lowered):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "a username is 3-32 characters of a-z, 0-9, '_', '.' or '-'"
        )
    return lowered


def _recovery_bytes(token: str) -> bytes | None:
    try:
        raw = bytes.fromhex(token)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None
