"""What the screens need from the app, passed to them rather than found by casting `self.app`.

The app implements this (checked by mypy where it hands itself to a screen),
so screens never import the app module, which imports them: no import circle,
and a test can give a screen any object with these members.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from securechat.client.api import ChatAPI
from securechat.tui.commands import Reset
from securechat.tui.config import TuiConfig
from securechat.tui.state import LastUsers


class AppServices(Protocol):
    show_error_codes: bool
    """`--debug`: error sentences carry the relay's or client's code."""
    config: TuiConfig
    last_users: LastUsers

    def time_format(self, ts: float) -> str: ...
    def clock(self) -> float: ...
    def explain(self, exc: BaseException) -> str: ...
    def alert_incoming(self, peer: str, text: str, group: str = "") -> None: ...
    def run_reset(self, command: Reset, server: str) -> object: ...
    def change_setting(self, key: str, value: bool | str) -> None: ...
    def open_client(self, server: str) -> Awaitable[ChatAPI]: ...
