"""Every command and key binding on one page."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from securechat.tui.commands import BARE_HINT, COMMANDS

KEYS = [
    ("Enter", "send the line (message or command)"),
    ("Tab", "complete a command or username"),
    ("Up / Down", "previous / next line typed"),
    ("F2", "focus the conversation list (shows it when collapsed)"),
    ("Ctrl+B", "show or hide the conversation list (hidden below 90 columns)"),
    ("F3", "select the newest received file; Up/Down move, Enter (or a click) saves it"),
    ("Click a link", "show what the link check said about it"),
    ("Esc", "back to the input line"),
    ("Ctrl+O", "load older messages"),
    ("Ctrl+R", "retry the last failed message"),
    ("Ctrl+F", "search the history"),
    ("Ctrl+P", "command palette (also: change theme)"),
    ("Ctrl+Q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        commands = Table.grid(padding=(0, 2))
        for command in COMMANDS.values():
            usage = Text(command.usage(), style="bold")
            if bare := command.bare_usage():
                usage.append(f"\nor {bare}", style="")
            commands.add_row(usage, Text(command.summary))
        keys = Table.grid(padding=(0, 2))
        for key, what in KEYS:
            keys.add_row(Text(key, style="bold"), Text(what))
        with Vertical(classes="dialog -wide"):
            yield Static(Text("securechat help", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(
                    Text(
                        "Commands start with /. Anything else you type is a message to the "
                        "open conversation, encrypted end to end; it is never sent without a "
                        "session. `sharekey <user>`, `talk <user>` and `reset <user> <token> "
                        "<new_password>` also work without the slash when the line has exactly "
                        f"that shape; the input line then says it {BARE_HINT}. A leading space "
                        "or // sends a line as text (`//shrug` sends /shrug)."
                    )
                )
                yield Static(
                    Text(
                        "\nGroups: `/group new <name> <user> …` creates one and opens it; the "
                        "other group commands act on the group open in the chat."
                    )
                )
                yield Static(
                    Text(
                        "\nLinks carry a badge: [✓ safe], [? unknown], [⚠ suspicious] or a red "
                        "⚠ MALICIOUS, which is also shown defanged (hxxp, [.]). The automatic "
                        "check sends only hash prefixes to the relay; `/scan --full <url>` "
                        "sends the link to the relay and to VirusTotal and OTX."
                    )
                )
                yield Static(Text("\nCommands", style="bold underline"))
                yield Static(commands)
                yield Static(Text("\nKeys", style="bold underline"))
                yield Static(keys)
                yield Static(Text("\nEsc closes this page.", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
