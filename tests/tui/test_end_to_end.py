"""The TUI on a real relay and the real client core, with a headless peer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, OptionList, Static

from securechat import paths
from securechat.client.core import ChatClient
from securechat.client.events import FileOffered, GroupChanged, GroupInvited, MessageReceived
from securechat.tui.app import make_app
from securechat.tui.screens.invitation import InvitationScreen
from securechat.tui.screens.main import MainScreen
from securechat.tui.screens.recovery import RecoveryCodeScreen
from securechat.tui.screens.signin import SignInScreen
from securechat.tui.widgets.chat_line import FileLine, MessageLine
from tests.client.helpers import clients, wait_for
from tests.tui.conftest import (
    PASSWORD,
    feedback,
    settle,
    type_line,
    until,
    utc_time,
    wait_for_screen,
)

E = TypeVar("E")


async def next_event(client: ChatClient, kind: type[E], timeout: float = 15) -> E:
    """The headless peer's next event of one kind, skipping the others."""

    async def _next() -> E:
        while not isinstance(event := await client.events.get(), kind):
            pass
        return event

    return await asyncio.wait_for(_next(), timeout)


async def next_message(client: ChatClient, timeout: float = 15) -> MessageReceived:
    return await next_event(client, MessageReceived, timeout)


def conversation_text(pilot: Pilot[None]) -> str:
    options = pilot.app.screen.query_one("#conversations", OptionList).options
    return "\n".join(str(o.prompt) for o in options)


def chat_text(pilot: Pilot[None]) -> str:
    return "\n".join(str(line.content) for line in pilot.app.screen.query(MessageLine))


async def register(pilot: Pilot[None], user: str) -> str:
    """Registers through the form and accepts the recovery code; returns the code."""
    pilot.app.screen.query_one("#username", Input).value = user
    pilot.app.screen.query_one("#password", Input).value = PASSWORD
    await pilot.click("#register")
    await wait_for_screen(pilot, RecoveryCodeScreen, timeout=30)
    code = str(pilot.app.screen.query_one("#recovery-code", Static).content)
    pilot.app.screen.query_one("#saved", Checkbox).value = True
    await pilot.pause()
    await pilot.click("#continue")
    await wait_for_screen(pilot, MainScreen)
    return code


async def test_tui_and_headless_peer_chat_end_to_end(relay_url: str, tmp_path: Path) -> None:
    """Register, sharekey, talk, messages both ways, and the E2E badge, all for real."""
    bob = ChatClient(relay_url, tmp_path / "bob")
    await bob.connect()
    await bob.register("bob", PASSWORD)
    app = make_app(relay_url, data_dir=tmp_path / "alice", time_format=utc_time)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await register(pilot, "alice")
            await type_line(pilot, "sharekey bob")
            await bob.sharekey("alice")
            await until(pilot, lambda: "bob shared their key" in feedback(pilot), "bob's key")
            await type_line(pilot, "talk bob")
            await until(pilot, lambda: "🔒 E2E Active" in conversation_text(pilot), "the badge")
            await type_line(pilot, "hello bob, from the TUI")
            received = await next_message(bob)
            assert received.text == "hello bob, from the TUI" and received.peer == "alice"
            await bob.send_text("alice", "hi alice, from headless bob")
            await until(pilot, lambda: "from headless bob" in chat_text(pilot), "bob's reply")
            await until(pilot, lambda: "✓✓ delivered" in chat_text(pilot), "the receipt")
            assert "signed in as alice" in str(pilot.app.screen.query_one("#status").render())
    finally:
        await bob.close()


async def test_files_both_ways_through_a_real_relay(relay_url: str, tmp_path: Path) -> None:
    """The TUI sends a file to a headless peer and downloads the one it gets back."""
    bob = ChatClient(relay_url, tmp_path / "bob")
    await bob.connect()
    await bob.register("bob", PASSWORD)
    outgoing = tmp_path / "notes from alice.txt"
    outgoing.write_bytes(b"alice's notes\n" * 5000)
    reply = tmp_path / "reply.bin"
    reply.write_bytes(bytes(range(256)) * 700)
    app = make_app(relay_url, data_dir=tmp_path / "alice", time_format=utc_time)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await register(pilot, "alice")
            await type_line(pilot, "sharekey bob")
            await bob.sharekey("alice")
            await until(pilot, lambda: "bob shared their key" in feedback(pilot), "bob's key")
            await type_line(pilot, "talk bob")
            await until(pilot, lambda: "🔒 E2E Active" in conversation_text(pilot), "the badge")
            await type_line(pilot, f"/send {outgoing}")
            assert "notes from alice.txt sent to bob" in feedback(pilot)
            offer = await next_event(bob, FileOffered)
            saved = await bob.download(offer.file_id, tmp_path / "bob-downloads")
            assert saved.read_bytes() == outgoing.read_bytes()
            await until(pilot, lambda: "📎 notes from alice.txt" in chat_text(pilot), "the item")
            await bob.send_file("alice", reply)
            await until(pilot, lambda: bool(pilot.app.screen.query(FileLine)), "bob's file")
            await type_line(pilot, "/download 1")
            await until(pilot, lambda: "verified and saved" in feedback(pilot), "the download")
            landed = paths.downloads_dir(tmp_path / "alice") / "reply.bin"
            assert landed.read_bytes() == reply.read_bytes()
    finally:
        await bob.close()


async def test_real_core_refusals_reach_the_screen(relay_url: str, tmp_path: Path) -> None:
    """Unknown user, no session and a wrong vault password, as the real core words them."""
    app = make_app(relay_url, data_dir=tmp_path / "carol", time_format=utc_time)
    async with app.run_test(size=(100, 30)) as pilot:
        await register(pilot, "carol")
        await type_line(pilot, "talk nobody")
        assert "nobody" in feedback(pilot) and "not_found" not in feedback(pilot)
        await type_line(pilot, "/open dave")
        await type_line(pilot, "this must not leave in clear")
        assert "no secure session with dave" in feedback(pilot)
        assert "talk dave" in feedback(pilot)
        assert chat_text(pilot) == ""
    again = make_app(relay_url, data_dir=tmp_path / "carol", user="carol")
    async with again.run_test(size=(100, 30)) as pilot:
        field = pilot.app.screen.query_one("#password", Input)
        field.value = "not my password at all"
        field.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, SignInScreen)
        status = str(pilot.app.screen.query_one("#signin-status", Static).content)
        assert "does not unlock" in status


async def test_presence_of_a_first_contact_is_right_in_the_first_session(
    relay_url: str, tmp_path: Path
) -> None:
    """The TUI only receives bob's key: bob shows online at once, and offline when he quits."""
    bob = ChatClient(relay_url, tmp_path / "bob")
    await bob.connect()
    await bob.register("bob", PASSWORD)
    app = make_app(relay_url, data_dir=tmp_path / "alice", time_format=utc_time)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await register(pilot, "alice")
            await bob.sharekey("alice")
            await until(pilot, lambda: "● bob" in conversation_text(pilot), "bob online", 10)
            await bob.close()
            await until(pilot, lambda: "○ bob" in conversation_text(pilot), "bob offline", 10)
    finally:
        await bob.close()


async def test_a_group_from_the_tui_on_a_real_relay(relay_url: str, tmp_path: Path) -> None:
    """The TUI creates a group of three real clients, talks in it, and removes a member."""
    async with clients(relay_url, tmp_path, "bob", "carol") as (bob, carol):
        await bob.settle()
        await carol.settle()
        app = make_app(relay_url, data_dir=tmp_path / "alice", time_format=utc_time)
        async with app.run_test(size=(100, 30)) as pilot:
            await register(pilot, "alice")
            assert app.client is not None
            await app.client.settle()
            await type_line(pilot, "/group new team bob carol")
            await until(pilot, lambda: "team is created" in feedback(pilot), "the group")
            assert "🔒 MLS · 3 members" in conversation_text(pilot)
            await wait_for(bob, GroupInvited)
            await wait_for(carol, GroupInvited)
            await type_line(pilot, "hello team")
            got = await wait_for(bob, MessageReceived, text="hello team")
            group_id = got.conversation.name  # type: ignore[attr-defined]
            await wait_for(carol, MessageReceived, text="hello team")
            await carol.group_send_text(group_id, "hi alice")
            await until(pilot, lambda: "carol: hi alice" in chat_text(pilot), "carol's line")
            await type_line(pilot, "/remove bob")
            await until(pilot, lambda: "alice removed bob" in chat_text(pilot), "the removal")
            await wait_for(bob, GroupChanged, subject="bob")
            assert "🔒 MLS · 2 members" in conversation_text(pilot)


async def test_a_real_invitation_shows_the_inviters_new_key_before_the_group(
    relay_url: str, tmp_path: Path
) -> None:
    """Bob, never pinned here, adds alice: she sees his fingerprint and the members first."""
    async with clients(relay_url, tmp_path, "bob", "carol") as (bob, carol):
        app = make_app(relay_url, data_dir=tmp_path / "alice", time_format=utc_time)
        async with app.run_test(size=(100, 30)) as pilot:
            await register(pilot, "alice")
            assert app.client is not None
            await app.client.settle()
            await carol.settle()
            await bob.create_group("book club", ["alice", "carol"])
            await wait_for_screen(pilot, InvitationScreen)
            shown = "\n".join(str(s.content) for s in pilot.app.screen.query(Static))
            assert "bob invited you to the group book club" in shown
            assert "Members (3): bob, carol and you (alice)" in shown
            assert "bob's key is new to this device" in shown
            pinned = app.client.pinned_key("bob")
            assert pinned is not None and pinned.fingerprint_hex() in shown
            await pilot.click("#open")
            await settle(pilot)
            await bob.group_send_text(bob.groups()[0].group_id, "welcome, alice")
            await until(pilot, lambda: "bob: welcome, alice" in chat_text(pilot), "bob's line")
