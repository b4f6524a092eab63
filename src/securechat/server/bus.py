"""How relay nodes tell each other what happened: the bus.

A single relay needs nothing (`LocalBus`). Several relays behind a load
balancer share PostgreSQL for data and Redis for signals (`RedisBus`):

- *wake*: "the store has these new envelopes (sids) for these users"; the
  node where a user is connected reads exactly those rows from the store. The
  store is the source of truth, so a lost signal delays a message (until the
  next connection or poll) but never loses it.
- *presence*: a user came online or went offline on some node; plus a hash
  per user of the nodes holding a connection, refreshed by heartbeats, so a
  crashed node's entries fade out.
- *watch*: a user started to follow others' presence, so those others, if they
  follow it too, may now see it; a node holding a connection of theirs that
  waited for this starts its watch (`Relay.watches_started`).
- *revoke*: sessions of a user ended (password reset, account deleted, or the
  session a new login on the same device replaced);
  each node checks that user's connections against the store and closes
  them (`revocation.py`). A revoke that could not be published is kept and
  published again when Redis answers; a node that missed it while Redis was
  down checks all its connections on Redis's return.

While Redis is unreachable the bus reports itself unhealthy and the relay
polls the store for its connected users instead (store-and-forward); it
reconnects by itself and catches up with one poll when Redis returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

log = logging.getLogger("securechat.bus")

WakeHandler = Callable[[str, list[int]], None]
PresenceHandler = Callable[[str, str], None]
RevokeHandler = Callable[[str, str], None]
"""(user, cause): the cause is one the sending node named; the receiver checks it."""
WatchHandler = Callable[[str, list[str]], None]
"""(watcher, users it newly follows)."""


class Bus(Protocol):
    healthy: bool
    shared: bool
    """Other nodes listen: stored envelopes must be announced to them."""

    async def start(
        self,
        on_wake: WakeHandler,
        on_presence: PresenceHandler,
        on_revoke: RevokeHandler,
        on_watch: WatchHandler,
    ) -> None: ...
    async def wake(self, items: Mapping[str, list[int]]) -> None: ...
    async def presence(self, user: str, state: str) -> None: ...
    async def revoke(self, user: str, cause: str) -> None: ...
    async def watch(self, user: str, users: list[str]) -> None: ...
    async def online_elsewhere(self, user: str) -> bool: ...
    async def close(self) -> None: ...


class LocalBus:
    """One relay process: every user it serves is connected to it."""

    healthy = True
    shared = False

    async def start(
        self,
        on_wake: WakeHandler,
        on_presence: PresenceHandler,
        on_revoke: RevokeHandler,
        on_watch: WatchHandler,
    ) -> None:
        return None

    async def wake(self, items: Mapping[str, list[int]]) -> None:
        return None

    async def presence(self, user: str, state: str) -> None:
        return None

    async def revoke(self, user: str, cause: str) -> None:
        return None

    async def watch(self, user: str, users: list[str]) -> None:
        return None

    async def online_elsewhere(self, user: str) -> bool:
        return False

    async def close(self) -> None:
        return None


class RedisBus:
    HEARTBEAT = 10.0
    STALE_AFTER = 30.0
    MAX_UNSENT_REVOKES = 10_000
    shared = True

    def __init__(
        self,
        url: str,
        prefix: str = "securechat",
        node_id: str | None = None,
        local_users: Callable[[], Iterable[str]] = tuple,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis.asyncio as redis

        self._redis_module = redis
        self.url = url
        self.prefix = prefix
        self.node_id = node_id or secrets.token_hex(6)
        self.local_users = local_users
        self.clock = clock
        self.healthy = False
        self.client = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._channel = f"{prefix}:events"
        self._tasks: list[asyncio.Task[None]] = []
        self._on_wake: WakeHandler = lambda user, sids: None
        self._on_presence: PresenceHandler = lambda user, state: None
        self._on_revoke: RevokeHandler = lambda user, cause: None
        self._on_watch: WatchHandler = lambda user, users: None
        self._unsent_revokes: dict[str, str] = {}
        self._subscribed = False
        self.recovered = asyncio.Event()
        self._down_logged = False

    def _presence_key(self, user: str) -> str:
        return f"{self.prefix}:presence:{user}"

    async def start(
        self,
        on_wake: WakeHandler,
        on_presence: PresenceHandler,
        on_revoke: RevokeHandler,
        on_watch: WatchHandler,
    ) -> None:
        self._on_wake, self._on_presence, self._on_revoke = on_wake, on_presence, on_revoke
        self._on_watch = on_watch
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._heartbeat()),
        ]

    async def wake(self, items: Mapping[str, list[int]]) -> None:
        await self._publish({"kind": "wake", "items": dict(items)})

    async def presence(self, user: str, state: str) -> None:
        with contextlib.suppress(*self._errors()):
            if state == "online":
                await self.client.hset(self._presence_key(user), self.node_id, self.clock())
            else:
                await self.client.hdel(self._presence_key(user), self.node_id)
        await self._publish({"kind": "presence", "user": user, "state": state})

    async def watch(self, user: str, users: list[str]) -> None:
        await self._publish({"kind": "watch", "user": user, "users": users})

    async def revoke(self, user: str, cause: str) -> None:
        self._unsent_revokes.pop(user, None)
        if not await self._publish({"kind": "revoke", "user": user, "cause": cause}):
            self._unsent_revokes[user] = cause
            while len(self._unsent_revokes) > self.MAX_UNSENT_REVOKES:
                del self._unsent_revokes[next(iter(self._unsent_revokes))]

    async def _publish_unsent_revokes(self) -> None:
        for user, cause in list(self._unsent_revokes.items()):
            if not await self._publish({"kind": "revoke", "user": user, "cause": cause}):
                return
            if self._unsent_revokes.get(user) == cause:
                del self._unsent_revokes[user]

    async def online_elsewhere(self, user: str) -> bool:
        try:
            entries = await self.client.hgetall(self._presence_key(user))
        except self._errors():
            return False
        fresh_after = self.clock() - self.STALE_AFTER
        return any(
            _text(node) != self.node_id and float(stamp) > fresh_after
            for node, stamp in entries.items()
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(*self._errors()):
            for user in self.local_users():
                await self.client.hdel(self._presence_key(user), self.node_id)
        await self.client.aclose()

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (self._redis_module.RedisError, OSError, asyncio.TimeoutError)

    async def _publish(self, message: dict[str, object]) -> bool:
        message["node"] = self.node_id
        try:
            await self.client.publish(self._channel, json.dumps(message))
        except self._errors() as exc:
            self._set_healthy(False, type(exc).__name__)
            return False
        if self._subscribed:
            # A failed publish marked the bus down while the subscription stayed up:
            # this one got through, so signals flow both ways again.
            self._set_healthy(True)
        return True

    async def _listen(self) -> None:
        """Subscribes, and re-subscribes after Redis comes back."""
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed = True
                self._set_healthy(True)
                await self._publish_unsent_revokes()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._dispatch(message["data"])
            except self._errors() as exc:
                self._subscribed = False
                self._set_healthy(False, type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(*self._errors()):
                    await _closer(pubsub)()

    def _dispatch(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            if message.get("node") == self.node_id:
                return
            if message["kind"] == "wake":
                for user, sids in message["items"].items():
                    self._on_wake(str(user), [int(sid) for sid in sids])
            elif message["kind"] == "presence":
                self._on_presence(str(message["user"]), str(message["state"]))
            elif message["kind"] == "revoke":
                self._on_revoke(str(message["user"]), str(message["cause"]))
            elif message["kind"] == "watch":
                self._on_watch(str(message["user"]), [str(user) for user in message["users"]])
        except Exception:
            # Anything on the channel is untrusted input: one bad message must not
            # stop the listener.
            log.warning("ignored a malformed bus message")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.HEARTBEAT)
            now = self.clock()
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for user in self.local_users():
                        pipe.hset(self._presence_key(user), self.node_id, now)
                    await pipe.execute()
            except self._errors() as exc:
                self._set_healthy(False, type(exc).__name__)
                continue
            await self._publish_unsent_revokes()

    def _set_healthy(self, healthy: bool, reason: str = "") -> None:
        """Logs the transitions only: one line when Redis goes away, one when it returns."""
        if healthy and not self.healthy:
            self.recovered.set()
            log.info("redis reachable: signals between nodes flow")
        elif not healthy and (self.healthy or not self._down_logged):
            log.warning(
                "redis unavailable (%s); polling the store until it returns", reason or "error"
            )
        self._down_logged = not healthy
        self.healthy = healthy


def _closer(pubsub: PubSub) -> Callable[[], Awaitable[object]]:
    """`PubSub.aclose`, typed the same whichever redis-py release is installed.

    redis-py 5.0.1 to 8.1 left `aclose` unannotated and 8.2 annotated it, so a call site
    with a `type: ignore` breaks on one side or the other; this assignment holds on both.
    """
    close: Callable[[], Awaitable[object]] = pubsub.aclose
    return close


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
