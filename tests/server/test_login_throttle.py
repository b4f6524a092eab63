"""Login and reset back-off: guesses slow down, owners keep access, restarts forget nothing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from securechat.errors import ProtocolError
from securechat.server.accounts import TRUSTED_SLOWDOWN, AccountService, RateLimited
from securechat.server.app import RelayServer
from securechat.server.passwords import PasswordHasher
from securechat.server.ratelimit import KNOWN_ADDRESS_TTL, Backoff, FailureLimiter
from securechat.server.store import Store
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.sqlite import SQLiteStore
from securechat.server.store_limits import StoreFailureLimiter
from tests.services import REDIS_URL, pg_schema, redis_prefix
from tests.wire import PASSWORD, Wire

OWNER = "10.0.0.1"


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sleeps:
    """Records the slow-downs instead of waiting them out."""

    waited: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def login_policy() -> Backoff:
    """The relay's policy with locks long enough to outlast a test in real (Redis) time."""
    return Backoff(base=600.0)


def reset_policy() -> Backoff:
    return Backoff(free=3, base=600.0)


Closer = Callable[[], Awaitable[None]]
Limiters = Callable[[Store, list[Closer]], Awaitable[tuple[FailureLimiter, FailureLimiter]]]


@dataclass
class Backend:
    """Opens the store and limiters a relay would, again after each 'restart'."""

    open_store: Callable[[], Awaitable[Store]]
    limiters: Limiters
    closers: list[Closer] = field(default_factory=list)

    async def service(self, clock: Clock, sleeps: Sleeps, hasher: PasswordHasher) -> AccountService:
        store = await self.open_store()
        login, reset = await self.limiters(store, self.closers)
        self.closers.append(store.close)
        return AccountService(
            store, hasher, clock=clock, login_limiter=login, reset_limiter=reset, sleep=sleeps
        )

    async def restart(self) -> None:
        """Closes the last store opened, as a stopping relay does."""
        await self.closers.pop()()

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()


async def _store_limiters(
    store: Store, closers: list[Closer]
) -> tuple[FailureLimiter, FailureLimiter]:
    """What a relay without a Redis bus uses (`AccountService`'s default)."""
    return (
        StoreFailureLimiter(store, "login", login_policy()),
        StoreFailureLimiter(store, "reset", reset_policy()),
    )


def _redis_limiters(prefix: str) -> Limiters:
    """What `app._shared_limiters` builds on a cluster node, with a new client each time."""

    async def make(store: Store, closers: list[Closer]) -> tuple[FailureLimiter, FailureLimiter]:
        import redis.asyncio as redis

        from securechat.server.redis_limits import RedisFailureLimiter

        client = redis.from_url(REDIS_URL)
        closers.append(client.aclose)
        return (
            RedisFailureLimiter(client, f"{prefix}:login", login_policy()),
            RedisFailureLimiter(client, f"{prefix}:reset", reset_policy()),
        )

    return make


@pytest.fixture(params=["sqlite", "postgresql", "postgresql+redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":

        async def sqlite() -> Store:
            return SQLiteStore(tmp_path / "relay.sqlite3")

        chosen = Backend(sqlite, _store_limiters)
        yield chosen
        await chosen.close()
        return
    async for dsn in pg_schema():

        async def postgres(dsn: str = dsn) -> Store:
            return await PostgresStore.connect(dsn, min_size=1, max_size=2)

        if request.param == "postgresql":
            chosen = Backend(postgres, _store_limiters)
            yield chosen
            await chosen.close()
            continue
        async for prefix in redis_prefix():
            chosen = Backend(postgres, _redis_limiters(prefix))
            yield chosen
            await chosen.close()


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    pool = PasswordHasher(cost=4)
    yield pool
    pool.close()


async def _attack(accounts: AccountService, username: str, guesses: int) -> None:
    for i in range(guesses):
        with pytest.raises(ProtocolError):
            await accounts.login(username, f"guess number {i}", f"203.0.113.{i % 250}")


async def test_an_attack_from_other_addresses_does_not_lock_the_owner_out(
    backend: Backend, hasher: PasswordHasher
) -> None:
    """The name's lock slows its owner's known address down; it refuses strangers only."""
    clock, sleeps = Clock(), Sleeps()
    accounts = await backend.service(clock, sleeps, hasher)
    await accounts.register("alice", PASSWORD, os.urandom(32))
    await accounts.login("alice", PASSWORD, OWNER)
    await _attack(accounts, "alice", 40)
    with pytest.raises(RateLimited):
        await accounts.login("alice", PASSWORD, "198.51.100.9")
    issued = await accounts.login("alice", PASSWORD, OWNER)
    assert issued.username == "alice"
    assert len(sleeps.waited) == 1 and 0 < sleeps.waited[0] <= TRUSTED_SLOWDOWN


async def test_a_resumed_session_vouches_for_its_address(
    backend: Backend, hasher: PasswordHasher
) -> None:
    """A device that resumed from an address lets another device there log in during an attack."""
    clock, sleeps = Clock(), Sleeps()
    accounts = await backend.service(clock, sleeps, hasher)
    await accounts.register("alice", PASSWORD, os.urandom(32))
    session = await accounts.login("alice", PASSWORD, "192.0.2.1")
    await accounts.resume(session.token, "192.0.2.77")
    await _attack(accounts, "alice", 40)
    assert (await accounts.login("alice", PASSWORD, "192.0.2.77")).username == "alice"


async def test_guesses_from_one_address_are_refused(
    backend: Backend, hasher: PasswordHasher
) -> None:
    """The pair and the address still lock, even for an address the owner used."""
    clock, sleeps = Clock(), Sleeps()
    accounts = await backend.service(clock, sleeps, hasher)
    await accounts.register("alice", PASSWORD, os.urandom(32))
    await accounts.login("alice", PASSWORD, OWNER)
    codes = []
    for i in range(8):
        try:
            await accounts.login("alice", f"guess number {i}", OWNER)
        except ProtocolError as exc:
            codes.append(exc.code.value)
    assert codes[:5] == ["unauthorized"] * 5 and "rate_limited" in codes[5:]
    sprayer = "198.51.100.200"
    for i in range(6):
        with pytest.raises(ProtocolError):
            await accounts.login(f"user{i}", "guess number 1", sprayer)
    with pytest.raises(RateLimited):
        await accounts.login("someone", "guess number 1", sprayer)


async def test_a_restart_does_not_reset_the_back_off(
    backend: Backend, hasher: PasswordHasher
) -> None:
    """Counters and known addresses live in the store (or Redis), not in the process."""
    clock, sleeps = Clock(), Sleeps()
    before = await backend.service(clock, sleeps, hasher)
    await before.register("alice", PASSWORD, os.urandom(32))
    await before.login("alice", PASSWORD, OWNER)
    await _attack(before, "alice", 40)
    for _ in range(4):
        with pytest.raises(ProtocolError):
            await before.reset_password("alice", "00" * 32, "a new pass phrase", None, "192.0.2.5")
    await backend.restart()
    after = await backend.service(clock, sleeps, hasher)
    with pytest.raises(RateLimited):
        await after.login("alice", PASSWORD, "198.51.100.9")
    with pytest.raises(RateLimited):
        await after.reset_password("alice", "00" * 32, "a new pass phrase", None, "192.0.2.5")
    assert (await after.login("alice", PASSWORD, OWNER)).username == "alice"


async def test_the_first_unknown_name_costs_one_bcrypt_run(relay: RelayServer) -> None:
    """The dummy hash is built at start-up, so an unknown name is not slower than a known one."""
    runs: list[str] = []
    original = relay.hasher._hash_sync

    def counting(password: str) -> bytes:
        runs.append("hash")
        return original(password)

    relay.hasher._hash_sync = counting  # type: ignore[method-assign]
    wire = await Wire.open(f"ws://127.0.0.1:{relay.port}")
    answer = await wire.call("login", username="nobody", password="not the password")
    assert answer["code"] == "unauthorized"
    assert runs == []


async def test_failures_and_known_addresses_are_forgotten_in_time(tmp_path: Path) -> None:
    """An hour of quiet clears failures; a known address stays known for 30 days."""
    store = SQLiteStore(tmp_path / "relay.sqlite3")
    limiter = StoreFailureLimiter(store, "login", Backoff())
    try:
        for _ in range(6):
            await limiter.failed("u:alice", 0.0)
        assert await limiter.retry_after("u:alice", 0.5) > 0
        assert await limiter.retry_after("u:alice", 3601.0) == 0
        await limiter.remember("ua:alice|10.0.0.1", 0.0)
        assert await limiter.remembered("ua:alice|10.0.0.1", KNOWN_ADDRESS_TTL)
        assert not await limiter.remembered("ua:alice|10.0.0.1", KNOWN_ADDRESS_TTL + 1)
        assert not await limiter.remembered("ua:alice|10.0.0.2", 0.0)
    finally:
        await store.close()


async def test_redis_failure_counter_never_lives_without_expiry() -> None:
    """INCR and EXPIRE go in one transaction: Redis failing after the first command (here:
    any EXPIRE sent on its own fails) cannot leave a counter that never expires."""
    import redis.asyncio as redis

    from securechat.server.redis_limits import RedisFailureLimiter

    class ExpireFails:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        async def expire(self, *args: Any) -> None:
            raise redis.ConnectionError("connection lost after INCR")

    async for prefix in redis_prefix():
        client = redis.from_url(REDIS_URL)
        try:
            limiter = RedisFailureLimiter(ExpireFails(client), prefix, login_policy())
            await limiter.failed("alice|127.0.0.1", 0.0)
            assert await client.pttl(f"{prefix}:fail:alice|127.0.0.1") > 0
        finally:
            await client.aclose()
