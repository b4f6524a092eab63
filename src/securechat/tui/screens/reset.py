"""The password reset form: the same action as the typed `reset` command."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from securechat.tui.commands import ParseError, Reset, parse


class ResetPasswordScreen(ModalScreen[Reset | None]):
    """Collects the fields and checks them with the command parser, so both paths agree."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, username: str = "") -> None:
        super().__init__()
        self.username = username

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Reset your password", style="bold"), classes="dialog-title")
            yield Static(
                "Use the recovery code you saved when registering (it keeps this device's "
                "history), or a token from the relay's operator (op-…): the history on this "
                "device then stays locked under the previous password until you type it, or "
                "the recovery code, once at the next sign-in. Nothing is deleted."
            )
            yield Label("Username")
            yield Input(self.username, id="reset-user")
            yield Label("Recovery code or token")
            yield Input(id="reset-token")
            yield Label("New password")
            yield Input(password=True, id="reset-password")
            yield Label("New password again")
            yield Input(password=True, id="reset-again")
            yield Static(id="reset-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="reset-cancel")
                yield Button("Reset password", id="reset-submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#reset-token" if self.username else "#reset-user").focus()

    @on(Button.Pressed, "#reset-submit")
    @on(Input.Submitted, "#reset-again")
    def _submit(self) -> None:
        values = {
            name: self.query_one(f"#reset-{name}", Input).value.strip()
            for name in ("user", "token", "password", "again")
        }
        error = self.query_one("#reset-error", Static)
        if values["password"] != values["again"]:
            error.update("the two new passwords differ")
            return
        if " " in values["token"]:
            error.update("the recovery code or token has no spaces")
            return
        try:
            command = parse(f"reset {values['user']} {values['token']} {values['password']}")
        except ParseError as exc:
            error.update(Text(str(exc).replace("<new_password>", "<new password>")))
            return
        assert isinstance(command, Reset)
        self.dismiss(command)

    @on(Input.Submitted, "#reset-user, #reset-token, #reset-password")
    def _next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#reset-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
