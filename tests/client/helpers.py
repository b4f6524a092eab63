"""What the client tests share: waiting for events, setting up sessions, clients on a relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from securechat.client.core import ChatClient
from securechat.client.events import ConversationChanged, ConversationState, Event
from securechat.server.app import RelayServer
from securechat.server.store import KeyBundle

PASSWORD = "correct horse battery"


async def wait_for(client: ChatClient, kind: type, timeout: float = 10.0, **match: object) -> Event:
    """The next event of `kind` whose fields equal `match`, skipping others."""

    async def _next() -> Event:
        while True:
            event = await client.events.get()
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                return event

    return await asyncio.wait_for(_next(), timeout)


def drain(client: ChatClient) -> list[Event]:
    """Every event already queued, without waiting."""
    events = []
    while not client.events.empty():
        events.append(client.events.get_nowait())
    return events


async def secure(first: ChatClient, second: ChatClient) -> None:
    """sharekey both ways, talk, and wait until both sides show the session active."""
    a, b = first.username, second.username
    assert a and b
    await first.sharekey(b)
    await second.sharekey(a)
    await wait_for(first, ConversationChanged, peer=b)
    await first.talk(b)
    await wait_for(first, ConversationChanged, peer=b, state=ConversationState.ACTIVE)
    await wait_for(second, ConversationChanged, peer=a, state=ConversationState.ACTIVE)


@asynccontextmanager
async def clients(
    url: str, root: Path, *names: str, fast_reconnect: bool = False
) -> AsyncIterator[list[ChatClient]]:
    """Registered, connected clients, one data directory each, closed afterwards."""
    made = [ChatClient(url, root / name) for name in names]
    try:
        for client, name in zip(made, names, strict=True):
            if fast_reconnect:
                client.relay.backoff_base = 0.05
            await client.connect()
            await client.register(name, PASSWORD)
        yield made
    finally:
        for client in made:
            await client.close()


def swap_bundle_once(relay: RelayServer, victim: str, attacker: str) -> None:
    """A relay that serves the attacker's bundle under the victim's name once, then stops."""
    original = relay.store.fetch_bundle
    swapped = False

    async def fetch(username: str) -> KeyBundle | None:
        nonlocal swapped
        if username == victim and not swapped:
            swapped = True
            return await original(attacker)
        return await original(username)

    relay.store.fetch_bundle = fetch  # type: ignore[method-assign]
