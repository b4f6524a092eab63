"""A crowd of real client cores (`RelayClient`) against a relay, and ways to hurt them.

Each simulated user is the headless client's relay session with an in-memory
outbox and an application that, like `ChatClient` with its vault, keeps the
first copy of each `(sender, eid)` and counts the rest as redeliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from securechat.client.events import DeliveryChanged, Event
from securechat.client.relay_client import OutboxItem, RelayClient
from securechat.protocol import frames as F
from tests.wire import PASSWORD

Key = tuple[str, str]
"""(sender, eid): what the application de-duplicates on."""


class MemoryOutbox:
    """The client's outbox; it remembers which envelopes the relay accepted."""

    def __init__(self) -> None:
        self.items: dict[str, OutboxItem] = {}
        self.accepted: set[str] = set()

    def outbox_add(self, item: OutboxItem) -> None:
        self.items[item.eid] = item

    def outbox_remove(self, eid: str) -> None:
        # RelayClient removes on `accepted` and on a final refusal; refusals are
        # reported through on_event and make the tests fail on their own.
        if self.items.pop(eid, None) is not None:
            self.accepted.add(eid)

    def outbox_items(self) -> list[OutboxItem]:
        return list(self.items.values())


@dataclass
class Application:
    """What the user would see: each envelope once, byte for byte."""

    owner: str
    received: dict[Key, bytes] = field(default_factory=dict)
    redelivered: int = 0

    async def on_envelope(self, envelope: F.Envelope) -> None:
        key = (envelope.sender, envelope.eid)
        if key in self.received:
            self.redelivered += 1
            return
        self.received[key] = envelope.body


@dataclass
class User:
    name: str
    url: str
    outbox: MemoryOutbox = field(default_factory=MemoryOutbox)
    app: Application = field(init=False)
    refused: list[Event] = field(default_factory=list)
    client: RelayClient = field(init=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while sending and while the client restarts, so no send goes to a dead client."""

    def __post_init__(self) -> None:
        self.app = Application(self.name)
        self.client = self._new_client()

    def _new_client(self) -> RelayClient:
        return RelayClient(
            self.url,
            self.outbox,
            on_envelope=self.app.on_envelope,
            on_event=self._on_event,
            backoff_base=0.05,
            backoff_max=0.5,
        )

    def _on_event(self, event: Event) -> None:
        if isinstance(event, DeliveryChanged):
            self.refused.append(event)

    async def register(self) -> None:
        await self.client.connect()
        await self.client.register(self.name, PASSWORD, os.urandom(32))
        await self.client.login(self.name, PASSWORD)

    async def send(self, to: str, eid: str) -> None:
        async with self.lock:
            await self.client.send_envelope(to, body_of(self.name, to, eid), eid)

    def drop_connection(self) -> None:
        """A network failure: the socket dies without a close handshake."""
        conn = self.client._conn
        if conn is not None and conn.ws.transport is not None:
            conn.ws.transport.abort()

    async def restart(self) -> None:
        """The app quits and starts again: a new client logs in with the same outbox."""
        async with self.lock:
            await self.client.close()
            self.client = self._new_client()
            deadline = time.monotonic() + 30
            while True:
                try:
                    await self.client.connect()
                    await self.client.login(self.name, PASSWORD)
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    with contextlib.suppress(Exception):
                        await self.client.close()
                    self.client = self._new_client()
                    await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.client.close()


def body_of(sender: str, to: str, eid: str) -> bytes:
    """Bodies name their route, so a mixed-up delivery is caught, not only a lost one."""
    return f"{sender}>{to}:{eid}".encode()


async def sign_up(url: str, names: list[str], concurrency: int = 50) -> list[User]:
    users = [User(name, url) for name in names]
    gate = asyncio.Semaphore(concurrency)

    async def one(user: User) -> None:
        async with gate:
            await user.register()

    await asyncio.gather(*(one(u) for u in users))
    return users


@dataclass
class Ledger:
    """Every envelope the test asked a client to send, by recipient."""

    expected: dict[str, dict[Key, bytes]] = field(default_factory=dict)
    count: int = 0

    def record(self, sender: str, to: str, eid: str) -> None:
        self.expected.setdefault(to, {})[(sender, eid)] = body_of(sender, to, eid)
        self.count += 1


async def send_traffic(
    users: list[User],
    ledger: Ledger,
    total: int,
    rng: random.Random,
    prefix: str,
    senders: int = 200,
) -> None:
    """`total` envelopes from random senders to random recipients, `senders` at a time."""
    by_name = {u.name: u for u in users}
    plan = []
    for i in range(total):
        sender, to = rng.sample(users, 2)
        plan.append((sender.name, to.name, f"{prefix}{i}"))
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            sender, to, eid = queue.get_nowait()
            ledger.record(sender, to, eid)
            await by_name[sender].send(to, eid)

    await asyncio.gather(*(worker() for _ in range(min(senders, total))))


async def settle(users: list[User], ledger: Ledger, timeout: float) -> None:
    """Waits until every outbox is empty and every recipient holds what it was sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(not u.outbox.items for u in users) and all(
            len(u.app.received) >= len(ledger.expected.get(u.name, {})) for u in users
        ):
            return
        await asyncio.sleep(0.1)


def check_exactly_once(users: list[User], ledger: Ledger) -> dict[str, int]:
    """Zero lost, zero extra, zero mixed up; returns counts for the failure message."""
    unsent = {u.name: len(u.outbox.items) for u in users if u.outbox.items}
    refused = [e for u in users for e in u.refused]
    lost = extra = wrong = 0
    for user in users:
        expected = ledger.expected.get(user.name, {})
        got = user.app.received
        lost += len(expected.keys() - got.keys())
        extra += len(got.keys() - expected.keys())
        wrong += sum(1 for k in expected.keys() & got.keys() if got[k] != expected[k])
    accepted = sum(len(u.outbox.accepted) for u in users)
    summary = {
        "sent": ledger.count,
        "accepted": accepted,
        "lost": lost,
        "extra": extra,
        "wrong_body": wrong,
        "still_in_outboxes": sum(unsent.values()),
        "refused": len(refused),
        "redelivered_and_dropped": sum(u.app.redelivered for u in users),
    }
    assert (lost, extra, wrong, unsent, refused) == (0, 0, 0, {}, []), summary
    assert accepted == ledger.count, summary
    return summary


async def chaos(
    users: list[User],
    rng: random.Random,
    stop: asyncio.Event,
    every: float,
    restart_share: float = 0.3,
) -> int:
    """Until `stop`: every `every` seconds a random user's network drops, or its app restarts."""
    hits = 0
    restarts: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            break
        user = rng.choice(users)
        hits += 1
        if rng.random() < restart_share:
            task = asyncio.create_task(user.restart())
            restarts.add(task)
            task.add_done_callback(restarts.discard)
        else:
            user.drop_connection()
    await asyncio.gather(*restarts)
    return hits


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def relay_rows(db: Path, table: str = "envelopes") -> int:
    """Counts rows through a second connection, as an operator's `stats` would."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float, step: float = 0.1
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)


def log_problems(log: Path) -> list[str]:
    """Lines of a relay log that show a bug: a traceback or an internal error."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or "internal error" in line or "level=CRITICAL" in line
    ]
