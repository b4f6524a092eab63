"""The line above the chat: who the conversation is with and how safe it is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from securechat.client.events import ConversationState
from securechat.tui.widgets.conversation_list import badge

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

    _shown: tuple[str | None, ConversationState, bool, bool] | None = None

    def show(
        self, peer: str | None, state: ConversationState, online: bool, deleted: bool = False
    ) -> None:
        """Redraws only on a change: every update relays out the whole screen (auto height)."""
        if self._shown == (peer, state, online, deleted):
            return
        self._shown = (peer, state, online, deleted)
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
