"""Peer text reaches the terminal as text: no markup, no escape sequences, no truncation."""

from __future__ import annotations

from securechat.tui.safe_text import one_line, safe, visible
from securechat.tui.widgets.chat_line import MessageLine
from securechat.tui.widgets.chat_log import ChatLog
from tests.tui.conftest import Harness, settle, sign_in, type_line

HOSTILE = ["[bold]loud[/bold] [link=http://x]y[/link]", "clear \x1b[2J now", "A" * 10_000]


def test_visible_escapes_control_characters() -> None:
    """ESC, BEL, CR and bidi overrides become visible stand-ins; newlines and emoji stay."""
    assert visible("a\x1b[2Jb") == "a␛[2Jb"
    assert visible("ring\x07") == "ring\\x07"
    assert visible("over\rwrite") == "over␍write"
    assert visible("\u202eevil") == "\\u202eevil"
    assert visible("line\nnext 👩\u200d💻") == "line\nnext 👩\u200d💻"
    assert one_line("a\nb", 10) == "a\\x0ab"
    assert safe("[bold]x[/bold]").plain == "[bold]x[/bold]" and not safe("[bold]x").spans


async def test_hostile_messages_render_as_text(harness: Harness) -> None:
    """`[bold]`, `\\x1b[2J` and a 10,000-character line show literally and in full.

    The fake link in the first line is still a link to check: it gets a badge, as text.
    """
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/open bob")
        for text in HOSTILE:
            harness.client.receive("bob", text)
        await settle(pilot)
        shown = [line.content for line in pilot.app.screen.query(MessageLine)]
        plain = [str(text) for text in shown]
        assert plain[0].endswith("[bold]loud[/bold] [link=http://x]y[/link [? unknown]]")
        assert plain[1].endswith("clear ␛[2J now")
        assert plain[2].endswith("A" * 10_000)
        assert all("\x1b" not in text for text in plain)
        long_line = pilot.app.screen.query(MessageLine)[2]
        assert long_line.size.height >= 10_000 // 100
        pilot.app.screen.query_one(ChatLog).scroll_home(animate=False)
        await pilot.pause()
        screenshot = pilot.app.export_screenshot()
        assert "[bold]loud[/bold]" in screenshot.replace("&#160;", " ")
