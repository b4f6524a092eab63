"""The chat view: a window of one conversation's messages, moved a page at a time.

At most `WINDOW` messages are widgets, so a conversation of 100k messages
costs what a short one does: the screen, its memory and every key press stay
the same however far back the user scrolls. Scrolling near the top of the
window posts `LoadOlder` (the screen reads the page before from the vault and
calls `prepend`, which drops the newest lines beyond the window); scrolling
near its bottom while newer messages are out of it posts `LoadNewer`
(`append_page` drops the oldest). Home and End beyond the window post `Jump`:
the screen loads the conversation's first or last page, by id range, in one
vault query however long the conversation is.

Links are drawn with the badge the screen's `LinkBook` holds for them, and
newly drawn links are announced with `LinksShown` so the screen can check
them. Received files are `FileLine`s, numbered in the order they came into
view: a number, once shown, means the same file until another conversation
is opened, even when its line leaves the window and comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.containers import VerticalScroll
from textual.message import Message

from securechat.client.events import DeliveryState
from securechat.client.records import StoredMessage
from securechat.tui.links import LinkBook
from securechat.tui.widgets.chat_line import FileLine, MessageLine, Notice, TimeFormat

WINDOW = 200
"""Messages kept as widgets: four vault pages, several screens on any terminal."""
TAIL = 50
"""Messages kept as widgets at the newest, at least: every arrival lays out the whole
screen, each of these lines included, and a key pressed meanwhile waits for it (bench
chatlog: 250 lines held key echo to about 150 ms, 60 to under 50). Older ones are a
page load away, as in the window."""


class ChatLog(VerticalScroll):
    """Follows the newest message until the user scrolls up, and again once they are back.

    Following is a state, not a check made when a message arrives: a message's height
    settles after it mounts (its text, a rewrap when the scrollbar appears, a resize),
    and a one-off `scroll_end` then lands short of the bottom, after which the view
    would no longer count as at the end and stop following for good. So every change
    of the content's size scrolls to the end again while following. (Textual's
    `anchor()` does this too, but also pushes a short conversation to the bottom.)
    """

    DEFAULT_CSS = """
    ChatLog {
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
        scrollbar-size-vertical: 1;
    }
    ChatLog:focus {
        border: round $primary;
    }
    """

    @dataclass
    class LoadOlder(Message):
        """Asks for the page of `peer`'s history that ends just before `before_id`."""

        peer: str
        before_id: int

    @dataclass
    class LoadNewer(Message):
        """Asks for the page of `peer`'s history that starts just after `after_id`."""

        peer: str
        after_id: int

    @dataclass
    class Jump(Message):
        """Home or End past the window: show `peer`'s first page (`to_start`) or last."""

        peer: str
        to_start: bool

    @dataclass
    class LinksShown(Message):
        """Links just drawn, for the screen to check (the book knows which need it)."""

        urls: list[str]

    def __init__(
        self,
        me: str,
        time_format: TimeFormat,
        links: LinkBook | None = None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.me = me
        self.peer: str | None = None
        self.has_more = False
        """Older messages than the window's are in the vault."""
        self.newer_hidden = False
        """Newer messages than the window's are in the vault (a search hit in older
        history, or scrolled back past the window): new messages would leave a gap."""
        self._loading = False
        self._time_format = time_format
        self._links = links
        self._early_delivery: dict[str, tuple[str, str]] = {}
        self._numbers: dict[str, int] = {}
        self._saved: dict[str, str] = {}
        """File id -> where it was saved, for its line when it comes back into the window."""
        self.following = True
        """At the newest message, staying there as messages arrive."""
        self._unseen = 0
        """Messages appended below while the user reads further up."""
        self._mounting: set[int] = set()
        """Ids of the page `show` or `jump` is mounting."""
        self._trimming = False
        """Lines above the view are being dropped; the view is put back after."""

    def _follow(self) -> None:
        self.following = True
        self._count_unseen(0)
        self.scroll_end(animate=False, immediate=True)

    def watch_virtual_size(self) -> None:
        self._keep_following()

    def on_resize(self) -> None:
        self._keep_following()

    def _keep_following(self) -> None:
        if self.following and self.scroll_y != self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True)

    def _count_unseen(self, count: int) -> None:
        self._unseen = count
        plural = "" if count == 1 else "s"
        self.border_subtitle = f"{count} new message{plural} ↓" if count else ""

    @property
    def oldest_id(self) -> int | None:
        ids = [line.message.id for line in self.query_children(MessageLine) if line.message.id]
        return min(ids) if ids else None

    @property
    def newest_id(self) -> int | None:
        ids = [line.message.id for line in self.query_children(MessageLine) if line.message.id]
        return max(ids) if ids else None

    async def show(
        self,
        peer: str | None,
        page: list[StoredMessage],
        has_more: bool,
        newer_hidden: bool = False,
    ) -> None:
        """Replaces the view with a page of `peer` (or an empty view)."""
        self._numbers, self._saved = {}, {}
        await self._replace(peer, page, has_more, newer_hidden)
        self.border_title = peer or "no conversation open"
        if peer is None:
            await self.mount(Notice("Pick a conversation on the left, or type `/help`."))
            return
        if newer_hidden:
            self.following = False
            self._count_unseen(0)
        else:
            self._follow()

    async def jump(self, page: list[StoredMessage], to_start: bool, more: bool) -> None:
        """Shows the conversation's first page (`to_start`) or its last, keeping file numbers;
        `more`: the conversation goes on past the page."""
        if to_start:
            await self._replace(self.peer, page, has_more=False, newer_hidden=more)
            self.following = False
            self.call_after_refresh(self.scroll_home, animate=False)
        else:
            await self._replace(self.peer, page, has_more=more, newer_hidden=False)
            self._follow()

    async def _replace(
        self, peer: str | None, page: list[StoredMessage], has_more: bool, newer_hidden: bool
    ) -> None:
        self.peer, self.has_more, self._loading = peer, has_more, False
        self.newer_hidden = newer_hidden
        # An event for a message of this page may be handled while it mounts (a group's
        # lines arrive as it opens): `append_all` must not show it a second time.
        self._mounting = {m.id for m in page}
        await self.remove_children()
        if peer is not None:
            await self._mount_lines(self._lines(page))
        self._mounting = set()

    async def prepend(self, page: list[StoredMessage], has_more: bool) -> None:
        """Adds an older page above, keeping the messages in view where they were."""
        self.has_more = has_more
        if not page:
            self._loading = False
            return
        keep_place = self._place_keeper()
        await self._mount_lines(self._lines(page), before=0)
        lines = list(self.query_children(MessageLine))
        if len(lines) > WINDOW:
            self.newer_hidden = True
            self.following = False
            await self.remove_children(self.children[self.children.index(lines[WINDOW]) :])
        self.call_after_refresh(keep_place)

    async def append_page(self, page: list[StoredMessage], newer_hidden: bool) -> None:
        """Adds the page after the window, keeping the messages in view where they were."""
        self.newer_hidden = newer_hidden
        shown = {line.message.id for line in self.query_children(MessageLine)}
        await self._mount_lines(self._lines([m for m in page if m.id not in shown]))
        await self._trim_top(WINDOW)

    async def _trim_top(self, limit: int, keep: int = WINDOW) -> None:
        """Past `limit` lines, drops the oldest but `keep`, the view staying on the same
        messages."""
        lines = list(self.query_children(MessageLine))
        if len(lines) <= limit:
            self._loading = False
            return
        self.has_more = True
        keep_place = self._place_keeper()
        first_kept = lines[len(lines) - keep]
        self._trimming = True
        await self.remove_children(self.children[: self.children.index(first_kept)])
        self.call_after_refresh(keep_place)

    def _place_keeper(self) -> Callable[[], None]:
        """What scrolls the line now at the top of the view back there once lines above
        it came or went (only lines in view have a region to measure), and then lets the
        next page be asked for: scrolling in between would load a page too many."""
        top = self.content_region.y
        anchor = next((c for c in self.children if c.region.bottom > top), None)
        before_y = anchor.region.y if anchor is not None else 0
        following = self.following

        def keep_place() -> None:
            self._trimming = False
            if following:
                self._follow()
            elif anchor is not None and anchor.is_attached:
                y = self.scroll_y + anchor.region.y - before_y
                self.scroll_to(y=y, animate=False, immediate=True)
            self._loading = False

        return keep_place

    async def append(self, message: StoredMessage) -> None:
        """Adds a new message at the bottom, once: an event may repeat a page already loaded."""
        await self.append_all([message])

    async def append_all(self, messages: list[StoredMessage]) -> None:
        """Adds new messages at the bottom in one mount: one relayout for the lot.

        Scrolled back, they are only counted: mounting would lay out the whole window
        while the user reads, and End or scrolling down loads them from the vault.
        """
        shown = {line.message.id for line in self.query_children(MessageLine)} | self._mounting
        new = []
        for message in messages:
            if not message.id or message.id not in shown:
                new.append(message)
                shown.add(message.id)
        if not new:
            return
        if not self.following or self.newer_hidden:
            self.newer_hidden = True
            self._count_unseen(self._unseen + len(new))
            return
        await self._mount_lines(self._lines(new))
        if not self._loading:
            # In steps, so a busy conversation does not also relayout to drop each line.
            keep = max(TAIL, 2 * self.scrollable_content_region.height)
            await self._trim_top(keep + keep // 2, keep)

    async def _mount_lines(self, lines: list[MessageLine], before: int | None = None) -> None:
        await self.mount_all(lines, before=before)
        urls = list(dict.fromkeys(url for line in lines for url in line.urls))
        if urls:
            self.post_message(self.LinksShown(urls))

    async def add_notice(self, text: str, warning: bool = False) -> None:
        """Notices are written by us; `text` must not contain peer-chosen content as markup."""
        await self.mount(Notice(Text(text), classes="-warning" if warning else ""))

    def set_delivery(self, eid: str, state: str, detail: str = "") -> bool:
        """Marks a message's delivery; remembers it when the event beats the message here."""
        for line in self.query_children(MessageLine):
            if line.message.record.eid == eid:
                line.set_delivery(state, detail)
                return True
        self._early_delivery[eid] = (state, detail)
        return False

    def refresh_links(self, url: str) -> None:
        """Redraws the badges of `url` once its check answered."""
        for line in self.query_children(MessageLine):
            if url in line.urls:
                line.redraw()

    def file_line(self, number: int | None = None, file_id: str = "") -> FileLine | None:
        """A received file in view, by the number shown next to it or by its id."""
        for line in self.query_children(FileLine):
            if line.number == number or (file_id and line.file_id == file_id):
                return line
        return None

    def files(self) -> list[FileLine]:
        return sorted(self.query_children(FileLine), key=lambda line: line.number)

    def mark_saved(self, file_id: str, where: str) -> None:
        self._saved[file_id] = where
        line = self.file_line(file_id=file_id)
        if line is not None:
            line.mark_saved(where)

    def focus_latest_file(self) -> bool:
        files = list(self.query_children(FileLine))
        if not files:
            return False
        files[-1].focus()
        files[-1].scroll_visible(animate=False)
        return True

    def last_failed(self) -> StoredMessage | None:
        failed = [
            line.message
            for line in self.query_children(MessageLine)
            if line.message.record.state == DeliveryState.FAILED
        ]
        return failed[-1] if failed else None

    def highlight(self, message_id: int) -> bool:
        """Scrolls to a message and marks it, for search results."""
        found = False
        for line in self.query_children(MessageLine):
            line.set_class(line.message.id == message_id, "-highlight")
            if line.message.id == message_id:
                self.call_after_refresh(self.scroll_to_widget, line, animate=False, center=True)
                found = True
        return found

    def request_older(self) -> None:
        if self.peer is None or not self.has_more or self._loading:
            return
        oldest = self.oldest_id
        if oldest is None:
            return
        self._loading = True
        self.post_message(self.LoadOlder(self.peer, oldest))

    def request_newer(self) -> None:
        if self.peer is None or not self.newer_hidden or self._loading:
            return
        newest = self.newest_id
        if newest is None:
            return
        self._loading = True
        self.post_message(self.LoadNewer(self.peer, newest))

    def action_scroll_home(self) -> None:
        if self.has_more and self.peer is not None:
            self.post_message(self.Jump(self.peer, to_start=True))
        else:
            self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        if self.newer_hidden and self.peer is not None:
            self.post_message(self.Jump(self.peer, to_start=False))
        else:
            self._follow()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Within a screen of either edge of the window, the next page is asked for.

        Not while lines above the view are dropped: that moves the view without the
        user, and reading it as scrolling would stop following or load them back.
        """
        super().watch_scroll_y(old_value, new_value)
        if self._trimming:
            return
        self.following = new_value >= self.max_scroll_y and not self.newer_hidden
        if self._unseen and self.following:
            self._count_unseen(0)
        margin = self.scrollable_content_region.height
        if new_value < old_value and new_value <= margin:
            self.request_older()
        elif new_value > old_value and new_value >= self.max_scroll_y - margin:
            self.request_newer()

    def _lines(self, page: list[StoredMessage]) -> list[MessageLine]:
        lines = []
        for message in page:
            record = message.record
            line: MessageLine
            if record.kind == "file" and not record.outgoing and record.file_id:
                number = self._numbers.setdefault(record.file_id, len(self._numbers) + 1)
                line = FileLine(message, self.me, self._time_format, number)
                line.saved_to = self._saved.get(record.file_id, "")
            else:
                line = MessageLine(message, self.me, self._time_format, self._links)
            early = self._early_delivery.pop(message.record.eid, None)
            if early is not None:
                line.set_delivery(*early)
            lines.append(line)
        return lines
