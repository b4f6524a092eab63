"""Password hashing: bcrypt, always off the event loop (the rules are protocol.passwords).

bcrypt at cost 12 takes about a quarter of a second of CPU; run on the loop
it would freeze every conversation on the relay. `PasswordHasher` runs it in
a thread pool as large as the machine has cores (bcrypt releases the GIL),
so a storm of logins finishes as soon as the cores allow; the pool is
bounded, so more logins queue instead of taking more threads. The threads
keep the process's priority: at nice +10 they starved whenever other
processes kept the cores busy (storm logins went unanswered for two minutes
on the shared benchmark machine, bench/README.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

import bcrypt


class PasswordHasher:
    """bcrypt on a bounded thread pool. bcrypt's C code releases the GIL."""

    def __init__(self, cost: int = 12, workers: int = 2) -> None:
        self.cost = cost
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt")
        self._dummy: bytes | None = None

    async def hash(self, password: str) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hash_sync, password)

    async def prepare(self) -> bytes:
        """Builds the dummy hash that `verify` checks a missing account against.

        Built lazily, the first unknown name after a start paid for two bcrypt
        runs, twice a known name's time, which told that it did not exist.
        """
        if self._dummy is None:
            self._dummy = await self.hash("no such account: constant work")
        return self._dummy

    async def verify(self, password: str, hashed: bytes | None) -> bool:
        """Checks against a dummy hash when the account is missing, so timing tells nothing."""
        if hashed is None:
            hashed = await self.prepare()
            password = password + "\x00never"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify_sync, password, hashed)

    def _hash_sync(self, password: str) -> bytes:
        return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=self.cost))

    @staticmethod
    def _verify_sync(password: str, hashed: bytes) -> bool:
        try:
            return bcrypt.checkpw(_prehash(password), hashed)
        except ValueError:
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _prehash(password: str) -> bytes:
    """bcrypt reads only 72 bytes: a SHA-256 pre-hash keeps long passwords whole.

    Base64-free hex keeps NUL bytes out of bcrypt's input.
    """
    return hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest().encode()


def token_hash(token: str | bytes) -> bytes:
    """Session, reset and recovery tokens carry 256 bits: a plain SHA-256 suffices."""
    raw = token.encode("utf-8", "surrogatepass") if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


def same_hash(a: bytes | None, b: bytes) -> bool:
    return a is not None and hmac.compare_digest(a, b)
