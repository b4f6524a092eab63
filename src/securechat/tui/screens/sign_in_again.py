"""Sign in again in place, when the relay ended the session (expiry, a password reset).

The main screen stays underneath, so the draft on the input line, the open
conversation and the outbox are all still there once the new session starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

Attempt = Callable[[str], Awaitable[str | None]]
"""Signs in with the password; returns the reason it failed, or None."""


class SignInAgainScreen(ModalScreen[bool]):
    """Dismisses with True once signed in again, False when the user quits instead."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "quit", "Quit")]

    def __init__(self, username: str, reason: str, attempt: Attempt) -> None:
        super().__init__()
        self.username = username
        self.reason = reason
        self.attempt = attempt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Sign in again", style="bold"), classes="dialog-title")
            yield Static(
                Text(
                    f"The relay ended the session of {self.username} ({self.reason}). Type "
                    "your password to go on: what you were typing and the messages not sent "
                    "yet are kept."
                )
            )
            yield Input(password=True, placeholder="your password", id="again-password")
            yield Static(id="again-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Quit", id="again-quit")
                yield Button("Sign in", id="again-submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#again-password").focus()

    @on(Button.Pressed, "#again-submit")
    @on(Input.Submitted, "#again-password")
    def _submit(self) -> None:
        password = self.query_one("#again-password", Input).value
        if not password:
            self.query_one("#again-error", Static).update("type your password")
            return
        self._sign_in(password)

    @work(exclusive=True, group="sign-in-again")
    async def _sign_in(self, password: str) -> None:
        self.query_one("#again-submit").disabled = True
        try:
            problem = await self.attempt(password)
        finally:
            self.query_one("#again-submit").disabled = False
        if problem is None:
            self.dismiss(True)
            return
        self.query_one("#again-password", Input).value = ""
        self.query_one("#again-error", Static).update(Text(problem))

    @on(Button.Pressed, "#again-quit")
    def action_quit(self) -> None:
        self.dismiss(False)
