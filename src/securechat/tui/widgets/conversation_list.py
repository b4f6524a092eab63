"""The left pane: every conversation with unread count, presence and security badge.

A group's row has its name (chosen by a member: shown as text, never markup),
its member count and the MLS badge; its id is the conversation key (`#…`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from securechat.client.api import GroupInfo
from securechat.client.conversation import GROUP_PREFIX
from securechat.client.events import ConversationState
from securechat.tui.safe_text import one_line

BADGES: dict[ConversationState, tuple[str, str]] = {
    ConversationState.ACTIVE: ("🔒 E2E Active", "green"),
    ConversationState.PENDING: ("not secure yet", "yellow"),
    ConversationState.NONE: ("not secure yet", "yellow"),
    ConversationState.KEY_CHANGED: ("key changed!", "bold red"),
    ConversationState.JAMMED: ("session stuck", "bold red"),
}


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    peer: str
    unread: int
    online: bool
    state: ConversationState
    verified: bool = False
    """The user compared safety numbers and marked the key (cleared by a key change)."""
    deleted: bool = False
    """The peer's account is gone: nothing sent can reach them."""
    group: GroupInfo | None = None
    """For a group we are in: its name and members (None for one we left)."""
    name: str = ""
    """A group's name as last known: for one we are no longer in, `group` is None."""

    @property
    def is_group(self) -> bool:
        return is_group(self.peer)


def is_group(key: str) -> bool:
    """A conversation key names a group (`ConversationId.key`): no username starts with `#`."""
    return key.startswith(GROUP_PREFIX)


def badge(state: ConversationState) -> Text:
    """The security badge for a conversation state: the words the issue asks for, coloured."""
    label, style = BADGES[state]
    return Text(label, style=style)


def group_badge(group: GroupInfo | None, short: bool = False) -> Text:
    """A group's badge: MLS and its size, a member's changed key first, or that we left.

    `short` drops "E2E Active" so the list's narrow rows keep it on one line.
    """
    if group is None:
        return Text("no longer a member", style="dim")
    if group.key_changed:
        return Text("key changed!", style="bold red")
    count = len(group.members)
    size = f"MLS · {count} member{'s' * (count != 1)}"
    if short:
        return Text(f"🔒 {size}", style="green")
    return Text.assemble(badge(ConversationState.ACTIVE), (f" · {size}", "green"))


def group_name(group: GroupInfo | None, key: str, limit: int = 64, known: str = "") -> Text:
    """A group's name as its members set it, made inert. A group we are no longer in keeps
    its last name (`known`); its id shows only when no name is known."""
    name = group.name if group is not None else known
    if not name:
        return Text(f"group {key.removeprefix(GROUP_PREFIX)[:8]}", style="bold")
    return Text(one_line(name, limit), style="bold")


class ConversationList(OptionList):
    DEFAULT_CSS = """
    ConversationList {
        width: 32;
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
    }
    ConversationList:focus {
        border: round $primary;
    }
    """

    @dataclass
    class Opened(Message):
        """The user chose a conversation (Enter or click)."""

        peer: str

    _shown: tuple[list[ConversationSummary], str | None] | None = None

    def on_mount(self) -> None:
        self.border_title = "Conversations"

    def show(self, summaries: list[ConversationSummary], current: str | None) -> None:
        """Replaces the list, keeping the highlight on the open conversation.

        The same list again changes nothing: rebuilding and redrawing every row
        per arriving message held up key echo (bench chatlog).
        """
        if self._shown == (summaries, current):
            return
        self._shown = (summaries, current)
        self.set_options([Option(self._prompt(s), id=s.peer) for s in summaries])
        peers = [s.peer for s in summaries]
        if current in peers:
            self.highlighted = peers.index(current)

    @staticmethod
    def _prompt(summary: ConversationSummary) -> Text:
        if summary.is_group:
            line = Text.assemble(
                ("# ", "cyan"), group_name(summary.group, summary.peer, 26, summary.name)
            )
            if summary.unread:
                line.append(f" ({summary.unread})", style="bold cyan")
            line.append("\n  ")
            line.append_text(group_badge(summary.group, short=True))
            return line
        # Usernames are limited to [a-z0-9_.-] by the relay, so they are safe as text.
        if summary.deleted:
            line = Text.assemble(("✗ ", "red"), (summary.peer, "dim strike"))
        else:
            dot = Text("● ", style="green") if summary.online else Text("○ ", style="dim")
            line = Text.assemble(dot, (summary.peer, "bold"))
        if summary.verified:
            line.append(" ✓", style="bold green")
        if summary.unread:
            line.append(f" ({summary.unread})", style="bold cyan")
        line.append("\n  ")
        if summary.deleted:
            line.append("account deleted", style="red")
        else:
            line.append_text(badge(summary.state))
        return line

    @on(OptionList.OptionSelected)
    def _opened(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Opened(event.option.id))
