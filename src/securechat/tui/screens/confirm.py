"""Confirmation for destructive actions, optionally asking for the password again."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[str | None]):
    """Dismisses with the password typed (or "" when none is asked), or None when cancelled.

    Cancel has the focus first, so a stray Enter never deletes anything.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, body: str, action: str, *, ask_password: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.action = action
        self.ask_password = ask_password

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(Text(self.body))
            if self.ask_password:
                yield Input(placeholder="your password", password=True, id="confirm-password")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.action, id="confirm", variant="error")

    def on_mount(self) -> None:
        target = "#confirm-password" if self.ask_password else "#cancel"
        self.query_one(target).focus()

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#confirm-password")
    def _confirm(self) -> None:
        if not self.ask_password:
            self.dismiss("")
            return
        password = self.query_one("#confirm-password", Input).value
        if password:
            self.dismiss(password)
        else:
            self.notify("type your password to confirm", severity="warning")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
