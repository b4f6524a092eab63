"""The chat view's scrolling: pinned to the newest message unless the user scrolled up."""

from __future__ import annotations

from textual.pilot import Pilot

from securechat.tui.widgets.chat_log import ChatLog, MessageLine
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
        await type_line(pilot, "open bob")
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
        await type_line(pilot, "open bob")
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
        await type_line(pilot, "open carol")
        await type_line(pilot, "open bob")
        assert newest_in_view(pilot)


async def test_scrolled_up_the_view_stays_and_counts_new_messages(harness: Harness) -> None:
    """Reading older messages is not interrupted; the border counts what arrived below."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"message {i}" for i in range(50)])
        await type_line(pilot, "open bob")
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
