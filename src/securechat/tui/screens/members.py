"""`/members`: who is in the open group, each with their key's fingerprint.

The full fingerprint, not the short form: this is where a user compares keys
with a member, and a ✓ marks the ones already verified (`/verify <user>`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from securechat.client.api import GroupMember


def in_rows(fingerprint: str, per_row: int = 8) -> str:
    """A spaced fingerprint in rows of `per_row` groups: compared a row at a time, and a
    64-digit one would otherwise wrap wherever the dialog's width falls."""
    groups = fingerprint.split()
    return "\n".join(" ".join(groups[i : i + per_row]) for i in range(0, len(groups), per_row))


class MembersScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(
        self, title: str, members: Sequence[GroupMember], me: str, key_changed: Sequence[str]
    ) -> None:
        super().__init__()
        self.title_text = title
        self.members = members
        self.me = me
        self.key_changed = key_changed

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        for member in self.members:
            name = Text(member.user, style="bold")
            if member.user == self.me:
                name.append(" (you)", style="dim")
            if member.admin:
                name.append(" admin", style="cyan")
            if member.user == self.me:
                # There is nothing to compare one's own key with: `/verify` refuses it.
                mark = Text("your key", style="dim")
            elif member.user in self.key_changed:
                mark = Text("⚠ key changed", style="bold red")
            elif member.verified:
                mark = Text("✓ verified", style="bold green")
            else:
                mark = Text("not verified", style="dim")
            table.add_row(name, Text(in_rows(member.fingerprint)), mark)
        count = len(self.members)
        with Vertical(classes="dialog -wide"):
            yield Static(
                Text.assemble((self.title_text, "bold"), f" · {count} member{'s' * (count != 1)}"),
                classes="dialog-title",
            )
            with VerticalScroll(id="members-list"):
                yield Static(table)
            yield Static(
                Text(
                    "Compare a fingerprint with its owner in person or by phone, then "
                    "`/verify <user>` marks it ✓.",
                    style="dim",
                )
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close").focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
