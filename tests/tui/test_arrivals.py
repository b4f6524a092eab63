"""Key echo while messages pour in: what each arriving message and key press costs the screen.

`python -m bench chatlog` measures the echo itself; these pin down the causes it found
(a full relayout per key and per message, the list and header rebuilt per message).
"""

from __future__ import annotations

import pytest
from textual.screen import Screen
from textual.widgets import OptionList

from securechat.tui.widgets.chat_line import MessageLine
from securechat.tui.widgets.chat_log import TAIL, ChatLog
from securechat.tui.widgets.conversation_header import ConversationHeader
from tests.tui.conftest import Harness, settle, sign_in, type_line

BURST = 20


async def _secured(pilot, harness: Harness) -> None:  # type: ignore[no-untyped-def]
    await sign_in(pilot)
    await type_line(pilot, "talk bob")
    harness.client.activate("bob")
    await settle(pilot)


async def test_a_burst_is_shown_in_order_read_and_drawn_in_a_few_batches(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty messages at once: all shown in order and read, but not twenty redraws."""
    marked: list[str] = []
    rebuilt: list[int] = []
    headers: list[str] = []
    real_set_options = OptionList.set_options
    real_update = ConversationHeader.update

    def mark_read(peer: str) -> None:
        marked.append(peer)
        real_mark_read(peer)

    def set_options(self, options):  # type: ignore[no-untyped-def]
        rebuilt.append(1)
        return real_set_options(self, options)

    def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        headers.append("")
        return real_update(self, *args, **kwargs)

    async with harness.app.run_test(size=(100, 30)) as pilot:
        await _secured(pilot, harness)
        real_mark_read = harness.client.mark_read
        monkeypatch.setattr(harness.client, "mark_read", mark_read)
        monkeypatch.setattr(OptionList, "set_options", set_options)
        monkeypatch.setattr(ConversationHeader, "update", update)
        for i in range(BURST):
            harness.client.receive("bob", f"burst {i}")
        await settle(pilot)
        shown = [str(line.content) for line in pilot.app.screen.query(MessageLine)]
        assert [s.split(": ", 1)[1] for s in shown if "burst" in s] == [
            f"burst {i}" for i in range(BURST)
        ]
        assert harness.client.unread.get("bob", 0) == 0
        assert 1 <= len(marked) < BURST // 2
        assert len(rebuilt) < BURST // 2
        assert headers == []  # nothing the header shows changed


async def test_typing_does_not_lay_out_the_screen(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key press redraws the input line only: a relayout would arrange every chat line."""
    layouts: list[int] = []
    real = Screen._refresh_layout

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        layouts.append(1)
        return real(self, *args, **kwargs)

    async with harness.app.run_test(size=(100, 30)) as pilot:
        await _secured(pilot, harness)
        harness.client.add_history("bob", [f"old {i}" for i in range(40)])
        await type_line(pilot, "/open bob")
        await settle(pilot)
        monkeypatch.setattr(Screen, "_refresh_layout", counting)
        await pilot.press(*"twenty keys typed here")
        await settle(pilot)
        assert pilot.app.screen.query_one("#input").value == "twenty keys typed here"  # type: ignore[attr-defined]
        assert len(layouts) < 5


async def _opened(pilot, harness: Harness) -> ChatLog:  # type: ignore[no-untyped-def]
    """Bob's conversation open on 40 older messages."""
    await _secured(pilot, harness)
    harness.client.add_history("bob", [f"old {i}" for i in range(40)])
    await type_line(pilot, "/open bob")
    return pilot.app.screen.query_one(ChatLog)


async def test_at_the_newest_a_burst_keeps_only_a_short_tail_mounted(harness: Harness) -> None:
    """Each arrival lays out every mounted line: following, only a tail of them stays."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        chat = await _opened(pilot, harness)
        for i in range(5 * BURST):
            harness.client.receive("bob", f"burst {i}")
            if i % 5 == 4:
                await settle(pilot)
                mounted = len(list(chat.query_children(MessageLine)))
                assert mounted <= TAIL + TAIL // 2, "the dropped lines were not loaded back"
        lines = [str(line.content) for line in chat.query_children(MessageLine)]
        assert f"burst {5 * BURST - 1}" in lines[-1] and chat.is_vertical_scroll_end
        assert chat.following
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert len(list(chat.query_children(MessageLine))) > len(lines), "older still pages in"


async def test_scrolled_back_arrivals_are_counted_not_mounted(harness: Harness) -> None:
    """Reading older messages, a burst lays nothing out: End brings it from the vault."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        chat = await _opened(pilot, harness)
        chat.focus()
        await pilot.press("pageup")
        await settle(pilot)
        before = [str(line.content) for line in chat.query_children(MessageLine)]
        for i in range(BURST):
            harness.client.receive("bob", f"burst {i}")
        await settle(pilot)
        assert [str(line.content) for line in chat.query_children(MessageLine)] == before
        assert f"{BURST} new messages ↓" in str(chat.border_subtitle)
        assert harness.client.unread.get("bob", 0) == 0
        await pilot.press("end")
        await settle(pilot)
        lines = [str(line.content) for line in chat.query_children(MessageLine)]
        assert f"burst {BURST - 1}" in lines[-1] and chat.is_vertical_scroll_end
        assert not chat.border_subtitle
