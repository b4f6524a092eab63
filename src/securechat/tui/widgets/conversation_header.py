"""The line above the chat: who the conversation is with and how safe it is.

For a group: its name, "🔒 E2E Active · MLS · N members" and its topic; when a
member's key changed, the same warning as a direct conversation's, naming them.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from securechat.client.api import GroupInfo
from securechat.client.events import ConversationState
from securechat.tui.safe_text import one_line
from securechat.tui.widgets.conversation_list import badge, group_badge, group_name

_HINTS = {
    ConversationState.NONE: "`sharekey {peer}` and `talk {peer}` start an encrypted session",
    ConversationState.PENDING: "waiting for {peer} to answer the session set-up",
    ConversationState.ACTIVE: "messages are end-to-end encrypted; `/verify {peer}` to compare keys",
    ConversationState.JAMMED: "{peer}'s messages no longer open: ctrl+t starts a new session",
}


class ConversationHeader(Static):
    DEFAULT_CSS = """
    ConversationHeader {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    ConversationHeader.-key-changed {
        background: $error 40%;
    }
    """

    _shown: tuple[str | None, ConversationState, bool, bool, GroupInfo | None, str] | None = None

    def show(
        self, peer: str | None, state: ConversationState, online: bool, deleted: bool = False
    ) -> None:
        """Redraws only on a change: every update relays out the whole screen (auto height)."""
        if self._shown == (peer, state, online, deleted, None, ""):
            return
        self._shown = (peer, state, online, deleted, None, "")
        self.set_class(state == ConversationState.KEY_CHANGED and peer is not None, "-key-changed")
        if peer is None:
            self.update(Text("securechat", style="bold"))
            return
        if deleted:
            self.update(
                Text.assemble(
                    (peer, "bold"),
                    (" account deleted", "red"),
                    (f"  {peer} deleted their account: nothing sent here can reach them", "dim"),
                )
            )
            return
        presence = Text(" online", style="green") if online else Text(" offline", style="dim")
        line = Text.assemble((peer, "bold"), presence, "  ", badge(state))
        if state == ConversationState.KEY_CHANGED:
            line.append(
                f"\n⚠ {peer}'s key changed! This can mean someone is intercepting. Messages "
                f"are held. Compare `/verify {peer}` with {peer} in person or by phone, then "
                f"`/reject {peer}` keeps the key you had or `/trust {peer}` accepts the new one.",
                style="bold",
            )
        else:
            line.append("  " + _HINTS[state].format(peer=peer), style="dim")
        self.update(line)

    def show_group(self, key: str, group: GroupInfo | None, known: str = "") -> None:
        """A group's header; `group` is None once we are no longer in it (the history stays
        readable), and `known` is then its name as last seen."""
        if self._shown == (key, ConversationState.ACTIVE, False, False, group, known):
            return
        self._shown = (key, ConversationState.ACTIVE, False, False, group, known)
        self.set_class(group is not None and bool(group.key_changed), "-key-changed")
        line = Text.assemble(
            ("# ", "cyan"), group_name(group, key, known=known), "  ", group_badge(group)
        )
        if group is None:
            line.append("  you are no longer a member: nothing can be sent here", style="dim")
        elif group.key_changed:
            users = ", ".join(group.key_changed)
            first = group.key_changed[0]
            line.append(
                f"\n⚠ the key of {users} changed! This can mean someone is intercepting. "
                f"Nothing is sent to this group until you compare `/verify {first}` with "
                f"{first} in person or by phone, then `/reject {first}` keeps the key you had "
                f"or `/trust {first}` accepts the new one.",
                style="bold",
            )
        elif group.topic:
            line.append("  " + one_line(group.topic, 200), style="dim")
        else:
            line.append("  `/members` lists who reads this", style="dim")
        self.update(line)
