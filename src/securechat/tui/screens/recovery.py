"""The recovery code, shown once after registering or a reset, until the user says it is saved."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static

from securechat.tui.widgets.tick_box import TickBox


class RecoveryCodeScreen(ModalScreen[None]):
    """Cannot be dismissed by accident: no Escape, and the button waits for the checkbox.

    Enter ticks the box, and ticking it moves to Continue, so a second Enter goes on.

    The code is the only way back in after a forgotten password, and securechat
    never shows it again.
    """

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def compose(self) -> ComposeResult:
        with Vertical(id="recovery-box", classes="dialog"):
            yield Static(Text("Your recovery code", style="bold"), classes="dialog-title")
            yield Static(
                "Write it down and keep it somewhere safe. It resets your password and "
                "unlocks this device's history if you forget it. It is shown only now."
            )
            yield Static(Text(self.code, style="bold"), id="recovery-code")
            yield TickBox("I have saved my recovery code", id="saved")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Continue", id="continue", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#saved", Checkbox).focus()

    @on(Checkbox.Changed, "#saved")
    def _saved(self, event: Checkbox.Changed) -> None:
        button = self.query_one("#continue", Button)
        button.disabled = not event.value
        if event.value:
            button.focus()

    @on(Button.Pressed, "#continue")
    def _continue(self) -> None:
        self.dismiss(None)
