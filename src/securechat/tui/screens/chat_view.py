"""The conversation view under the main screen: which conversation is open, the list
and header that describe it, paging through its history, and messages arriving in it.

The main screen and its command mixins (`transfers`, `people`) build on this; it
holds the state they share, so none of them reaches into another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static

from securechat.client.api import ChatAPI, GroupInfo
from securechat.client.conversation import ConversationId
from securechat.client.events import ConversationState
from securechat.client.records import StoredMessage
from securechat.scanner.brands import DEFAULT_BRANDS, parse_brands
from securechat.tui.links import LinkBook
from securechat.tui.services import AppServices
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.command_input import CommandInput
from securechat.tui.widgets.conversation_header import ConversationHeader
from securechat.tui.widgets.conversation_list import (
    ConversationList,
    ConversationSummary,
    group_name,
    is_group,
)

PAGE = 50
NARROW = 90
"""Below this many columns the conversation list (32 wide) collapses, leaving the chat usable."""
ARRIVALS_EVERY = 0.25
"""Seconds between redraws for messages arriving in a burst. Each line mounted on its own
relays out the whole screen, every line of the chat included: at 20 messages a second that
left no time to echo a key (`python -m bench chatlog`). The first message after a quiet
spell still shows at once."""
LINK_CHECKS_AT_ONCE = 4


class ChatView(Screen[None]):
    """The state the main screen's parts share, and what they call to show a change."""

    def __init__(
        self,
        client: ChatAPI,
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
        self.groups: dict[str, GroupInfo] = {}
        """Conversation key -> the group we are in, as of the last redraw."""
        self._group_names: dict[str, str] = {}
        """Conversation key -> the name of every group on this device, those we left or were
        removed from too: `client.groups()` lists only the groups we are in. Read from the
        core once (`_load_group_names`), then kept current from each read of the groups."""
        self._awaiting_session: set[str] = set()
        self._opened_at_start: str | None = None
        """The conversation the screen opened by itself when it started, until another is
        opened: a group invitation read with the backlog may be for it."""
        """Peers told "session set-up sent", to be told when it is active."""

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
        # The app may have taken the screen's widgets down while this waited (quitting).
        with contextlib.suppress(NoMatches):
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
            self._refresh(groups=False)
        # From the end: on a slow machine the redraw itself takes a while.
        self._arrivals_shown_at = time.monotonic()

    def _load_group_names(self) -> None:
        """Once, when the screen starts: reading every group's state on each redraw would
        double the cost of `client.groups()`."""
        self._group_names = {
            ConversationId.group(group_id).key: name
            for group_id, name in self.client.group_names().items()
        }

    def _place_sidebar(self) -> None:
        wide = self.size.width >= NARROW
        shown = wide if self._sidebar_choice is None else self._sidebar_choice
        self.query_one(ConversationList).display = shown

    def _in_view(self, peer: str) -> bool:
        """The open conversation: its messages go to the chat (which shows or counts them)."""
        chat = self.query_one(ChatLog)
        return peer == self.current and chat.peer == peer

    def _stored(
        self, peer: str, wanted: Callable[[StoredMessage], bool], kind: str = ""
    ) -> StoredMessage | None:
        """A message just written to the vault, looked up among the newest few."""
        for message in reversed(self.client.history(peer, limit=20)):
            if wanted(message) and (not kind or message.record.kind == kind):
                return message
        return None

    # --- what is shown ------------------------------------------------------------------

    def _refresh(self, groups: bool = True) -> None:
        """Redraws the list, the header and the completion names from the vault.

        `groups=False` keeps the groups read last time: arriving messages change no
        group, and reading them loads every group's MLS state from the vault.
        """
        records = self.client.conversations()
        if groups:
            self.groups = {g.conversation.key: g for g in self.client.groups()}
            self._group_names.update((key, g.name) for key, g in self.groups.items())
        summaries = [self._summary(r.peer, r.unread) for r in records]
        listed = {r.peer for r in records}
        summaries += [self._summary(key, 0) for key in self.groups if key not in listed]
        if self.current and self.current not in {s.peer for s in summaries}:
            summaries.insert(0, self._summary(self.current, 0))
        self.query_one(ConversationList).show(summaries, self.current)
        header = self.query_one(ConversationHeader)
        if self.current is not None and is_group(self.current):
            known = self._group_names.get(self.current, "")
            header.show_group(self.current, self.groups.get(self.current), known)
        else:
            state = (
                self.client.conversation_state(self.current)
                if self.current
                else ConversationState.NONE
            )
            deleted = self.current is not None and self.client.peer_deleted(self.current)
            header.show(self.current, state, self.current in self.online, deleted)
        chat = self.query_one(ChatLog)
        if chat.peer is not None:
            chat.border_title = Text(self._title(chat.peer))  # a Text: a str is markup
        # Members of our groups complete as usernames too: `/invite`, `/talk` to one of them.
        members = {m.user for g in self.groups.values() for m in g.members} - {self.me}
        direct = {s.peer for s in summaries if not s.is_group}
        self.query_one(CommandInput).usernames = sorted(direct | members)

    def _summary(self, key: str, unread: int) -> ConversationSummary:
        if is_group(key):
            group = self.groups.get(key)
            known = self._group_names.get(key, "")
            return ConversationSummary(
                key, unread, False, ConversationState.ACTIVE, group=group, name=known
            )
        return ConversationSummary(
            key,
            unread,
            key in self.online,
            self.client.conversation_state(key),
            self.client.is_verified(key),
            self.client.peer_deleted(key),
        )

    def _title(self, key: str) -> str:
        """What a conversation is called on screen: the peer, or the group's name."""
        if not is_group(key):
            return key
        group = self.groups.get(key)
        return group_name(group, key, 40, self._group_names.get(key, "")).plain

    def _say(self, text: str, error: bool = False) -> None:
        """One line under the chat that stays until the next command: errors and results.

        Text, never markup: it names groups (chosen by a member) and quotes refusals,
        and a stray `[/b]` would not only show wrong but raise while drawing.
        """
        feedback = self.query_one("#feedback", Static)
        feedback.set_class(error, "-error")
        feedback.update(Text(text))

    @work(exclusive=True, group="history")
    async def _open(self, peer: str | None, jump_to: int | None = None) -> None:
        """Shows a conversation from its last page; for a search hit, the page around it."""
        chat = self.query_one(ChatLog)
        self.current = peer
        if peer != self._opened_at_start:
            self._opened_at_start = None
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
                chat.mark_saved(line.file_id, home_relative(saved))

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


def home_relative(path: Path) -> str:
    """`~/…` when the file is under the home directory: shorter, and still exact."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
