"""The main screen: conversations, the chat, the input line and the status bar.

It is where commands run. Every call into the ChatClient happens here (or in
the app), in workers, and the results go back into widgets that only draw.
Sends are not `exclusive` workers: cancelling one mid-flight would leave the
message waiting in the outbox until the next reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from securechat.client.core import ChatClient
from securechat.client.events import (
    ConnectionChanged,
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    FileOffered,
    KeyChanged,
    KeyShared,
    MessageReceived,
    PresenceChanged,
)
from securechat.client.vault_store import MessageRecord, StoredMessage
from securechat.errors import SecureChatError
from securechat.tui import commands
from securechat.tui.messages import CoreEvent, SignedOut
from securechat.tui.providers import SecureChatCommands
from securechat.tui.safe_text import one_line
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.help import HelpScreen
from securechat.tui.screens.safety import SafetyNumberScreen
from securechat.tui.screens.search import SearchScreen
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.command_input import CommandInput
from securechat.tui.widgets.conversation_header import ConversationHeader
from securechat.tui.widgets.conversation_list import ConversationList, ConversationSummary
from securechat.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from securechat.tui.app import SecureChatApp

PAGE = 50
JUMP_LIMIT = 2000
"""How far back a search jump loads contiguous history before showing the page alone."""

FILE_SHARING_UNAVAILABLE = "file sharing is not available yet: send the file another way for now"


class MainScreen(Screen[None]):
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {SecureChatCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("f2", "focus_conversations", "Conversations"),
        Binding("ctrl+f", "search", "Search"),
        Binding("ctrl+o", "older", "Older"),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("escape", "focus_input", "Input", show=False),
    ]

    def __init__(self, client: ChatClient, server: str) -> None:
        super().__init__()
        self.client = client
        self.server = server
        self.me = client.username or ""
        self.current: str | None = None
        self.online: set[str] = set()
        self._send_lock = asyncio.Lock()

    @property
    def chat_app(self) -> SecureChatApp:
        return cast("SecureChatApp", self.app)

    def compose(self) -> ComposeResult:
        with Horizontal(id="main-body"):
            yield ConversationList(id="conversations")
            with Vertical(id="chat-pane"):
                yield ConversationHeader(id="chat-header")
                yield ChatLog(self.me, self.chat_app.time_format, id="chat")
                yield Static(id="feedback")
                yield CommandInput(
                    id="input", placeholder="message, or a command (Tab completes, F1 for help)"
                )
        yield StatusBar(id="status")
        yield Footer()

    async def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.server, status.user = self.server, self.me
        self._read_events()
        records = self.client.conversations()
        self._refresh()
        self.query_one("#input").focus()
        self._open(records[0].peer if records else None)

    # --- events from the client core ---------------------------------------------------

    @work(exclusive=True, group="events")
    async def _read_events(self) -> None:
        """Carries core events into the message queue; runs as long as the screen."""
        while True:
            self.post_message(CoreEvent(await self.client.events.get()))

    @on(CoreEvent)
    async def _core_event(self, message: CoreEvent) -> None:
        chat = self.query_one(ChatLog)
        match message.event:
            case ConnectionChanged(state=state, detail=detail):
                status = self.query_one(StatusBar)
                status.connection, status.detail = state, detail
            case MessageReceived(peer=peer, text=text, ts=ts, message_id=message_id):
                record = MessageRecord(peer=peer, outgoing=False, text=text, ts=ts)
                if peer == self.current and chat.peer == peer:
                    await chat.append(StoredMessage(message_id, record))
                    self.client.mark_read(peer)
                else:
                    self.chat_app.alert_incoming(peer, text)
                self._refresh()
            case DeliveryChanged(eid=eid, state=state, detail=detail):
                chat.set_delivery(eid, state, detail)
            case PresenceChanged(user=user, state=state):
                (self.online.add if state == "online" else self.online.discard)(user)
                self._refresh()
            case ConversationChanged(peer=peer, state=state):
                if peer == self.current and state == ConversationState.ACTIVE:
                    await chat.add_notice(f"🔒 end-to-end session with {peer} is active")
                self._refresh()
            case KeyShared(peer=peer, fingerprint=fingerprint):
                self._say(f"{peer} shared their key ({_short(fingerprint)}); `talk {peer}` next")
                self._refresh()
            case KeyChanged(peer=peer):
                self.notify(
                    f"{peer}'s key changed! Check `verify {peer}` before `trust {peer}`.",
                    severity="error",
                    timeout=15,
                )
                if peer == self.current:
                    await chat.add_notice(f"⚠ {peer}'s key changed; messages are held", True)
                self._refresh()
            case ErrorRaised(message=text):
                self.notify(one_line(text, 200), severity="error", timeout=10)
            case FileOffered(peer=peer):
                self._say(f"{peer} offered a file; {FILE_SHARING_UNAVAILABLE}", error=True)
            case _:
                pass

    # --- what is shown ------------------------------------------------------------------

    def _refresh(self) -> None:
        """Redraws the list, the header and the completion names from the vault."""
        records = self.client.conversations()
        summaries = [
            ConversationSummary(
                r.peer, r.unread, r.peer in self.online, self.client.conversation_state(r.peer)
            )
            for r in records
        ]
        if self.current and self.current not in {r.peer for r in records}:
            state = self.client.conversation_state(self.current)
            summaries.insert(0, ConversationSummary(self.current, 0, False, state))
        self.query_one(ConversationList).show(summaries, self.current)
        state = (
            self.client.conversation_state(self.current) if self.current else ConversationState.NONE
        )
        self.query_one(ConversationHeader).show(self.current, state, self.current in self.online)
        self.query_one(CommandInput).usernames = [s.peer for s in summaries]

    def _say(self, text: str, error: bool = False) -> None:
        """One line under the chat that stays until the next command: errors and results."""
        feedback = self.query_one("#feedback", Static)
        feedback.set_class(error, "-error")
        feedback.update(text)

    @work(exclusive=True, group="history")
    async def _open(self, peer: str | None, jump_to: int | None = None) -> None:
        """Shows a conversation from its last page; for a search hit, pages back to it."""
        chat = self.query_one(ChatLog)
        self.current = peer
        if peer is None:
            await chat.show(None, [], False)
            self._refresh()
            return
        page = self.client.history(peer, limit=PAGE)
        while jump_to is not None and page and page[0].id > jump_to and len(page) < JUMP_LIMIT:
            older = self.client.history(peer, before_id=page[0].id, limit=PAGE)
            if not older:
                break
            page = older + page
        if jump_to is not None and all(m.id != jump_to for m in page):
            page = self.client.history(peer, before_id=jump_to + 1, limit=PAGE)
            self._say(f"showing older history; `open {peer}` shows the latest messages")
        await chat.show(peer, page, has_more=bool(page) and len(page) % PAGE == 0)
        if jump_to is not None:
            chat.highlight(jump_to)
        self.client.mark_read(peer)
        self._refresh()

    @on(ConversationList.Opened)
    def _conversation_chosen(self, message: ConversationList.Opened) -> None:
        self._open(message.peer)
        self.query_one("#input").focus()

    @on(ChatLog.LoadOlder)
    def _load_older(self, message: ChatLog.LoadOlder) -> None:
        self._older(message.peer, message.before_id)

    @work(exclusive=True, group="older")
    async def _older(self, peer: str, before_id: int) -> None:
        chat = self.query_one(ChatLog)
        page = self.client.history(peer, before_id=before_id, limit=PAGE)
        if chat.peer == peer:
            await chat.prepend(page, has_more=len(page) == PAGE)

    # --- the input line ----------------------------------------------------------------

    @on(Input.Submitted, "#input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.value = ""
        if not event.value.strip():
            return
        try:
            command = commands.parse(event.value)
        except commands.ParseError as exc:
            self._say(str(exc), error=True)
            return
        self._say("")
        self.run_command(command)

    def run_command(self, command: commands.Command) -> None:
        """Runs a parsed command; the input line and the command palette both end here."""
        match command:
            case commands.Message(text=text):
                self._message(text)
            case commands.ShareKey(user=user):
                self._sharekey(user)
            case commands.Talk(user=user):
                self._talk(user)
            case commands.Open(user=user):
                self._open(user)
            case commands.Verify(user=user):
                self._verify(user)
            case commands.Trust(user=user):
                self._trust(user)
            case commands.SendFile():
                self._say(FILE_SHARING_UNAVAILABLE, error=True)
            case commands.Search(query=query):
                self._search(query)
            case commands.Delete(user=user):
                self._confirm_delete(user)
            case commands.DeleteAccount():
                self._confirm_delete_account()
            case commands.Reset():
                self.chat_app.run_reset(command, self.server)
            case commands.Help():
                self.action_help()
            case commands.Quit():
                self.app.exit()

    def _message(self, text: str) -> None:
        if self.current is None:
            word = text.split()[0]
            hint = commands.suggest(word)
            did_you_mean = f" (did you mean `{hint}`?)" if hint else ""
            self._say(
                f"no conversation is open, so this was not sent{did_you_mean}. "
                "Pick one on the left (F2) or type `open <user>`; `help` lists the commands.",
                error=True,
            )
            return
        self._send(self.current, text)

    @work(group="send")
    async def _send(self, peer: str, text: str) -> None:
        """The core encrypts or refuses: it never sends without a session."""
        async with self._send_lock:
            try:
                eid = await self.client.send_text(peer, text)
            except SecureChatError as exc:
                self._say(f"not sent: {exc}", error=True)
                return
            record = MessageRecord(
                peer=peer,
                outgoing=True,
                text=text,
                ts=self.chat_app.clock(),
                eid=eid,
                state=DeliveryState.SENDING,
            )
            chat = self.query_one(ChatLog)
            if chat.peer == peer:
                await chat.append(StoredMessage(0, record))
            self._refresh()

    @work(group="command")
    async def _sharekey(self, user: str) -> None:
        try:
            fingerprint = await self.client.sharekey(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            return
        self._say(
            f"your key went to {user} (your fingerprint {_short(fingerprint)}). "
            f"Once {user} shares theirs, `talk {user}`."
        )
        if self.current is None:
            self._open(user)
        else:
            self._refresh()

    @work(group="command")
    async def _talk(self, user: str) -> None:
        try:
            state = await self.client.talk(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            self._refresh()
            return
        self._open(user)
        if state != ConversationState.ACTIVE:
            self._say(f"session set-up sent to {user}; it turns 🔒 when {user}'s client answers")

    def _verify(self, user: str) -> None:
        try:
            number = self.client.verify(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            return
        changed = self.client.conversation_state(user) == ConversationState.KEY_CHANGED

        def chosen(trust: bool | None) -> None:
            if trust:
                self._trust(user)

        self.app.push_screen(SafetyNumberScreen(user, number, changed), chosen)

    def _trust(self, user: str) -> None:
        try:
            fingerprint = self.client.trust(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            return
        self._say(
            f"you trust {user}'s key {_short(fingerprint)}; `talk {user}` starts a new session"
        )
        self._refresh()

    def _search(self, query: str) -> None:
        results = self.client.search(query)

        def chosen(message: StoredMessage | None) -> None:
            if message is not None:
                self._open(message.record.peer, jump_to=message.id)
                self.query_one("#input").focus()

        self.app.push_screen(SearchScreen(query, results, self.chat_app.time_format), chosen)

    def _confirm_delete(self, user: str) -> None:
        def chosen(answer: str | None) -> None:
            if answer is not None:
                self._delete(user)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete the conversation with {user}?",
                f"This removes every message with {user} from this device and whatever the "
                "relay still holds for it. It cannot be undone.",
                "Delete conversation",
            ),
            chosen,
        )

    @work(group="command")
    async def _delete(self, user: str) -> None:
        try:
            await self.client.delete_conversation(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"the conversation with {user} is deleted")
        if self.current == user:
            self._open(None)
        else:
            self._refresh()

    def _confirm_delete_account(self) -> None:
        def chosen(password: str | None) -> None:
            if password:
                self._delete_account(password)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete the account {self.me}?",
                "The relay forgets your account and this device's vault is wiped: every "
                "key and message is gone for good. Type your password to confirm.",
                "Delete my account",
                ask_password=True,
            ),
            chosen,
        )

    @work(exclusive=True, group="account")
    async def _delete_account(self, password: str) -> None:
        try:
            await self.client.delete_account(password)
        except SecureChatError as exc:
            self._say(f"the account was not deleted: {exc}", error=True)
            return
        self.post_message(SignedOut(f"the account {self.me} was deleted"))

    # --- bindings ------------------------------------------------------------------------

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_focus_conversations(self) -> None:
        self.query_one(ConversationList).focus()

    def action_focus_input(self) -> None:
        self.query_one("#input").focus()

    def action_search(self) -> None:
        self.prefill("search ")

    def prefill(self, text: str) -> None:
        """Starts a command on the input line for the user to finish (palette, Ctrl+F)."""
        line = self.query_one(CommandInput)
        line.value = text
        line.cursor_position = len(text)
        line.focus()

    def action_older(self) -> None:
        self.query_one(ChatLog).request_older()

    def action_retry(self) -> None:
        failed = self.query_one(ChatLog).last_failed()
        if failed is None:
            self._say("no failed message to retry in this conversation")
            return
        self._send(failed.record.peer, failed.record.text)

    def palette_entries(self) -> list[tuple[str, str, commands.Command | str]]:
        """(title, help, command or text to prefill) for the command palette."""
        entries: list[tuple[str, str, commands.Command | str]] = [
            ("Search history…", "search every conversation on this device", "search "),
            ("Share key with…", "send your identity key to a user", "sharekey "),
            ("Talk to…", "start an end-to-end session with a user", "talk "),
            ("Help", "list commands and keys", commands.Help()),
            ("Delete account", "delete your account and this vault", commands.DeleteAccount()),
            ("Quit", "leave securechat", commands.Quit()),
        ]
        for record in self.client.conversations():
            peer = record.peer
            entries += [
                (f"Open {peer}", f"show the conversation with {peer}", commands.Open(peer)),
                (f"Share key with {peer}", "send your key", commands.ShareKey(peer)),
                (f"Talk to {peer}", "start an end-to-end session", commands.Talk(peer)),
                (f"Verify {peer}", "show the safety number", commands.Verify(peer)),
                (f"Trust {peer}", "accept a changed key", commands.Trust(peer)),
                (f"Delete conversation with {peer}", "after confirming", commands.Delete(peer)),
            ]
        return entries


def _short(fingerprint: str) -> str:
    """Enough of a fingerprint to recognise; `verify` shows the full safety number."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, min(len(fingerprint), 16), 4))
