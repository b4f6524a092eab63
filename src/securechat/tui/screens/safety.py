"""The safety number for one conversation, to compare with the peer out of band."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class SafetyNumberScreen(ModalScreen[bool]):
    """Dismisses with True when the user chose to trust a changed key from here."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, peer: str, number: str, key_changed: bool) -> None:
        super().__init__()
        self.peer = peer
        self.number = number
        self.key_changed = key_changed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                Text(f"Safety number with {self.peer}", style="bold"), classes="dialog-title"
            )
            yield Static(Text(self.number, style="bold"), id="safety-number")
            yield Static(
                Text(
                    f"Compare these digits with {self.peer} in person or over a call you trust. "
                    "If they match, nobody is between you."
                )
            )
            if self.key_changed:
                yield Static(
                    Text(
                        f"{self.peer}'s key changed. Trust it only if the numbers match.",
                        style="bold red",
                    )
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")
                if self.key_changed:
                    yield Button("They match: trust", id="trust", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#close").focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#trust")
    def _trust(self) -> None:
        self.dismiss(True)
