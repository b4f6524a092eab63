"""One chat line as a widget: a message with its delivery mark and link badges, a
received file (numbered, Enter or a click saves it), or a notice from securechat itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import msgspec
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from securechat.client.events import DeliveryState
from securechat.client.payloads import clocks_disagree
from securechat.client.records import StoredMessage
from securechat.scanner import extract_urls
from securechat.tui.commands import FILE_LINK
from securechat.tui.links import LinkBook, linkify
from securechat.tui.safe_text import safe, visible

TimeFormat = Callable[[float], str]


_DELIVERY: dict[str, tuple[str, str]] = {
    DeliveryState.SENDING: ("◌ sending", "dim"),
    DeliveryState.SENT: ("✓ sent", "dim"),
    DeliveryState.DELIVERED: ("✓✓ delivered", "green"),
    DeliveryState.FAILED: ("✗ failed, ctrl+r to retry", "bold red"),
}


class MessageLine(Static):
    """One message; its delivery mark and link badges change in place as answers arrive."""

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

    @dataclass
    class LinkChosen(Message):
        """A click on a message with a link: show what the link check said."""

        url: str

    def __init__(
        self,
        message: StoredMessage,
        me: str,
        time_format: TimeFormat,
        links: LinkBook | None = None,
        *,
        classes: str = "",
    ) -> None:
        outgoing = "-outgoing" if message.record.outgoing else ""
        super().__init__(classes=f"{outgoing} {classes}".strip())
        self.message = message
        self.detail = ""
        self._me = me
        self._time_format = time_format
        self._links = links
        self.urls: list[str] = (
            extract_urls(message.record.text) if message.record.kind == "text" else []
        )

    def on_mount(self) -> None:
        self.update(self._text())
        record = self.message.record
        if record.received:
            self.tooltip = (
                f"sent {self._time_format(record.ts)} (the sender's clock), "
                f"received {self._time_format(record.received)} (the relay's clock)"
            )

    def redraw(self) -> None:
        if self.is_mounted:
            self.update(self._text())

    def on_click(self, event: events.Click) -> None:
        if self.urls:
            self.post_message(self.LinkChosen(self.urls[0]))

    def set_delivery(self, state: str, detail: str) -> None:
        self.message = StoredMessage(
            self.message.id, msgspec.structs.replace(self.message.record, state=state)
        )
        self.detail = detail
        self.redraw()

    def _text(self) -> Text:
        record = self.message.record
        if record.kind == "system":
            # Written by securechat, not the peer: never shown under their name. In a group
            # these say who joined and left (names and topics chosen by members: inert text);
            # in a direct conversation they are key warnings.
            group = not record.conversation_id.is_direct
            return Text.assemble(
                (f"{self._time_format(record.ts)} ", "dim"),
                safe(record.text, "italic" if group else "bold red"),
            )
        # A group has many senders: the record names each (a direct one's is the peer).
        sender = self._me if record.outgoing else record.sender or record.peer
        line = Text.assemble(
            (f"{self._time_format(record.ts)} ", "dim"),
            (sender, "bold cyan" if record.outgoing else "bold magenta"),
            ": ",
        )
        line.append_text(self._body())
        if record.received and clocks_disagree(record.ts, record.received):
            line.append(f"  ⚠ relay says received {self._time_format(record.received)}", "yellow")
        if record.outgoing and record.state in _DELIVERY:
            label, style = _DELIVERY[record.state]
            line.append(f"  {label}", style=style)
            if record.state == DeliveryState.FAILED and self.detail:
                line.append(f" ({self.detail})", style="red")
        return line

    def _body(self) -> Text:
        if self.message.record.kind == "file":
            return Text.assemble("📎 ", safe(self.message.record.text, "bold"))
        return linkify(self.message.record.text, self._links)


class FileLine(MessageLine):
    """A received file: `[n] 📎 name (size) securechat://file/<id>`; Enter or a click saves it."""

    can_focus = True

    DEFAULT_CSS = """
    FileLine:hover {
        background: $boost;
    }
    FileLine:focus {
        background: $accent 30%;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "download", "Download", show=True),
        Binding("up", "step(-1)", "Previous file", show=False),
        Binding("down", "step(1)", "Next file", show=False),
    ]

    @dataclass
    class Chosen(Message):
        """Download this file (Enter, a click, or `download <n>` all end here)."""

        file_id: str
        name: str

    def __init__(
        self, message: StoredMessage, me: str, time_format: TimeFormat, number: int
    ) -> None:
        super().__init__(message, me, time_format, classes="-file")
        self.number = number
        self.saved_to: str = ""

    @property
    def file_id(self) -> str:
        return self.message.record.file_id

    @property
    def file_name(self) -> str:
        """The sender's file name without the size the core appended."""
        return self.message.record.text.rsplit(" (", 1)[0]

    def mark_saved(self, where: str) -> None:
        self.saved_to = where
        self.redraw()

    def _body(self) -> Text:
        body = Text.assemble(
            (f"[{self.number}] ", "bold"),
            "📎 ",
            safe(self.message.record.text, "bold"),
            " ",
            (visible(FILE_LINK + self.file_id, keep_newlines=False), "underline cyan"),
        )
        if self.saved_to:
            body.append(f"  ✓ saved to {self.saved_to}", style="green")
        return body

    def on_click(self, event: events.Click) -> None:
        self.action_download()

    def action_download(self) -> None:
        self.post_message(self.Chosen(self.file_id, self.file_name))

    def action_step(self, step: int) -> None:
        files = list(self.parent.query_children(FileLine)) if self.parent else [self]
        index = files.index(self) + step
        if 0 <= index < len(files):
            files[index].focus()
            files[index].scroll_visible(animate=False)


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
