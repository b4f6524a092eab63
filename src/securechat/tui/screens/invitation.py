"""An invitation to a group, shown before the group opens.

Who invited us and who is in the group come first, as Signal's message
requests do: a group is a room of people, and the user should see the room
before talking in it. An inviter whose key this device had not pinned is
shown with their fingerprint (trust on first use, as `sharekey`): the key is
pinned now, and comparing it is the only check that it is theirs.
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

from securechat.client.events import GroupInvited
from securechat.tui.safe_text import one_line

InvitationChoice = Literal["open", "leave"]


class InvitationScreen(ModalScreen[InvitationChoice | None]):
    """Dismisses with "open", "leave", or None for later (the group stays in the list)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "later", "Later")]

    def __init__(self, invitation: GroupInvited, me: str) -> None:
        super().__init__()
        self.invitation = invitation
        self.me = me

    def compose(self) -> ComposeResult:
        invited = self.invitation
        by = invited.by
        # The name and topic are chosen by the inviter: inert text, one line each.
        title = Text.assemble(
            (f"{by} invited you to the group ", "bold"), (one_line(invited.name, 64), "bold cyan")
        )
        others = [m for m in invited.members if m != self.me]
        with Vertical(classes="dialog", id="invitation"):
            yield Static(title, classes="dialog-title")
            if invited.topic:
                yield Static(Text(one_line(invited.topic, 200), style="italic"))
            yield Static(
                Text.assemble(
                    (f"Members ({len(invited.members)}): ", "bold"),
                    ", ".join(others) + (f" and you ({self.me})" if self.me else ""),
                ),
                id="invitation-members",
            )
            if invited.pinned:
                yield Static(
                    Text(f"{by}'s key is the one pinned on this device.", style="green"),
                    id="invitation-key",
                )
            else:
                yield Static(
                    Text.assemble(
                        (f"{by}'s key is new to this device: it is pinned now.\n", "bold yellow"),
                        ("Fingerprint ", "bold"),
                        (invited.fingerprint, "bold"),
                        f"\nCompare it with {by} (`/verify {by}`) before you trust what is "
                        "said in this group.",
                    ),
                    id="invitation-key",
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Later", id="later")
                yield Button("Leave group", id="leave", variant="error")
                yield Button("Open group", id="open", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#open").focus()

    @on(Button.Pressed, "#open")
    def _open(self) -> None:
        self.dismiss("open")

    @on(Button.Pressed, "#leave")
    def _leave(self) -> None:
        self.dismiss("leave")

    @on(Button.Pressed, "#later")
    def action_later(self) -> None:
        self.dismiss(None)
