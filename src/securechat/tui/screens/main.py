"""The main screen: conversations, the chat, the input line and the status bar.

It is where commands run. Every call into the ChatClient happens here (or in
the app), in workers, and the results go back into widgets that only draw.
Sends are not `exclusive` workers: cancelling one mid-flight would leave the
message waiting in the outbox until the next reconnect.

Link checks run in their own workers, a few at a time, and never hold up a
message. What is shown and paging are `chat_view.ChatView`; file commands are
`transfers.FileTransfers`, commands about a user `people.PeopleCommands`, about
a group `groups.GroupCommands`. A conversation is named by its key everywhere
here (`ConversationId.key`: a peer's username, or `#` and a group's id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Static

import securechat.tui.commands as commands
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    FileOffered,
    GroupChange,
    GroupChanged,
    GroupInvited,
    GroupKeyChanged,
    KeyChanged,
    KeyKept,
    KeyShared,
    MessageReceived,
    MessagesMissing,
    PresenceChanged,
    TransferProgress,
)
from securechat.client.records import MessageRecord, StoredMessage
from securechat.client.transfers import human_size
from securechat.client.trust import short_fingerprint
from securechat.errors import SecureChatError
from securechat.scanner import extract_urls
from securechat.tui.links import LinkState
from securechat.tui.messages import CoreEvent
from securechat.tui.providers import SecureChatCommands
from securechat.tui.safe_text import one_line
from securechat.tui.screens.groups import GroupCommands
from securechat.tui.screens.help import HelpScreen
from securechat.tui.screens.people import PeopleCommands
from securechat.tui.screens.scan import ScanScreen
from securechat.tui.screens.sign_in_again import SignInAgainScreen
from securechat.tui.screens.transfers import FileTransfers
from securechat.tui.widgets.chat_line import MessageLine
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.command_input import CommandInput
from securechat.tui.widgets.conversation_header import ConversationHeader
from securechat.tui.widgets.conversation_list import ConversationList, is_group
from securechat.tui.widgets.status_bar import StatusBar
from securechat.tui.widgets.transfers import TransferPanel

LINK_TIMEOUT = 20.0
"""Seconds before a private link check reads as unknown; a full lookup gets the core's 90."""
FULL_LINK_TIMEOUT = 95.0


class MainScreen(FileTransfers, PeopleCommands, GroupCommands):
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

    async def on_mount(self) -> None:
        self._place_sidebar()
        status = self.query_one(StatusBar)
        status.server, status.user = self.server, self.me
        self._read_events()
        records = self.client.conversations()
        self._load_group_names()
        self._refresh()
        self.query_one("#input").focus()
        self._opened_at_start = records[0].peer if records else None
        self._open(self._opened_at_start)

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
                conversation=conversation,
                sender=sender,
                text=text,
                ts=ts,
                message_id=message_id,
                received_ts=received,
            ):
                self._check_links(extract_urls(text))
                key = conversation.key
                record = MessageRecord(
                    peer=key,
                    conversation=key,
                    sender=sender,
                    outgoing=False,
                    text=text,
                    ts=ts,
                    received=received,
                )
                if self._in_view(key):
                    self._arrivals.append(StoredMessage(message_id, record))
                else:
                    self._alert(key, sender, text)
                await self._arrived()
            case FileOffered(
                conversation=conversation, sender=sender, name=name, size=size, message_id=mid
            ):
                key = conversation.key
                stored = self._stored(key, lambda m: m.id == mid)
                await self._show_arrivals()
                if self._in_view(key) and stored is not None:
                    await chat.append(stored)
                    self.client.mark_read(key)
                    self._say(f"{sender} sent a file; Enter on it, a click or `/download` saves it")
                else:
                    self._alert(key, sender, f"📎 {name} ({human_size(size)})")
                self._refresh()
            case GroupChanged(conversation=conversation, message_id=mid):
                await self._group_changed(conversation.key, message.event, mid)
            case GroupInvited(conversation=conversation):
                if conversation.key == self._opened_at_start:
                    # Invited while offline, the group was the newest conversation and the
                    # screen opened it by itself: closed again, so that the invitation comes
                    # before the group opens, as for a member invited while online.
                    self._open(None)
                self._refresh()
                self._invited(message.event)
            case GroupKeyChanged(conversation=conversation, user=user):
                key = conversation.key
                self.notify(
                    f"{user}'s key changed in {self._title(key)}! Nothing is sent to the group "
                    f"until you compare `/verify {user}` with them, then `/reject {user}` keeps "
                    f"the key you had or `/trust {user}` accepts the new one.",
                    severity="error",
                    timeout=15,
                    markup=False,
                )
                if key == self.current:
                    await self._show_arrivals()
                    await chat.add_notice(f"⚠ {user}'s key changed; sending here is blocked", True)
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
                if self._direct(peer):
                    self._say(f"{peer} shared their key ({short}); `talk {peer}` next")
                else:
                    # Pinned from a group's members, not sent by `sharekey`: the core opens
                    # no conversation for it, and there is nothing to answer.
                    self._say(
                        f"{peer}'s key is pinned ({short}), first seen in a group; "
                        f"`/verify {peer}` compares it"
                    )
                self._refresh()
            case KeyChanged(peer=peer):
                # A member known only from a group: its `GroupKeyChanged` names the group.
                if self._direct(peer):
                    self.notify(
                        f"{peer}'s key changed! Compare `/verify {peer}` with them, then "
                        f"`/reject {peer}` keeps the key you had or `/trust {peer}` accepts the "
                        "new one.",
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

    def _direct(self, peer: str) -> bool:
        """We have a direct conversation with `peer`; the core opens none for a user whose
        key it pinned from a group's members."""
        return any(r.peer == peer for r in self.client.conversations())

    def _alert(self, key: str, sender: str, text: str) -> None:
        """A toast and notification naming the sender, and the group when it is one."""
        group = self._title(key) if is_group(key) else ""
        self.services.alert_incoming(sender, text, group)

    async def _group_changed(self, key: str, change: GroupChanged, message_id: int) -> None:
        """A membership or name change: its stored line in the chat, the list redrawn."""
        line = self._stored(key, lambda m: m.id == message_id, kind="system")
        await self._show_arrivals()
        if self._in_view(key) and line is not None:
            await self.query_one(ChatLog).append(line)
            self.client.mark_read(key)
        self._refresh()
        if change.subject == self.me and change.change == GroupChange.REMOVED:
            self.notify(
                f"{change.by} removed you from {self._title(key)}; its history stays here",
                severity="warning",
                timeout=15,
                markup=False,
            )

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
        self.app.push_screen(ScanScreen(url, self._lookup, full, self.client.online_scanners))

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
        """The core encrypts or refuses: it never sends without a session (or, in a group,
        while a member's key change is unresolved)."""
        async with self._send_lock:
            try:
                if is_group(peer):
                    eid = await self.client.group_send_text(ConversationId.parse(peer).name, text)
                else:
                    eid = await self.client.send_text(peer, text)
            except SecureChatError as exc:
                self._say(f"not sent: {self.services.explain(exc)}", error=True)
                return
            record = MessageRecord(
                peer=peer,
                conversation=peer,
                sender=self.me,
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
        self.app.push_screen(
            ScanScreen(message.url, self._lookup, scanners=self.client.online_scanners)
        )

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
        if is_group(self.current):
            # MLS has no session to restart: its keys move on with every epoch.
            self._say("a group has no session to restart; ctrl+t is for a direct conversation")
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
        peers = [r.peer for r in self.client.conversations() if not is_group(r.peer)]
        for command in commands.COMMANDS.values():
            entries += command.palette(peers)
        for line in self.query_one(ChatLog).files():
            entries.append(commands.Download.for_file(line.number, one_line(line.file_name, 40)))
        return entries
