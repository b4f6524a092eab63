"""The chat view: one conversation's messages, loaded a page at a time.

Only the pages the user has scrolled through are widgets, so a conversation
of 100k messages opens with its last page. Reaching the top (or the "older"
binding) posts `LoadOlder`; the screen reads the vault and calls `prepend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from rich.text import Text
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from securechat.client.events import DeliveryState
from securechat.client.vault_store import StoredMessage
from securechat.tui.safe_text import safe

TimeFormat = Callable[[float], str]

_DELIVERY: dict[str, tuple[str, str]] = {
    DeliveryState.SENDING: ("◌ sending", "dim"),
    DeliveryState.SENT: ("✓ sent", "dim"),
    DeliveryState.DELIVERED: ("✓✓ delivered", "green"),
    DeliveryState.FAILED: ("✗ failed, ctrl+r to retry", "bold red"),
}


class MessageLine(Static):
    """One message; its delivery mark changes in place as receipts arrive."""

    DEFAULT_CSS = """
    MessageLine {
        padding: 0 1;
    }
    MessageLine.-outgoing {
        color: $text;
    }
    MessageLine.-highlight {
        background: $accent 30%;
    }
    """

    def __init__(self, message: StoredMessage, me: str, time_format: TimeFormat) -> None:
        super().__init__(classes="-outgoing" if message.record.outgoing else "")
        self.message = message
        self.detail = ""
        self._me = me
        self._time_format = time_format

    def on_mount(self) -> None:
        self.update(self._text())

    def set_delivery(self, state: str, detail: str) -> None:
        self.message = StoredMessage(
            self.message.id, msgspec.structs.replace(self.message.record, state=state)
        )
        self.detail = detail
        if self.is_mounted:
            self.update(self._text())

    def _text(self) -> Text:
        record = self.message.record
        sender = self._me if record.outgoing else record.peer
        line = Text.assemble(
            (f"{self._time_format(record.ts)} ", "dim"),
            (sender, "bold cyan" if record.outgoing else "bold magenta"),
            ": ",
        )
        line.append_text(safe(record.text))
        if record.outgoing and record.state in _DELIVERY:
            label, style = _DELIVERY[record.state]
            line.append(f"  {label}", style=style)
            if record.state == DeliveryState.FAILED and self.detail:
                line.append(f" ({self.detail})", style="red")
        return line


class Notice(Static):
    """A line from securechat itself (session started, key changed): never stored."""

    DEFAULT_CSS = """
    Notice {
        padding: 0 1;
        color: $text-muted;
        text-style: italic;
    }
    Notice.-warning {
        color: $error;
        text-style: bold;
    }
    """


class ChatLog(VerticalScroll):
    DEFAULT_CSS = """
    ChatLog {
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
        scrollbar-size-vertical: 1;
    }
    ChatLog:focus {
        border: round $primary;
    }
    """

    @dataclass
    class LoadOlder(Message):
        """Asks for the page of `peer`'s history that ends just before `before_id`."""

        peer: str
        before_id: int

    def __init__(self, me: str, time_format: TimeFormat, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.me = me
        self.peer: str | None = None
        self.has_more = False
        self._loading = False
        self._time_format = time_format
        self._early_delivery: dict[str, tuple[str, str]] = {}

    @property
    def oldest_id(self) -> int | None:
        ids = [line.message.id for line in self.query_children(MessageLine) if line.message.id]
        return min(ids) if ids else None

    async def show(self, peer: str | None, page: list[StoredMessage], has_more: bool) -> None:
        """Replaces the view with the latest page of `peer` (or an empty view)."""
        self.peer, self.has_more, self._loading = peer, has_more, False
        await self.remove_children()
        self.border_title = peer or "no conversation open"
        if peer is None:
            await self.mount(Notice("Pick a conversation on the left, or type `help`."))
            return
        await self.mount_all(self._lines(page))
        self.scroll_end(animate=False, immediate=True)

    async def prepend(self, page: list[StoredMessage], has_more: bool) -> None:
        """Adds an older page above, keeping the messages in view where they were."""
        self.has_more, self._loading = has_more, False
        if not page:
            return
        first = self.children[0] if self.children else None
        before_y = first.region.y if first is not None else 0
        await self.mount_all(self._lines(page), before=0)

        def keep_place() -> None:
            if first is not None:
                self.scroll_to(y=self.scroll_y + first.region.y - before_y, animate=False)

        self.call_after_refresh(keep_place)

    async def append(self, message: StoredMessage) -> None:
        """Adds a new message at the bottom, once: an event may repeat a page already loaded."""
        shown = {line.message.id for line in self.query_children(MessageLine)}
        if message.id and message.id in shown:
            return
        at_end = self.is_vertical_scroll_end or self.max_scroll_y == 0
        await self.mount(*self._lines([message]))
        if at_end:
            self.scroll_end(animate=False)

    async def add_notice(self, text: str, warning: bool = False) -> None:
        """Notices are written by us; `text` must not contain peer-chosen content as markup."""
        await self.mount(Notice(Text(text), classes="-warning" if warning else ""))
        self.scroll_end(animate=False)

    def set_delivery(self, eid: str, state: str, detail: str = "") -> None:
        """Marks a message's delivery; remembers it when the event beats the message here."""
        for line in self.query_children(MessageLine):
            if line.message.record.eid == eid:
                line.set_delivery(state, detail)
                return
        self._early_delivery[eid] = (state, detail)

    def last_failed(self) -> StoredMessage | None:
        failed = [
            line.message
            for line in self.query_children(MessageLine)
            if line.message.record.state == DeliveryState.FAILED
        ]
        return failed[-1] if failed else None

    def highlight(self, message_id: int) -> bool:
        """Scrolls to a message and marks it, for search results."""
        found = False
        for line in self.query_children(MessageLine):
            line.set_class(line.message.id == message_id, "-highlight")
            if line.message.id == message_id:
                self.call_after_refresh(self.scroll_to_widget, line, animate=False, center=True)
                found = True
        return found

    def request_older(self) -> None:
        if self.peer is None or not self.has_more or self._loading:
            return
        oldest = self.oldest_id
        if oldest is None:
            return
        self._loading = True
        self.post_message(self.LoadOlder(self.peer, oldest))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 < old_value:
            self.request_older()

    def _lines(self, page: list[StoredMessage]) -> list[MessageLine]:
        lines = []
        for message in page:
            line = MessageLine(message, self.me, self._time_format)
            early = self._early_delivery.pop(message.record.eid, None)
            if early is not None:
                line.set_delivery(*early)
            lines.append(line)
        return lines
