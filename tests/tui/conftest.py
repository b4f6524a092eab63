"""Builders for TUI tests: the app on a fake client, a fixed clock, a way to wait for workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static
from textual.worker import WorkerFailed

from securechat.client.api import ChatAPI
from securechat.tui.app import SecureChatApp, make_app
from securechat.tui.config import TuiConfig
from securechat.tui.screens.main import MainScreen
from tests.tui.fakes import BASE_TS, FakeClient, as_client

PASSWORD = "correct horse battery"
SERVER = "ws://relay.test:8765"


def utc_time(ts: float) -> str:
    """Same output on every machine, so snapshots do not depend on the local time zone."""
    return time.strftime("%H:%M", time.gmtime(ts))


@dataclass
class Harness:
    """The app under test plus what it wrote to the terminal and the clients it made."""

    app: SecureChatApp
    accounts: dict[str, str]
    vaults: dict[str, str] = field(default_factory=dict)
    """Vault passwords that an operator reset left behind the relay's (see FakeClient)."""
    clients: list[FakeClient] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    spawned: list[list[str]] = field(default_factory=list)

    @property
    def client(self) -> FakeClient:
        return self.clients[-1]


def build(
    config: TuiConfig | None = None,
    accounts: dict[str, str] | None = None,
    user: str = "",
    debug: bool = False,
    state_path: Path | None = None,
    config_path: Path | None = None,
    env: dict[str, str] | None = None,
    notify_send: bool = False,
) -> Harness:
    accounts = (
        {"alice": PASSWORD, "bob": PASSWORD, "carol": PASSWORD} if accounts is None else accounts
    )
    written: list[str] = []
    harness = Harness(app=None, accounts=accounts, written=written)  # type: ignore[arg-type]
    spawned = harness.spawned

    def factory(url: str) -> ChatAPI:
        client = FakeClient(url, accounts, harness.vaults)
        harness.clients.append(client)
        return as_client(client)

    harness.app = make_app(
        SERVER,
        config=config or TuiConfig(bell=True, desktop_notifications=True),
        client_factory=factory,
        time_format=utc_time,
        clock=lambda: BASE_TS + 3600,
        terminal_write=written.append,
        env={"TERM_PROGRAM": "WezTerm"} if env is None else env,
        user=user,
        debug=debug,
        state_path=state_path,
        config_path=config_path,
        spawn=spawned.append,
        which=lambda name: f"/usr/bin/{name}" if notify_send else None,
    )
    return harness


@pytest.fixture
def harness() -> Harness:
    return build()


async def steady_cursor(pilot: Pilot[None]) -> None:
    """Stops the input cursors blinking (hidden), so a snapshot does not catch it mid-blink."""
    for field_ in pilot.app.screen.query(Input):
        field_.cursor_blink = False
    await pilot.pause()


async def settle(pilot: Pilot[None], timeout: float = 10.0) -> None:
    """Waits for queued core events and every worker but the endless event reader, then a redraw."""
    client = getattr(pilot.app, "client", None)
    for _ in range(100):
        if client is None or client.events.empty():
            break
        await pilot.pause(0.01)
    for _ in range(5):
        await pilot.pause()
        busy = [w for w in pilot.app.workers if w.group != "events" and not w.is_finished]
        if not busy:
            break
        results = await asyncio.wait_for(
            asyncio.gather(*(w.wait() for w in busy), return_exceptions=True), timeout
        )
        failures = [r for r in results if isinstance(r, WorkerFailed)]
        if failures:
            raise failures[0].error
    await pilot.pause()


async def wait_for_screen(pilot: Pilot[None], kind: type, timeout: float = 10.0) -> None:
    """For workers that stop to show a screen (recovery code), which `settle` would wait out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not isinstance(pilot.app.screen, kind):
        assert loop.time() < deadline, f"{kind.__name__} did not appear; at {pilot.app.screen}"
        await pilot.pause(0.02)
    await pilot.pause()


async def until(
    pilot: Pilot[None], check: Callable[[], bool], what: str, timeout: float = 15
) -> None:
    """Polls the UI while something else (a relay, a peer, a held transfer) does its part."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


async def sign_in(pilot: Pilot[None], user: str = "alice", password: str = PASSWORD) -> None:
    """Fills the sign-in form like a user and waits for the main screen."""
    pilot.app.screen.query_one("#username", Input).value = user
    field = pilot.app.screen.query_one("#password", Input)
    field.value = password
    field.focus()
    await pilot.press("enter")
    await settle(pilot)


async def type_line(pilot: Pilot[None], text: str) -> None:
    """Types on the main input line and presses Enter."""
    line = pilot.app.screen.query_one("#input", Input)
    line.focus()
    line.value = text
    await pilot.press("enter")
    await settle(pilot)


def feedback(pilot: Pilot[None]) -> str:
    return str(pilot.app.screen.query_one("#feedback", Static).content)


def main_screen(pilot: Pilot[None]) -> MainScreen:
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen), f"expected the main screen, got {screen!r}"
    return screen
