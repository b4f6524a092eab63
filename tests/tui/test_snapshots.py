"""Layout snapshots of the screens people see most; fixed names and a UTC clock keep them stable."""

from __future__ import annotations

from textual.pilot import Pilot

from securechat.client.events import GroupChange
from securechat.scanner import Rating
from tests.tui.conftest import build, settle, sign_in, steady_cursor, type_line

SIZE = (100, 30)


def test_sign_in_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The first screen a new user sees."""
    assert snap_compare(build(user="alice").app, run_before=steady_cursor, terminal_size=SIZE)


def test_active_conversation(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """An E2E-active chat: badge, history, delivery marks, a hostile line shown as text."""
    harness = build()

    async def run_before(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        harness.client.add_history("carol", ["see you at the station"])
        harness.client.add_history(
            "bob", ["hi alice", "hi bob, this is encrypted", "[bold]not bold[/bold] \x1b[2J stays"]
        )
        await type_line(pilot, "/open bob")
        harness.client.activate("bob")
        await settle(pilot)
        await type_line(pilot, "on my way")
        pilot.app.clear_notifications()
        await steady_cursor(pilot)

    assert snap_compare(harness.app, run_before=run_before, terminal_size=SIZE)


def test_key_change_warning(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The warning a changed key raises, in the list and above the chat."""
    harness = build()

    async def run_before(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        harness.client.add_history("bob", ["hi alice", "hi bob"])
        await type_line(pilot, "/open bob")
        harness.client.activate("bob")
        await settle(pilot)
        harness.client.change_key("bob")
        await settle(pilot)
        pilot.app.clear_notifications()
        await steady_cursor(pilot)

    assert snap_compare(harness.app, run_before=run_before, terminal_size=SIZE)


def test_search_results(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Results from two conversations with their context and the match highlighted."""
    harness = build()

    async def run_before(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        harness.client.add_history("bob", ["the train leaves at noon", "which train?"])
        harness.client.add_history("carol", ["I missed the train again, a long story about it"])
        await type_line(pilot, "/search train")
        await steady_cursor(pilot)

    assert snap_compare(harness.app, run_before=run_before, terminal_size=SIZE)


def test_file_and_flagged_links(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """A received file as a numbered link, a sent one, and links with their badges."""
    harness = build()

    async def run_before(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        harness.client.add_history("bob", ["hi alice", "hi bob, send me the report"])
        await type_line(pilot, "/open bob")
        harness.client.activate("bob")
        await settle(pilot)
        harness.client.ratings["http://paypal.com@evil.example/login"] = Rating.MALICIOUS
        harness.client.ratings["https://docs.python.org/3/"] = Rating.SAFE
        harness.client.receive_file("bob", "report.pdf", b"%" * 2_300_000)
        harness.client.receive("bob", "log in here first: http://paypal.com@evil.example/login")
        harness.client.receive("bob", "the docs: https://docs.python.org/3/ and example.org/x")
        await settle(pilot)
        pilot.app.clear_notifications()
        await steady_cursor(pilot)

    assert snap_compare(harness.app, run_before=run_before, terminal_size=SIZE)


def test_group_conversation(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """A group: its row and MLS header, senders on each line, a membership change, a topic."""
    harness = build()

    async def run_before(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        harness.client.add_history("carol", ["see you at the station"])
        await type_line(pilot, "/group new team bob carol")
        (group,) = harness.client.groups()
        await type_line(pilot, "/topic the rota for May")
        harness.client.receive_group(group.group_id, "bob", "who takes Friday?")
        await type_line(pilot, "I can")
        harness.client.receive_group(group.group_id, "carol", "thanks! [bold]not bold[/bold]")
        harness.client.group_event(group.group_id, GroupChange.LEFT, "bob", "bob")
        await settle(pilot)
        pilot.app.clear_notifications()
        await steady_cursor(pilot)

    assert snap_compare(harness.app, run_before=run_before, terminal_size=SIZE)
