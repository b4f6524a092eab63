"""Sign in or register: the first screen, before there is a vault to read.

It also takes the few commands that make sense before signing in (`reset`,
`help`, `quit`), because a forgotten password is exactly when you cannot
reach the main screen's input line. Nothing typed here is a message, so the
slash is optional.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

import securechat.tui.commands as commands
from securechat.errors import SecureChatError, VaultBehind
from securechat.protocol.limits import USERNAME_PATTERN
from securechat.protocol.passwords import password_problem, password_rules
from securechat.tui.messages import SignedIn
from securechat.tui.screens.help import HelpScreen
from securechat.tui.screens.recovery import RecoveryCodeScreen
from securechat.tui.screens.reset import ResetPasswordScreen
from securechat.tui.services import AppServices
from securechat.tui.widgets.command_input import CommandInput


class SignInScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "register", "Register"),
        Binding("ctrl+t", "reset", "Reset password"),
        Binding("f1", "help", "Help"),
    ]

    def __init__(self, server: str, services: AppServices, username: str = "") -> None:
        super().__init__()
        self.services = services
        self.server = server
        self.username = username
        self._filled_user = username
        """The username the form filled in itself; a relay change replaces only that one."""
        self._relay = server.strip()

    def compose(self) -> ComposeResult:
        with Center(id="signin-center"), Vertical(id="signin-box"):
            yield Static(
                Text.assemble(("🔒 securechat", "bold"), ("  end-to-end encrypted chat", "dim")),
                id="signin-title",
            )
            yield Label("Server")
            yield Input(self.server, id="server", placeholder="ws://host:port")
            yield Label("Username")
            yield Input(self.username, id="username", placeholder="3-32 of a-z 0-9 _ . -")
            yield Label("Password")
            yield Input(id="password", password=True, placeholder="your password")
            yield Static(self._rules_text(), id="password-rules")
            yield Label("Previous password or recovery code", id="previous-label")
            yield Input(id="previous", password=True, placeholder="only after an operator reset")
            yield Static(id="signin-status")
            with Horizontal(id="signin-buttons"):
                yield Button("Sign in", id="signin", variant="primary")
                yield Button("Register", id="register")
                yield Button("Reset password", id="reset")
        yield CommandInput(
            id="signin-command",
            placeholder="or type a command: /reset <user> <token> <new_password> · /help · /quit",
        )
        yield Footer()

    def on_mount(self) -> None:
        self._ask_previous(False)
        self.query_one("#password" if self.username else "#username", Input).focus()

    def _ask_previous(self, shown: bool) -> None:
        """The field for a vault an operator reset left under the previous password."""
        self.query_one("#previous-label").display = shown
        self.query_one("#previous").display = shown

    # --- sign in / register ----------------------------------------------------------

    @on(Button.Pressed, "#signin")
    @on(Input.Submitted, "#password, #previous")
    def action_sign_in(self) -> None:
        self._authenticate(register=False)

    @on(Button.Pressed, "#register")
    def action_register(self) -> None:
        self._authenticate(register=True)

    @on(Input.Submitted, "#server, #username")
    def _next_field(self) -> None:
        self.focus_next()

    @on(Input.Changed, "#server")
    def _server_changed(self, event: Input.Changed) -> None:
        """Fills in the last username used on the relay now typed, unless the user typed one."""
        if event.value.strip() == self._relay:
            return
        self._relay = event.value.strip()
        field = self.query_one("#username", Input)
        if field.value.strip() not in ("", self._filled_user):
            return
        self._filled_user = self.services.last_users.get(event.value)
        field.value = self._filled_user

    @on(Input.Changed, "#username, #password")
    def _check_rules(self) -> None:
        self.query_one("#password-rules", Static).update(self._rules_text())

    def _rules_text(self) -> Text:
        """The rules for a new password, each ticked off as the password meets it."""
        if not self.is_mounted:
            password, user = "", self.username
        else:
            password = self.query_one("#password", Input).value
            user = self.query_one("#username", Input).value.strip().lower()
        text = Text("A new password needs: ", style="dim")
        for i, rule in enumerate(password_rules(password, user)):
            if i:
                text.append(" · ", style="dim")
            if not password:
                text.append(rule.text, style="dim")
            elif rule.met:
                text.append(f"✓ {rule.text}", style="green")
            else:
                text.append(f"✗ {rule.text}", style="bold red")
        return text

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#signin-status", Static)
        status.set_class(error, "-error")
        status.update(Text(text))

    def _check_form(self, register: bool) -> tuple[str, str, str] | None:
        server = self.query_one("#server", Input).value.strip()
        user = self.query_one("#username", Input).value.strip().lower()
        password = self.query_one("#password", Input).value
        if not server:
            self._status("type the relay's address, like ws://127.0.0.1:8765", error=True)
        elif not re.match(USERNAME_PATTERN, user):
            self._status("a username is 3 to 32 of a-z, 0-9, `_`, `.` and `-`", error=True)
        elif not password:
            self._status("type your password", error=True)
        elif register and (problem := password_problem(password, user)) is not None:
            self._status(problem, error=True)
        else:
            return server, user, password
        return None

    @work(exclusive=True, group="auth")
    async def _authenticate(self, register: bool) -> None:
        form = self._check_form(register)
        if form is None:
            return
        server, user, password = form
        previous_field = self.query_one("#previous", Input)
        previous = previous_field.value if previous_field.display and not register else ""
        self._status("creating your keys…" if register else "unlocking your vault…")
        self.query_one("#signin-buttons").disabled = True
        try:
            client = await self.services.open_client(server)
            if register:
                code = await client.register(user, password)
            else:
                await client.login(user, password, previous or None)
        except VaultBehind as exc:
            self._ask_previous(True)
            previous_field.focus()
            self._status(str(exc), error=True)
            return
        except SecureChatError as exc:
            self._status(self.services.explain(exc), error=True)
            return
        finally:
            self.query_one("#signin-buttons").disabled = False
        self.query_one("#password", Input).value = ""
        previous_field.value = ""
        if previous:
            self.app.notify("your history here is unlocked, and now locked under the new password")
        if register:
            await self.app.push_screen_wait(RecoveryCodeScreen(code))
        self.post_message(SignedIn(client.username or user))

    # --- reset and the command line ------------------------------------------------

    def action_reset(self) -> None:
        username = self.query_one("#username", Input).value.strip().lower()
        self.app.push_screen(ResetPasswordScreen(username), self._reset_chosen)

    def _reset_chosen(self, command: commands.Reset | None) -> None:
        if command is not None:
            self.services.run_reset(command, self.query_one("#server", Input).value.strip())

    @on(Button.Pressed, "#reset")
    def _reset_pressed(self) -> None:
        self.action_reset()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    @on(Input.Submitted, "#signin-command")
    def _command(self, event: Input.Submitted) -> None:
        event.input.value = ""
        line = event.value.strip()
        if not line:
            return
        try:
            command = commands.parse(line if line.startswith("/") else f"/{line}")
        except commands.ParseError as exc:
            self._status(str(exc), error=True)
            return
        match command:
            case commands.Reset():
                self.services.run_reset(command, self.query_one("#server", Input).value.strip())
            case commands.Help():
                self.action_help()
            case commands.Quit():
                self.app.exit()
            case _:
                self._status(
                    "sign in first; before that only `/reset`, `/help` and `/quit` work", True
                )
