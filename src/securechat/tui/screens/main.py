"""The main screen: conversations, the chat, the input line and the status bar.

It is where commands run. Every call into the ChatClient happens here (or in
the app), in workers, and the results go back into widgets that only draw.
Sends are not `exclusive` workers: cancelling one mid-flight would leave the
message waiting in the outbox until the next reconnect.

Files go up one at a time, so the core's `TransferProgress` for a blob id the
screen has not learnt yet belongs to the upload in flight; progress for any
other unknown upload is one the core resumed after a reconnect. Link checks
run in their own workers, a few at a time, and never hold up a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

import securechat.tui.commands as commands
from securechat.client.core import ChatClient
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    FileOffered,
    KeyChanged,
    KeyKept,
    KeyShared,
    MessageReceived,
    MessagesMissing,
    PresenceChanged,
    TransferProgress,
)
from securechat.client.transfers import human_size
from securechat.client.trust import short_fingerprint
from securechat.client.vault_store import MessageRecord, StoredMessage
from securechat.crypto.errors import AuthenticationFailed
from securechat.errors import ConnectionLost, SecureChatError, ServerRejected
from securechat.scanner import extract_urls
from securechat.scanner.brands import DEFAULT_BRANDS, parse_brands
from securechat.tui.links import LinkBook, LinkState
from securechat.tui.messages import CoreEvent, SignedOut
from securechat.tui.providers import SecureChatCommands
from securechat.tui.safe_text import one_line
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.help import HelpScreen
from securechat.tui.screens.safety import Choice, SafetyNumberScreen
from securechat.tui.screens.scan import ScanScreen
from securechat.tui.screens.search import SearchScreen
from securechat.tui.screens.sign_in_again import SignInAgainScreen
from securechat.tui.services import AppServices
from securechat.tui.widgets.chat_log import ChatLog, FileLine, MessageLine
from securechat.tui.widgets.command_input import CommandInput
from securechat.tui.widgets.conversation_header import ConversationHeader
from securechat.tui.widgets.conversation_list import ConversationList, ConversationSummary
from securechat.tui.widgets.status_bar import StatusBar
from securechat.tui.widgets.transfers import TransferPanel

PAGE = 50
NARROW = 90
"""Below this many columns the conversation list (32 wide) collapses, leaving the chat usable."""
ARRIVALS_EVERY = 0.25
"""Seconds between redraws for messages arriving in a burst. Each line mounted on its own
relays out the whole screen, every line of the chat included: at 20 messages a second that
left no time to echo a key (`python -m bench chatlog`). The first message after a quiet
spell still shows at once."""
LINK_CHECKS_AT_ONCE = 4
LINK_TIMEOUT = 20.0
"""Seconds before a private link check reads as unknown; a full lookup gets the core's 90."""
FULL_LINK_TIMEOUT = 95.0


class MainScreen(Screen[None]):
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {SecureChatCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="help"),
        Binding("f2", "focus_conversations", "Conversations", id="focus_conversations"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="toggle_sidebar"),
        Binding("f3", "files", "Files", id="files"),
        Binding("ctrl+f", "search", "Search", id="search"),
        Binding("ctrl+o", "older", "Older", id="older"),
        Binding("ctrl+r", "retry", "Retry", id="retry"),
        # Announced by the stuck-session notice and header rather than in the footer.
        Binding("ctrl+t", "new_session", "New session", show=False, id="new_session"),
        Binding("escape", "focus_input", "Input", show=False),
    ]

    def __init__(
        self,
        client: ChatClient,
        server: str,
        services: AppServices,
        brands: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.client = client
        self.services = services
        self.server = server
        self.me = client.username or ""
        self.current: str | None = None
        self.online: set[str] = set()
        self.links = LinkBook(DEFAULT_BRANDS + parse_brands(brands))
        self._send_lock = asyncio.Lock()
        self._file_lock = asyncio.Lock()
        self._link_slots = asyncio.Semaphore(LINK_CHECKS_AT_ONCE)
        self._transfers: dict[str, int] = {}
        """Blob id -> the transfer panel's row for it."""
        self._upload_in_flight: int | None = None
        self._resumable: list[str] = []
        """Names of uploads the core will resume, to label their bars."""
        self._resumed: dict[str, str] = {}
        """Blob id -> name of an upload the core resumed by itself."""
        self._finished: set[str] = set()
        self._downloading: set[str] = set()
        self._sidebar_choice: bool | None = None
        """Shown or hidden by Ctrl+B; None follows the terminal's width."""
        self._arrivals: list[StoredMessage] = []
        """Received messages for the open conversation, waiting for the next redraw."""
        self._list_stale = False
        self._arrivals_shown_at = 0.0
        self._arrivals_due = False
        self._awaiting_session: set[str] = set()
        """Peers told "session set-up sent", to be told when it is active."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="main-body"):
            yield ConversationList(id="conversations")
            with Vertical(id="chat-pane"):
                yield ConversationHeader(id="chat-header")
                yield ChatLog(self.me, self.services.time_format, self.links, id="chat")
                yield TransferPanel(id="transfers")
                yield Static(id="feedback")
                yield CommandInput(
                    id="input", placeholder="message, or a command (Tab completes, F1 for help)"
                )
        yield StatusBar(id="status")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        self._place_sidebar()

    def _place_sidebar(self) -> None:
        wide = self.size.width >= NARROW
        shown = wide if self._sidebar_choice is None else self._sidebar_choice
        self.query_one(ConversationList).display = shown

    async def on_mount(self) -> None:
        self._place_sidebar()
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
            case ConnectionChanged(state=state, detail=detail, session_ended=ended):
                status = self.query_one(StatusBar)
                status.connection, status.detail = state, detail
                if state != ConnectionState.CONNECTED:
                    # Presence is unknown while disconnected; the core watches again after.
                    self.online.clear()
                    self._refresh()
                if ended:
                    self._ask_to_sign_in_again(detail)
            case MessageReceived(
                peer=peer, text=text, ts=ts, message_id=message_id, received_ts=received
            ):
                self._check_links(extract_urls(text))
                record = MessageRecord(
                    peer=peer, outgoing=False, text=text, ts=ts, received=received
                )
                if self._in_view(peer):
                    self._arrivals.append(StoredMessage(message_id, record))
                else:
                    self.services.alert_incoming(peer, text)
                await self._arrived()
            case FileOffered(peer=peer, name=name, size=size, message_id=message_id):
                stored = self._stored(peer, lambda m: m.id == message_id)
                await self._show_arrivals()
                if self._in_view(peer) and stored is not None:
                    await chat.append(stored)
                    self.client.mark_read(peer)
                    self._say(f"{peer} sent a file; Enter on it, a click or `/download` saves it")
                else:
                    self.services.alert_incoming(peer, f"📎 {name} ({human_size(size)})")
                self._refresh()
            case TransferProgress():
                self._progress(message.event)
            case DeliveryChanged(peer=peer, eid=eid, state=state, detail=detail):
                if not chat.set_delivery(eid, state, detail) and self._in_view(peer):
                    # A file the core finished uploading after a reconnect: now in the vault.
                    resumed = self._stored(peer, lambda m: m.record.eid == eid, kind="file")
                    if resumed is not None:
                        await self._show_arrivals()
                        await chat.append(resumed)
                if state == DeliveryState.FAILED:
                    self._refresh()  # a failure may say the account is gone
            case PresenceChanged(user=user, state=state):
                (self.online.add if state == "online" else self.online.discard)(user)
                self._refresh()
            case ConversationChanged(peer=peer, state=state):
                await self._show_arrivals()
                if peer == self.current and state == ConversationState.ACTIVE:
                    await chat.add_notice(f"🔒 end-to-end session with {peer} is active")
                if state == ConversationState.ACTIVE and peer in self._awaiting_session:
                    self._awaiting_session.discard(peer)
                    self._say(f"🔒 the end-to-end session with {peer} is active")
                if state == ConversationState.JAMMED:
                    stuck = (
                        f"⚠ the session with {peer} is stuck: they sent more than the limit "
                        f"ahead, so nothing more of theirs opens. Press ctrl+t (or `talk {peer}`) "
                        "to start a new session"
                    )
                    if peer == self.current:
                        await chat.add_notice(stuck, True)
                    else:
                        self.notify(stuck, severity="error", timeout=15)
                self._refresh()
            case KeyShared(peer=peer, fingerprint=fingerprint):
                short = short_fingerprint(fingerprint)
                self._say(f"{peer} shared their key ({short}); `talk {peer}` next")
                self._refresh()
            case KeyChanged(peer=peer):
                self.notify(
                    f"{peer}'s key changed! Compare `/verify {peer}` with them, then "
                    f"`/reject {peer}` keeps the key you had or `/trust {peer}` accepts the new "
                    "one.",
                    severity="error",
                    timeout=15,
                )
                if peer == self.current:
                    await self._show_arrivals()
                    await chat.add_notice(f"⚠ {peer}'s key changed; messages are held", True)
                self._refresh()
            case KeyKept(peer=peer, by_peer=by_peer, message_id=message_id):
                if by_peer:
                    self.notify(
                        f"{peer} shared the key you had again: a different key offered for "
                        f"{peer} was rejected.",
                        severity="warning",
                        timeout=15,
                    )
                warning = self._stored(peer, lambda m: m.id == message_id, kind="system")
                await self._show_arrivals()
                if self._in_view(peer) and warning is not None:
                    await chat.append(warning)
                    self.client.mark_read(peer)
                self._refresh()
            case MessagesMissing(peer=peer):
                self.notify(message.event.text, severity="warning", timeout=15)
                if peer == self.current:
                    await self._show_arrivals()
                    await chat.add_notice(f"⚠ {message.event.text}", True)
            case ErrorRaised(message=text, code=code):
                shown = f"{text} ({code})" if self.services.show_error_codes and code else text
                self.notify(one_line(shown, 200), severity="error", timeout=10)
            case _:
                pass

    async def _arrived(self) -> None:
        """Shows what arrived now, or with whatever else arrives within ARRIVALS_EVERY."""
        self._list_stale = True
        wait = self._arrivals_shown_at + ARRIVALS_EVERY - time.monotonic()
        if wait <= 0:
            await self._show_arrivals()
        elif not self._arrivals_due:
            self._arrivals_due = True
            self._show_arrivals_later(wait)

    @work(group="arrivals")
    async def _show_arrivals_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._arrivals_due = False
        await self._show_arrivals()

    async def _show_arrivals(self) -> None:
        """Mounts the waiting messages at once, marks them read, redraws the list once.

        Anything else added to the chat comes after this, so the order stays the
        order of the events. A message whose conversation is no longer in view
        stays unread in the vault, where reopening finds it.
        """
        if not self._arrivals and not self._list_stale:
            return
        batch, self._arrivals = self._arrivals, []
        shown = [m for m in batch if self._in_view(m.record.peer)]
        if shown:
            await self.query_one(ChatLog).append_all(shown)
            self.client.mark_read(shown[0].record.peer)
        if self._list_stale:
            self._list_stale = False
            self._refresh()
        # From the end: on a slow machine the redraw itself takes a while.
        self._arrivals_shown_at = time.monotonic()

    def _ask_to_sign_in_again(self, reason: str) -> None:
        """In place, over this screen: the draft, the conversation and the outbox stay."""
        if isinstance(self.app.screen, SignInAgainScreen):
            return

        async def attempt(password: str) -> str | None:
            try:
                await self.client.sign_in_again(password)
            except SecureChatError as exc:
                return str(exc)
            return None

        def done(signed_in: bool | None) -> None:
            if signed_in:
                self._say("signed in again; unsent messages are going out")
            else:
                self.app.exit()

        self.app.push_screen(SignInAgainScreen(self.me, reason, attempt), done)

    def _in_view(self, peer: str) -> bool:
        chat = self.query_one(ChatLog)
        return peer == self.current and chat.peer == peer and not chat.newer_hidden

    def _stored(
        self, peer: str, wanted: Callable[[StoredMessage], bool], kind: str = ""
    ) -> StoredMessage | None:
        """A message just written to the vault, looked up among the newest few."""
        for message in reversed(self.client.history(peer, limit=20)):
            if wanted(message) and (not kind or message.record.kind == kind):
                return message
        return None

    # --- what is shown ------------------------------------------------------------------

    def _refresh(self) -> None:
        """Redraws the list, the header and the completion names from the vault."""
        records = self.client.conversations()
        summaries = [
            ConversationSummary(
                r.peer,
                r.unread,
                r.peer in self.online,
                self.client.conversation_state(r.peer),
                self.client.is_verified(r.peer),
                self.client.peer_deleted(r.peer),
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
        deleted = self.current is not None and self.client.peer_deleted(self.current)
        self.query_one(ConversationHeader).show(
            self.current, state, self.current in self.online, deleted
        )
        self.query_one(CommandInput).usernames = [s.peer for s in summaries]

    def _say(self, text: str, error: bool = False) -> None:
        """One line under the chat that stays until the next command: errors and results."""
        feedback = self.query_one("#feedback", Static)
        feedback.set_class(error, "-error")
        feedback.update(text)

    @work(exclusive=True, group="history")
    async def _open(self, peer: str | None, jump_to: int | None = None) -> None:
        """Shows a conversation from its last page; for a search hit, the page around it."""
        chat = self.query_one(ChatLog)
        self.current = peer
        if peer is None:
            await chat.show(None, [], False)
            self._refresh()
            return
        if jump_to is None:
            page = self.client.history(peer, limit=PAGE)
            await chat.show(peer, page, has_more=len(page) == PAGE)
        else:
            older = self.client.history(peer, before_id=jump_to + 1, limit=PAGE)
            newer = self.client.history(peer, after_id=jump_to, limit=PAGE)
            hidden = len(newer) == PAGE
            if hidden:
                self._say(f"showing older history; `/open {peer}` shows the latest messages")
            await chat.show(peer, older + newer, has_more=len(older) == PAGE, newer_hidden=hidden)
        if jump_to is not None:
            chat.highlight(jump_to)
        self._show_saved_files()
        self.client.mark_read(peer)
        self._refresh()

    def _show_saved_files(self) -> None:
        """Files downloaded before (an earlier run too) show where they were saved."""
        chat = self.query_one(ChatLog)
        for line in chat.files():
            if not line.saved_to and (saved := self.client.saved_file(line.file_id)):
                chat.mark_saved(line.file_id, _home_relative(saved))

    @on(ConversationList.Opened)
    def _conversation_chosen(self, message: ConversationList.Opened) -> None:
        self._open(message.peer)
        if self.size.width < NARROW:
            # Opened from the list shown over a narrow chat: give the chat its room back.
            self._sidebar_choice = None
            self._place_sidebar()
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
            self._show_saved_files()

    @on(ChatLog.LoadNewer)
    def _load_newer(self, message: ChatLog.LoadNewer) -> None:
        self._newer(message.peer, message.after_id)

    @work(exclusive=True, group="older")
    async def _newer(self, peer: str, after_id: int) -> None:
        chat = self.query_one(ChatLog)
        page = self.client.history(peer, after_id=after_id, limit=PAGE)
        if chat.peer == peer:
            await chat.append_page(page, newer_hidden=len(page) == PAGE)

    @on(ChatLog.Jump)
    def _jump(self, message: ChatLog.Jump) -> None:
        self._jump_to(message.peer, message.to_start)

    @work(exclusive=True, group="older")
    async def _jump_to(self, peer: str, to_start: bool) -> None:
        """The first page by id range, or the last: one indexed query at any length."""
        chat = self.query_one(ChatLog)
        if to_start:
            page = self.client.history(peer, after_id=0, limit=PAGE)
        else:
            page = self.client.history(peer, limit=PAGE)
        if chat.peer == peer:
            await chat.jump(page, to_start, more=len(page) == PAGE)

    # --- the input line ----------------------------------------------------------------

    @on(Input.Submitted, "#input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.input.value = ""
        if not event.value.strip():
            return
        try:
            command = commands.parse(event.value)
        except commands.ParseError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say("")
        self.run_command(command)

    def run_command(self, command: commands.Command) -> None:
        """Runs a parsed command; the input line and the command palette both end here."""
        command.run(self)

    # --- what commands do (commands.Actions) --------------------------------------------

    def open_conversation(self, user: str) -> None:
        self._open(user)

    def scan(self, url: str, full: bool) -> None:
        self.app.push_screen(ScanScreen(url, self._lookup, full))

    def reset(self, user: str, token: str, new_password: str) -> None:
        self.services.run_reset(commands.Reset(user, token, new_password), self.server)

    def help(self) -> None:
        self.action_help()

    def quit(self) -> None:
        self.app.exit()

    def message(self, text: str) -> None:
        if self.current is None:
            word = text.split()[0]
            hint = commands.suggest(word)
            did_you_mean = f" (did you mean `/{hint}`?)" if hint else ""
            self._say(
                f"no conversation is open, so this was not sent{did_you_mean}. "
                "Pick one on the left (F2) or type `/open <user>`; `/help` lists the commands.",
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
                self._say(f"not sent: {self.services.explain(exc)}", error=True)
                return
            record = MessageRecord(
                peer=peer,
                outgoing=True,
                text=text,
                ts=self.services.clock(),
                eid=eid,
                state=DeliveryState.SENDING,
            )
            chat = self.query_one(ChatLog)
            await self._show_arrivals()
            if chat.peer == peer:
                await chat.append(StoredMessage(0, record))
            self._refresh()

    # --- files ---------------------------------------------------------------------------

    def send_file(self, path: str) -> None:
        if self.current is None:
            self._say(
                "no conversation is open: open one (F2 or `/open <user>`), then `/send` the file",
                error=True,
            )
            return
        self._send_file(self.current, path)

    @work(group="send-file")
    async def _send_file(self, peer: str, typed: str) -> None:
        """One upload at a time, so the progress of the one in flight is never mistaken."""
        path = Path(typed).expanduser()
        name = path.name or typed
        panel = self.query_one(TransferPanel)
        async with self._file_lock:
            key = panel.start(Text.assemble("⇡ ", (name, "bold"), f" to {peer}"))
            self._upload_in_flight = key
            try:
                blob_id = await self.client.send_file(peer, path)
            except SecureChatError as exc:
                resumes = isinstance(exc.__cause__, ConnectionLost)
                await self._in_event_order(lambda: self._upload_ended(key, name, resumes))
                if resumes:
                    self._say(f"⏸ {self.services.explain(exc)}")
                else:
                    self._say(f"{name} was not sent: {self.services.explain(exc)}", error=True)
                return
            await self._in_event_order(lambda: self._upload_ended(key, name, False))
            self._finished.add(blob_id)
        self._say(f"📎 {name} sent to {peer}, encrypted end to end")
        sent = self._stored(peer, lambda m: m.record.file_id == blob_id, kind="file")
        await self._show_arrivals()
        if sent is not None and self._in_view(peer):
            await self.query_one(ChatLog).append(sent)
        self._refresh()

    async def _in_event_order(self, callback: Callable[[], None]) -> None:
        """Runs `callback` once every event the core emitted so far has been handled here.

        The reader posts each event as it takes it off the core's queue, and the
        screen handles its messages in order: a callback queued after the queue
        is empty runs after all of them.
        """
        for _ in range(200):
            if self.client.events.empty():
                break
            await asyncio.sleep(0.005)
        handled = asyncio.Event()

        def run() -> None:
            callback()
            handled.set()

        self.call_later(run)
        await handled.wait()

    def _upload_ended(self, key: int, name: str, resumes: bool) -> None:
        """The bar goes; an upload the core will resume is remembered by its name."""
        self._upload_in_flight = None
        self.query_one(TransferPanel).finish(key)
        blob_id = next((b for b, k in self._transfers.items() if k == key), None)
        if blob_id is None:
            if resumes:
                self._resumable.append(name)
            return
        del self._transfers[blob_id]
        if resumes:
            self._resumed[blob_id] = name
        else:
            self._finished.add(blob_id)

    def download(self, number: int | None, file_id: str) -> None:
        chat = self.query_one(ChatLog)
        line = chat.file_line(number, file_id)
        if line is not None:
            self._file_chosen(FileLine.Chosen(line.file_id, line.file_name))
        elif file_id:
            self._download(file_id, file_id)
        else:
            shown = ", ".join(f"[{f.number}]" for f in chat.files())
            hint = f"the files here are {shown}" if shown else "no received file is shown here"
            self._say(f"there is no file [{number}] in this conversation; {hint}", True)

    @on(FileLine.Chosen)
    def _file_chosen(self, message: FileLine.Chosen) -> None:
        """Back to the input line while it downloads, so typing goes on where it belongs."""
        self.query_one("#input").focus()
        line = self.query_one(ChatLog).file_line(file_id=message.file_id)
        if line is not None and line.saved_to:
            # The relay drops a file once every recipient has it: asking again would fail.
            self._say(f"{message.name} is already saved to {line.saved_to}")
            return
        self._download(message.file_id, message.name)

    @work(group="download")
    async def _download(self, file_id: str, name: str) -> None:
        """Saved only once verified: the core deletes what fails, so no bad file is left."""
        if file_id in self._downloading:
            self._say(f"{name} is already downloading")
            return
        self._downloading.add(file_id)
        self._finished.discard(file_id)
        panel = self.query_one(TransferPanel)
        self._transfers[file_id] = panel.start(Text.assemble("⇣ ", (name, "bold")))
        self._say(f"downloading {name}…")
        try:
            saved = await self.client.download(file_id)
        except AuthenticationFailed as exc:
            self._say(f"⚠ {name} was not saved: {self.services.explain(exc)}", error=True)
        except ServerRejected as exc:
            if exc.code == "not_found":
                self._say(
                    f"{name} is no longer on the relay (already downloaded elsewhere, expired, "
                    "or not shared with you); ask the sender to send it again",
                    error=True,
                )
            else:
                self._say(f"{name} was not saved: {self.services.explain(exc)}", error=True)
        except SecureChatError as exc:
            self._say(f"{name} was not saved: {self.services.explain(exc)}", error=True)
        else:
            where = _home_relative(saved)
            self._say(f"✓ {name} verified and saved to {where}")
            self.query_one(ChatLog).mark_saved(file_id, where)
        finally:
            self._downloading.discard(file_id)
            self._finished.add(file_id)
            panel.finish(self._transfers.pop(file_id))

    def _progress(self, event: TransferProgress) -> None:
        panel = self.query_one(TransferPanel)
        key = self._transfers.get(event.file_id)
        if key is None:
            if event.file_id in self._finished or event.direction != "up":
                return
            if self._upload_in_flight is not None:
                key = self._upload_in_flight
            else:
                name = self._resumed.get(event.file_id) or (
                    self._resumable.pop(0) if self._resumable else "a file"
                )
                key = panel.start(Text.assemble("⇡ ", (name, "bold"), " (resumed upload)"))
                self._resumed[event.file_id] = name
            self._transfers[event.file_id] = key
        panel.progress(key, event.done, event.total)
        if event.file_id in self._resumed and event.done >= event.total:
            name = self._resumed.pop(event.file_id)
            self._finished.add(event.file_id)
            panel.finish(self._transfers.pop(event.file_id))
            self._say(f"📎 {name} is uploaded: the upload resumed after the reconnect")

    # --- links -----------------------------------------------------------------------------

    @on(ChatLog.LinksShown)
    def _links_shown(self, message: ChatLog.LinksShown) -> None:
        self._check_links(message.urls)

    def _check_links(self, urls: list[str]) -> None:
        for url in urls:
            if self.links.needs_check(url):
                self.links.checking(url)
                self._check_link(url)

    @work(group="links")
    async def _check_link(self, url: str) -> None:
        await self._lookup(url, self.services.config.full_link_checks)

    async def _lookup(self, url: str, full: bool) -> LinkState:
        """The check behind a badge and the scan dialog; any failure reads as unknown."""
        state = self.links.state(url)
        if state.final and not state.failed and (state.full or not full):
            return state
        try:
            async with self._link_slots:
                verdict = await asyncio.wait_for(
                    self.client.scan(url, full=full), FULL_LINK_TIMEOUT if full else LINK_TIMEOUT
                )
        except TimeoutError:
            state = self.links.fail(url, "no answer in time")
        except Exception as exc:  # whatever broke, the link must not look checked
            state = self.links.fail(url, one_line(str(exc) or type(exc).__name__, 120))
        else:
            state = self.links.settle(url, verdict, full)
        self.query_one(ChatLog).refresh_links(url)
        return state

    @on(MessageLine.LinkChosen)
    def _link_chosen(self, message: MessageLine.LinkChosen) -> None:
        self.app.push_screen(ScanScreen(message.url, self._lookup))

    @work(group="command")
    async def sharekey(self, user: str) -> None:
        try:
            fingerprint = await self.client.sharekey(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say(
            f"your key went to {user} (your fingerprint {short_fingerprint(fingerprint)}). "
            f"Once {user} shares theirs, `talk {user}`."
        )
        if self.current is None:
            self._open(user)
        else:
            self._refresh()

    @work(group="command")
    async def talk(self, user: str) -> None:
        try:
            state = await self.client.talk(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            self._refresh()
            return
        self._open(user)
        # The answer may have come already (both online): then the set-up line would be stale.
        if ConversationState.ACTIVE in (state, self.client.conversation_state(user)):
            self._say(f"🔒 the end-to-end session with {user} is active")
        else:
            self._awaiting_session.add(user)
            self._say(f"session set-up sent to {user}; it turns 🔒 when {user}'s client answers")

    def verify(self, user: str) -> None:
        try:
            numbers = self.client.verify(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return

        def chosen(choice: Choice | None) -> None:
            if choice == "accept":
                self.trust(user)
            elif choice == "keep":
                self.reject(user)
            elif choice == "verified":
                self._mark_verified(user)

        self.app.push_screen(SafetyNumberScreen(numbers), chosen)

    def _mark_verified(self, user: str) -> None:
        try:
            fingerprint = self.client.mark_verified(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            return
        self._say(
            f"✓ {user}'s key {short_fingerprint(fingerprint)} is marked verified; "
            "a key change clears the mark"
        )
        self._refresh()

    def reject(self, user: str) -> None:
        """Keeps the pinned key; the KeyKept event shows the stored warning."""
        try:
            fingerprint = self.client.reject(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say(
            f"you kept {user}'s key {short_fingerprint(fingerprint)}; the new key is rejected"
        )
        self._refresh()

    def trust(self, user: str) -> None:
        try:
            fingerprint = self.client.trust(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        short = short_fingerprint(fingerprint)
        self._say(f"you trust {user}'s key {short}; `talk {user}` starts a new session")
        self._refresh()

    def search(self, query: str) -> None:
        results = self.client.search(query)

        def chosen(message: StoredMessage | None) -> None:
            if message is not None:
                self._open(message.record.peer, jump_to=message.id)
                self.query_one("#input").focus()

        self.app.push_screen(SearchScreen(query, results, self.services.time_format), chosen)

    def delete_conversation(self, user: str) -> None:
        def chosen(answer: str | None) -> None:
            if answer is not None:
                self._delete(user)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete the conversation with {user}?",
                f"This removes every message with {user} from this device and whatever the "
                "relay still holds for it. It cannot be undone. The end-to-end session "
                f"stays, so {user} can still write to you.",
                "Delete conversation",
            ),
            chosen,
        )

    @work(group="command")
    async def _delete(self, user: str) -> None:
        try:
            await self.client.delete_conversation(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say(f"the conversation with {user} is deleted")
        if self.current == user:
            self._open(None)
        else:
            self._refresh()

    def delete_account(self) -> None:
        def chosen(password: str | None) -> None:
            if password:
                self._delete_account_now(password)

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
    async def _delete_account_now(self, password: str) -> None:
        try:
            await self.client.delete_account(password)
        except SecureChatError as exc:
            self._say(f"the account was not deleted: {self.services.explain(exc)}", error=True)
            return
        self.post_message(SignedOut(f"the account {self.me} was deleted"))

    # --- bindings ------------------------------------------------------------------------

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_focus_conversations(self) -> None:
        listing = self.query_one(ConversationList)
        if not listing.display:
            self._sidebar_choice = True
            self._place_sidebar()
        listing.focus()

    def action_toggle_sidebar(self) -> None:
        listing = self.query_one(ConversationList)
        self._sidebar_choice = not listing.display
        self._place_sidebar()
        if not listing.display and listing.has_focus:
            self.query_one("#input").focus()

    def action_focus_input(self) -> None:
        self.query_one("#input").focus()

    def action_files(self) -> None:
        if not self.query_one(ChatLog).focus_latest_file():
            self._say("no received file in this conversation")

    def action_search(self) -> None:
        self.prefill("/search ")

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

    def action_new_session(self) -> None:
        """One key to cure a stuck session: the same as typing `talk` to the open peer."""
        if self.current is None:
            self._say("open a conversation first")
            return
        self.talk(self.current)

    def palette_entries(self) -> list[commands.PaletteEntry]:
        """(title, help, target) for the command palette: settings, then the commands' own."""
        config = self.services.config
        change = self.services.change_setting
        notifications = config.desktop_notifications
        entries: list[commands.PaletteEntry] = [
            (
                f"Bell: turn {'off' if config.bell else 'on'}",
                "ring the terminal bell on new messages (saved to config.toml)",
                partial(change, "bell", not config.bell),
            ),
            (
                f"Desktop notifications: turn {'off' if notifications else 'on'}",
                "notify the desktop on new messages (saved to config.toml)",
                partial(change, "desktop_notifications", not notifications),
            ),
        ]
        peers = [record.peer for record in self.client.conversations()]
        for command in commands.COMMANDS.values():
            entries += command.palette(peers)
        for line in self.query_one(ChatLog).files():
            entries.append(commands.Download.for_file(line.number, one_line(line.file_name, 40)))
        return entries


def _home_relative(path: Path) -> str:
    """`~/…` when the file is under the home directory: shorter, and still exact."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
