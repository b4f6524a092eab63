"""The chat view's scrolling: pinned to the newest message unless the user scrolled up."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from textual.pilot import Pilot

from securechat.tui.widgets.chat_line import FileLine, MessageLine
from securechat.tui.widgets.chat_log import WINDOW, ChatLog
from tests.tui.conftest import Harness, settle, sign_in, type_line


async def secured(pilot: Pilot[None], harness: Harness, peer: str = "bob") -> None:
    await sign_in(pilot)
    await type_line(pilot, f"talk {peer}")
    harness.client.activate(peer)
    await settle(pilot)


def newest_in_view(pilot: Pilot[None]) -> bool:
    """The last message's last row is inside the chat's visible area."""
    chat = pilot.app.screen.query_one(ChatLog)
    last = list(chat.query_children(MessageLine))[-1]
    return chat.is_vertical_scroll_end and chat.content_region.contains(
        last.region.x, last.region.bottom - 1
    )


async def test_view_follows_after_a_very_long_message(harness: Harness) -> None:
    """A 10,000-character message does not stop the view following the next ones."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"earlier {i}" for i in range(4)])
        await type_line(pilot, "/open bob")
        harness.client.receive("bob", "long " * 2_000)
        await settle(pilot)
        await type_line(pilot, "my answer")
        harness.client.receive("bob", "and the peer's")
        await settle(pilot)
        assert newest_in_view(pilot)
        assert "and the peer's" in str(list(pilot.app.screen.query(MessageLine))[-1].content)


async def test_conversation_stays_at_its_newest_message_after_a_resize(harness: Harness) -> None:
    """Narrower lines wrap onto more rows; the view still ends at the newest message."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"message {i} " + "word " * 30 for i in range(60)])
        await type_line(pilot, "/open bob")
        assert newest_in_view(pilot)
        await pilot.resize_terminal(60, 20)
        await settle(pilot)
        assert newest_in_view(pilot)
        await pilot.resize_terminal(140, 40)
        await settle(pilot)
        assert newest_in_view(pilot)


async def test_conversation_opens_at_its_newest_message(harness: Harness) -> None:
    """Long wrapped messages are laid out after the page mounts: the view still ends at the last."""
    async with harness.app.run_test(size=(60, 20)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("carol", ["hello"])
        harness.client.add_history("bob", [f"message {i} " + "word " * 80 for i in range(50)])
        await type_line(pilot, "/open carol")
        await type_line(pilot, "/open bob")
        assert newest_in_view(pilot)


async def test_scrolled_up_the_view_stays_and_counts_new_messages(harness: Harness) -> None:
    """Reading older messages is not interrupted; the border counts what arrived below."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"message {i}" for i in range(50)])
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        chat.focus()
        await pilot.press("pageup")
        await settle(pilot)
        before = chat.scroll_y
        harness.client.receive("bob", "one")
        harness.client.receive("bob", "two")
        await settle(pilot)
        assert chat.scroll_y == before
        assert "2 new messages ↓" in str(chat.border_subtitle)
        await pilot.press("end")
        await settle(pilot)
        assert newest_in_view(pilot)
        assert not chat.border_subtitle
        harness.client.receive("bob", "three")
        await settle(pilot)
        assert newest_in_view(pilot) and not chat.border_subtitle


def number(line: MessageLine) -> int:
    found = re.search(r"message (\d+)", str(line.content))
    return int(found.group(1)) if found else -1


def first_visible(pilot: Pilot[None]) -> int:
    """The number of the topmost message inside the chat's visible area."""
    chat = pilot.app.screen.query_one(ChatLog)
    top = chat.content_region.y
    for line in chat.query_children(MessageLine):
        if line.region.y >= top:
            return number(line)
    return -1


async def hold(pilot: Pilot[None], key: str, times: int) -> None:
    for _ in range(times):
        await pilot.press(key)
        await settle(pilot)


async def test_scrolling_back_keeps_a_bounded_window(harness: Harness) -> None:
    """Paging up through 1,000 messages never holds more than a window of lines."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"message {i}" for i in range(1_000)])
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        chat.focus()
        await hold(pilot, "pageup", 40)
        shown = [str(line.content) for line in chat.query_children(MessageLine)]
        assert len(shown) <= WINDOW
        assert "message 999" not in shown[-1] and chat.newer_hidden
        harness.client.receive("bob", "while away")
        await settle(pilot)
        assert "while away" not in str(list(chat.query_children(MessageLine))[-1].content)
        await pilot.press("end")
        await settle(pilot)
        assert newest_in_view(pilot)
        assert "while away" in str(list(chat.query_children(MessageLine))[-1].content)


async def test_scrolling_down_through_the_window_keeps_the_view_in_place(
    harness: Harness,
) -> None:
    """When the window moves down, the lines on screen stay where the reader had them."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"message {i}" for i in range(1_000)])
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        chat.focus()
        await pilot.press("home")
        await settle(pilot)
        assert first_visible(pilot) == 0
        assert not chat.has_more and chat.newer_hidden
        numbers = []
        for _ in range(30):
            await pilot.press("pagedown")
            await settle(pilot)
            numbers.append(first_visible(pilot))
        assert numbers == sorted(numbers) and numbers[-1] > 300, "moved forward, never jumped"
        steps = [b - a for a, b in itertools.pairwise(numbers)]
        assert max(steps) <= 30, f"a page down skipped messages: {steps}"
        assert len(list(chat.query_children(MessageLine))) <= WINDOW


async def test_home_and_end_reach_both_ends_of_a_long_conversation(harness: Harness) -> None:
    """Home shows the very first message at once, End the newest, at any length."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"message {i}" for i in range(5_000)])
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        chat.focus()
        await pilot.press("home")
        await settle(pilot)
        assert first_visible(pilot) == 0
        await pilot.press("end")
        await settle(pilot)
        assert newest_in_view(pilot)
        assert number(list(chat.query_children(MessageLine))[-1]) == 4999


async def test_a_busy_conversation_keeps_a_bounded_window_while_following(
    harness: Harness,
) -> None:
    """Hundreds of new messages arrive: the oldest lines go, the newest stays in view."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        for i in range(300):
            harness.client.receive("bob", f"message {i}")
        await settle(pilot)
        lines = list(chat.query_children(MessageLine))
        assert len(lines) <= WINDOW + WINDOW // 4 and chat.has_more
        assert number(lines[-1]) == 299 and newest_in_view(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert number(next(iter(chat.query_children(MessageLine)))) < number(lines[0])


async def test_a_file_keeps_its_number_and_saved_mark_when_its_line_comes_back(
    harness: Harness, tmp_path: Path
) -> None:
    """The window drops the file's line and loads it again: same [n], still marked saved."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.downloads_dir = tmp_path / "downloads"
        harness.client.add_history("bob", [f"message {i}" for i in range(300)])
        harness.client.receive_file("bob", "report.pdf", b"%PDF" * 500)
        harness.client.add_history("bob", [f"after {i}" for i in range(20)])
        await type_line(pilot, "/open bob")
        await type_line(pilot, "/download 1")
        chat = pilot.app.screen.query_one(ChatLog)
        chat.focus()
        await pilot.press("home")
        await settle(pilot)
        assert not list(chat.query_children(FileLine))
        await pilot.press("end")
        await settle(pilot)
        [line] = list(chat.query_children(FileLine))
        assert line.number == 1 and "✓ saved to" in str(line.content)
