"""The bottom line: connection state, server and who is signed in."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from securechat.client.events import ConnectionState
from securechat.tui.safe_text import visible

_STATES = {
    ConnectionState.CONNECTED: ("● connected", "green"),
    ConnectionState.CONNECTING: ("◌ connecting…", "yellow"),
    ConnectionState.RECONNECTING: ("◌ reconnecting…", "yellow"),
    ConnectionState.CLOSED: ("○ offline", "red"),
}


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    connection: reactive[ConnectionState] = reactive(ConnectionState.CONNECTING)
    detail: reactive[str] = reactive("")
    server: reactive[str] = reactive("")
    user: reactive[str] = reactive("")

    def render(self) -> Text:
        label, style = _STATES[self.connection]
        text = Text.assemble((label, style))
        if self.detail:
            text.append(f" ({visible(self.detail, keep_newlines=False)})", style="dim")
        text.append("  │  ", style="dim")
        text.append(visible(self.server, keep_newlines=False))
        if self.user:
            text.append("  │  signed in as ", style="dim")
            text.append(self.user, style="bold")
        return text
