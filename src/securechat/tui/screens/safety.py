"""The safety number for one conversation, to compare with the peer out of band.

While a key change is pending it shows both numbers, labelled, and both ways
out: keep the pinned key or accept the new one. Neither is the default.
Otherwise the user can mark the key as verified once the numbers match, as in
Signal; the mark shows as a ✓ and a key change clears it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from securechat.client.trust import SafetyNumbers

Choice = Literal["keep", "accept", "verified"]


class SafetyNumberScreen(ModalScreen[Choice | None]):
    """Dismisses with the user's choice on a changed key, or None when only closed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, numbers: SafetyNumbers) -> None:
        super().__init__()
        self.numbers = numbers

    def compose(self) -> ComposeResult:
        peer, offered = self.numbers.peer, self.numbers.offered
        with Vertical(classes="dialog"):
            yield Static(Text(f"Safety number with {peer}", style="bold"), classes="dialog-title")
            if offered is not None:
                yield Static(Text("Pinned key (the one you trusted before):", style="bold"))
            yield Static(Text(self.numbers.pinned, style="bold"), id="safety-number")
            if offered is not None:
                yield Static(Text(f"New key offered for {peer} (not trusted):", style="bold red"))
                yield Static(Text(offered, style="bold red"), id="offered-number")
                yield Static(
                    Text(
                        f"{peer}'s key changed. Ask {peer} to read their number out in person "
                        "or over a call you trust. If it is the pinned one, keep it: the new "
                        "key was not theirs. Accept the new key only if theirs matches it.",
                        style="bold red",
                    )
                )
            elif self.numbers.verified:
                yield Static(
                    Text(f"✓ You marked {peer}'s key as verified.", style="bold green"),
                    id="verified-note",
                )
            else:
                yield Static(
                    Text(
                        f"Compare these digits with {peer} in person or over a call you trust. "
                        "If they match, nobody is between you: mark the key as verified."
                    )
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")
                if offered is None and not self.numbers.verified:
                    yield Button("Mark as verified", id="mark-verified", variant="success")
                if offered is not None:
                    yield Button("Keep pinned key", id="keep", variant="success")
                    yield Button("Accept new key", id="accept", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#close").focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self.dismiss("keep")

    @on(Button.Pressed, "#accept")
    def _accept(self) -> None:
        self.dismiss("accept")

    @on(Button.Pressed, "#mark-verified")
    def _mark_verified(self) -> None:
        self.dismiss("verified")
