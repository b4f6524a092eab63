"""The Textual app: owns the ChatClient and moves between sign-in and the main screen.

`make_app` builds it for the CLI and for tests alike; tests inject the client
factory (a fake or a client on a test relay), a fixed clock and time format,
and a terminal writer, so nothing depends on the wall clock or a real terminal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.theme import Theme

from securechat.client.account import reset_token_kind
from securechat.client.api import ChatAPI
from securechat.client.core import ChatClient
from securechat.errors import ConfigError, SecureChatError, explain
from securechat.tui.commands import Reset
from securechat.tui.config import TuiConfig, save_setting
from securechat.tui.messages import SignedIn, SignedOut
from securechat.tui.notify import (
    NOTIFY_SEND,
    channel,
    desktop_sequence,
    notification,
    notify_send_argv,
)
from securechat.tui.safe_text import one_line
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.main import MainScreen
from securechat.tui.screens.recovery import RecoveryCodeScreen
from securechat.tui.screens.signin import SignInScreen
from securechat.tui.state import LastUsers

ClientFactory = Callable[[str], ChatAPI]
TimeFormat = Callable[[float], str]


def run_detached(argv: list[str]) -> None:
    """Starts a helper (notify-send) without waiting for it or letting it touch the screen."""
    try:
        subprocess.Popen(  # noqa: S603 (a fixed argument list, no shell)
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return


def local_time(ts: float) -> str:
    """Hours and minutes in local time: short enough to leave the line to the message."""
    return time.strftime("%H:%M", time.localtime(ts))


class SecureChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "securechat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit")
    ]

    def __init__(
        self,
        config: TuiConfig,
        client_factory: ClientFactory,
        *,
        user: str = "",
        time_format: TimeFormat = local_time,
        clock: Callable[[], float] = time.time,
        terminal_write: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
        debug: bool = False,
        last_users: LastUsers | None = None,
        config_path: Path | None = None,
        spawn: Callable[[list[str]], None] = run_detached,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        super().__init__()
        self.show_error_codes = debug
        self.clock = clock
        self.config = config
        self.client_factory = client_factory
        self.client: ChatAPI | None = None
        self.signed_in_as: str | None = None
        self.initial_user = user
        self.time_format = time_format
        self._terminal_write = terminal_write
        self._env = os.environ if env is None else env
        self.last_users = last_users or LastUsers(None)
        self.config_path = config_path
        self._spawn = spawn
        self._which = which

    def on_mount(self) -> None:
        if self.config.theme in self.available_themes:
            self.theme = self.config.theme
        else:
            self.notify(f"unknown theme {self.config.theme!r}; Ctrl+P lists the themes")
        self.set_keymap(dict(self.config.keymap))
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        server = self.config.server
        user = self.initial_user or self.last_users.get(server)
        self.push_screen(SignInScreen(server, self, user))

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name != self.config.theme:
            self.change_setting("theme", theme.name)

    def change_setting(self, key: str, value: bool | str) -> None:
        """Applies a setting now and keeps it in config.toml for the next start."""
        changes: dict[str, Any] = {key: value}
        self.config = replace(self.config, **changes)
        if self.config_path is None:
            return
        try:
            save_setting(self.config_path, key, value)
        except ConfigError as exc:
            self.notify(f"{key} is changed for now but not saved: {exc}", severity="warning")
            return
        shown = ("on" if value else "off") if isinstance(value, bool) else value
        self.notify(f"{key.replace('_', ' ')}: {shown} (saved to {self.config_path.name})")

    async def on_unmount(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def open_client(self, server: str) -> ChatAPI:
        """A fresh, connected client per attempt: no half-open state survives a failure."""
        if self.client is not None:
            await self.client.close()
        self.client = self.client_factory(server)
        await self.client.connect()
        return self.client

    @on(SignedIn)
    def _signed_in(self, message: SignedIn) -> None:
        assert self.client is not None
        self.signed_in_as = message.username
        self.last_users.remember(self.client.server_url, message.username)
        self.switch_screen(
            MainScreen(self.client, self.client.server_url, self, brands=self.config.brands)
        )

    @on(SignedOut)
    async def _signed_out(self, message: SignedOut) -> None:
        server = self.client.server_url if self.client else self.config.server
        self.signed_in_as = None
        if self.client is not None:
            await self.client.close()
            self.client = None
        await self.switch_screen(SignInScreen(server, self, self.last_users.get(server)))
        self.notify(message.reason)

    @work(exclusive=True, group="reset")
    async def run_reset(self, command: Reset, server: str) -> None:
        """Resets through the signed-in client for its own user, else through a new one.

        Signed in, the open vault is re-wrapped at once; otherwise an operator
        token leaves it for the next sign-in, which the user is told first.
        """
        user = command.user.strip().lower()
        own = self.client if self.client is not None and self.signed_in_as == user else None
        kind = reset_token_kind(command.token)
        if kind == "invalid":
            self.notify(
                "password not reset: that is neither a recovery code (XXXX-XXXX-…) nor an "
                "operator's token (op-…)",
                severity="error",
                timeout=10,
            )
            return
        if kind == "operator" and not await self._confirm_operator_reset(user, own is not None):
            return
        client = own or self.client_factory(server)
        try:
            if own is None:
                await client.connect()
            new_code = await client.reset_password(user, command.token, command.new_password)
        except SecureChatError as exc:
            self.notify(f"password not reset: {self.explain(exc)}", severity="error", timeout=10)
            return
        finally:
            if own is None:
                await client.close()
        if own is not None:
            self.notify(
                f"the password of {user} is reset; the history here is kept, "
                "now locked under the new password"
            )
        elif kind == "operator":
            self.notify(
                f"the password of {user} is reset; sign in with the new one, then type the "
                "previous password or the recovery code once to unlock the history here",
                timeout=15,
            )
        else:
            self.notify(f"the password of {user} is reset; sign in with the new one")
        if new_code is not None:
            await self.push_screen_wait(RecoveryCodeScreen(new_code))

    async def _confirm_operator_reset(self, user: str, signed_in: bool) -> bool:
        """Says what happens to this device's history before an operator reset."""
        if signed_in:
            body = (
                "Your history on this device is kept: it is open now, and is locked again "
                "under the new password at once. You stay signed in."
            )
        else:
            body = (
                f"An operator's token resets {user}'s password on the relay only: it cannot "
                "open the history on this device, which stays locked under the previous "
                "password. Nothing is deleted. At the next sign-in with the new password, "
                "type the previous password or the recovery code once and the history is "
                "locked again under the new password. Without either of them, the history on "
                "this device cannot be read."
            )
        answer = await self.push_screen_wait(
            ConfirmScreen(f"Reset the password of {user}?", body, "Reset password")
        )
        return answer is not None

    def explain(self, exc: BaseException) -> str:
        """An error as a sentence; `--debug` adds the relay's code for bug reports."""
        return explain(exc, self.show_error_codes)

    def alert_incoming(self, peer: str, text: str, group: str = "") -> None:
        """A message for a conversation not in view: toast, bell, desktop notification.

        `peer` is who wrote it; `group` the name of the group it was written in, if any.
        """
        where = f" in {one_line(group, 40)}" if group else ""
        # Not markup: the text and the group's name are other people's.
        self.notify(one_line(text), title=f"message from {peer}{where}", markup=False)
        if self.config.bell:
            self._write("\x07")
        if self.config.desktop_notifications:
            note = notification(peer, text, self.config.notification_text, group)
            if channel(self._env, self._which(NOTIFY_SEND) is not None) == "notify-send":
                self._spawn(notify_send_argv(note))
            else:
                self._write(desktop_sequence(note, self._env))

    def _write(self, data: str) -> None:
        """Raw bytes to the terminal; tests pass a writer that records them."""
        if self._terminal_write is not None:
            self._terminal_write(data)
        elif not self.is_headless and self._driver is not None:
            self._driver.write(data)


def make_app(
    server: str | None = None,
    *,
    data_dir: str | Path | None = None,
    user: str = "",
    pin_sha256: str | None = None,
    config: TuiConfig | None = None,
    client_factory: ClientFactory | None = None,
    time_format: TimeFormat = local_time,
    clock: Callable[[], float] = time.time,
    terminal_write: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
    debug: bool = False,
    state_path: Path | None = None,
    config_path: Path | None = None,
    spawn: Callable[[list[str]], None] = run_detached,
    which: Callable[[str], str | None] = shutil.which,
) -> SecureChatApp:
    """The one way to build the app; `server` overrides the configured relay address.

    `state_path` is where the last username per relay is kept, `config_path` the
    config.toml that settings changed in the app are saved to; None keeps nothing.
    """
    config = config or TuiConfig()
    if server:
        config = replace(config, server=server)

    def default_factory(url: str) -> ChatAPI:
        return ChatClient(url, data_dir, pin_sha256=pin_sha256)

    return SecureChatApp(
        config,
        client_factory or default_factory,
        user=user,
        time_format=time_format,
        clock=clock,
        terminal_write=terminal_write,
        env=env,
        debug=debug,
        last_users=LastUsers(state_path),
        config_path=config_path,
        spawn=spawn,
        which=which,
    )
