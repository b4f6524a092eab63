"""One measured TUI session on an existing vault, in a process of its own (so memory is its own).

`python -m bench.chatlog_probe VAULT_DIR PEER SCROLL_PAGES` opens the main
screen headless (Textual's `run_test`, 120x40) on a ChatClient whose vault is
VAULT_DIR and which never connects, opens PEER's conversation, presses Home
and End in the chat, pages back SCROLL_PAGES times, then types 100 keys while
a timer writes 20 incoming messages a second to the vault and hands the core's
`MessageReceived` to the screen, as the relay path would. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.widgets import Input

from bench.common import PASSWORD, memory_kib
from securechat.client.conversation import ConversationId
from securechat.client.core import ChatClient
from securechat.client.events import MessageReceived
from securechat.client.records import MessageRecord
from securechat.client.vault_store import Vault
from securechat.tui.app import make_app
from securechat.tui.screens.main import MainScreen
from securechat.tui.widgets.chat_line import MessageLine
from securechat.tui.widgets.chat_log import ChatLog

SIZE = (120, 40)
INCOMING_PER_SECOND = 20
KEYS = 100


class Keys:
    """Key presses as the terminal driver delivers them, and the repaint that shows each.

    Pilot's `press` waits for the process to go idle, which never happens while
    messages arrive 20 times a second, so the probe sends keys itself. Whether a
    repaint shows the key is checked as it is painted: a key's own repaint often
    comes before a poll could see the change, and the next repaint after the poll
    (an arrival's, a cursor blink's) would then be counted as the key's.
    """

    def __init__(self, app: App[None]) -> None:
        self.app = app
        self._shown: Callable[[], bool] | None = None
        self._shown_at = 0.0
        display = app._display

        def timed(*args: Any) -> None:
            display(*args)
            if self._shown is not None and self._shown():
                self._shown, self._shown_at = None, time.perf_counter()

        app._display = timed  # type: ignore[method-assign,assignment]

    def send(self, key: str) -> None:
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(self.app)
        assert self.app._driver is not None
        self.app._driver.send_message(event)

    async def echo(self, key: str, shown: Callable[[], bool]) -> float:
        """Milliseconds from the key to the first repaint made once `shown()` holds."""
        self._shown, self._shown_at = shown, 0.0
        start = time.perf_counter()
        self.send(key)
        await until(lambda: self._shown_at > 0)
        return 1000 * (self._shown_at - start)


async def until(check: Callable[[], bool], timeout: float = 120.0) -> float:
    """Milliseconds until `check()` holds."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"the screen never got there: {check.__code__.co_firstlineno}")
        await asyncio.sleep(0.001)
    return 1000 * (time.perf_counter() - start)


def ids(chat: ChatLog) -> list[int]:
    return [line.message.id for line in chat.query_children(MessageLine)]


def messages_from(vault: Vault, peer: str, message_id: int) -> int:
    """How many messages of the conversation are at or after `message_id`."""
    conv = vault._tag("conv", peer)
    query = "SELECT COUNT(*) FROM messages WHERE conv = ? AND id >= ?"
    return int(vault._db.execute(query, (conv, message_id)).fetchone()[0])


async def incoming(client: ChatClient, vault: Vault, peer: str, stop: asyncio.Event) -> int:
    """What the core does per received message: store it, then emit the event."""
    sent = 0
    while not stop.is_set():
        text = f"incoming {sent} while typing"
        record = MessageRecord(peer=peer, outgoing=False, text=text, ts=time.time())
        message_id = vault.add_message(record)
        client.events.put_nowait(
            MessageReceived(ConversationId.direct(peer), peer, text, record.ts, message_id)
        )
        sent += 1
        await asyncio.sleep(1 / INCOMING_PER_SECOND)
    return sent


async def echo(keys: Keys, client: ChatClient, vault: Vault, peer: str) -> list[float]:
    """Per key: from the press to the repaint showing it, with messages arriving."""
    line = keys.app.screen.query_one("#input", Input)
    line.value = ""
    line.focus()
    stop = asyncio.Event()
    feeder = asyncio.create_task(incoming(client, vault, peer, stop))
    times = []
    for i in range(KEYS):
        times.append(await keys.echo("abcdefghij"[i % 10], lambda n=i + 1: len(line.value) == n))  # type: ignore[misc]
        await asyncio.sleep(0.05)
    stop.set()
    await feeder
    return times


async def probe(directory: Path, peer: str, scroll_pages: int) -> dict[str, object]:
    vault = Vault.unlock(directory, PASSWORD)
    client = ChatClient("ws://127.0.0.1:9", directory.parent, reconnect=False)
    # Signed in without a relay: the probe measures the view, not the network.
    client._ctx.vault, client._ctx.username = vault, "me"
    app = make_app("ws://127.0.0.1:9")
    out: dict[str, object] = {"rss_start_mib": rss_mib()}
    async with app.run_test(size=SIZE):
        keys = Keys(app)
        start = time.perf_counter()
        await app.switch_screen(MainScreen(client, "ws://127.0.0.1:9", app))
        chat = app.screen.query_one(ChatLog)
        await until(lambda: chat.peer == peer and bool(ids(chat)))
        out["open_ms"] = 1000 * (time.perf_counter() - start)
        newest = max(ids(chat))
        first = vault.messages(peer, after_id=0, limit=1)[0].id
        chat.focus()
        await asyncio.sleep(0.2)
        out["home_ms"] = await keys.echo("home", lambda: first in ids(chat) and chat.scroll_y == 0)
        out["end_ms"] = await keys.echo(
            "end", lambda: newest in ids(chat) and chat.is_vertical_scroll_end
        )
        start = time.perf_counter()
        oldest = []
        for _ in range(scroll_pages):
            keys.send("pageup")
            await asyncio.sleep(1 / 30)  # a held key repeats about 30 times a second
            oldest.append(min(ids(chat)))
        await asyncio.sleep(0.5)
        out["scroll_s"] = time.perf_counter() - start
        out["paged_back"] = messages_from(vault, peer, min(oldest))
        out["rss_scrolled_mib"] = rss_mib()
        out["widgets"] = len(chat.children)
        out["echo_back_ms"] = await echo(keys, client, vault, peer)
        chat.focus()
        keys.send("end")
        await asyncio.sleep(0.5)
        out["echo_end_ms"] = await echo(keys, client, vault, peer)
        out["rss_end_mib"] = rss_mib()
    vault.close()
    return out


def rss_mib() -> float:
    return memory_kib(os.getpid()) / 1024


def main() -> None:
    directory, peer, pages = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(probe(directory, peer, pages))))


if __name__ == "__main__":
    main()
