"""Group conversations in the TUI, through Pilot on the fake client's in-memory groups."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from securechat.client.api import GroupInfo
from securechat.client.events import GroupChange, KeyChanged, KeyShared
from securechat.scanner import Rating
from securechat.tui import commands as C
from securechat.tui.messages import SignedIn
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.invitation import InvitationScreen
from securechat.tui.screens.main import MainScreen
from securechat.tui.screens.members import MembersScreen
from securechat.tui.screens.search import SearchScreen
from securechat.tui.widgets.chat_line import MessageLine
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.conversation_header import ConversationHeader
from tests.tui.conftest import (
    PASSWORD,
    Harness,
    build,
    feedback,
    main_screen,
    settle,
    sign_in,
    type_line,
    until,
    wait_for_screen,
)
from tests.tui.fakes import FINGERPRINT, OFFERED_FINGERPRINT, FakeClient, FakeGroup


@pytest.fixture
def harness() -> Harness:
    """Four users on the fake relay, so a group has someone left to invite."""
    return build(accounts={user: PASSWORD for user in ("alice", "bob", "carol", "dave")})


def lines(pilot: Pilot[None]) -> list[str]:
    return [str(line.content) for line in pilot.app.screen.query(MessageLine)]


def conversation_list(pilot: Pilot[None]) -> str:
    options = pilot.app.screen.query_one("#conversations", OptionList).options
    return "\n".join(str(o.prompt) for o in options)


def header(pilot: Pilot[None]) -> str:
    return str(pilot.app.screen.query_one(ConversationHeader).content)


async def team(pilot: Pilot[None], harness: Harness) -> str:
    """Signs in as alice and creates "team" with bob and carol; returns the group id."""
    await sign_in(pilot)
    await type_line(pilot, "/group new team bob carol")
    (group,) = harness.client.groups()
    return group.group_id


async def test_group_new_opens_the_group_with_its_badge_and_members(harness: Harness) -> None:
    """The list row, the header and the chat all say what the group is and who is in it."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        assert main_screen(pilot).current == f"#{group_id}"
        assert "team is created with bob, carol" in feedback(pilot)
        listing = conversation_list(pilot)
        assert "# team" in listing and "🔒 MLS · 3 members" in listing
        assert "# team" in header(pilot)
        assert "🔒 E2E Active · MLS · 3 members" in header(pilot)
        assert pilot.app.screen.query_one(ChatLog).border_title == "team"
        shown = lines(pilot)
        # Its lines arrive as events while the group opens: each is shown once.
        assert sum("alice created the group team" in line for line in shown) == 1
        assert any("alice added carol" in line for line in shown)


async def test_group_messages_show_their_sender_both_ways(harness: Harness) -> None:
    """A group has many senders: each line names its own, and typing sends to the group."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        await type_line(pilot, "hello all")
        assert harness.client.sent == [(f"#{group_id}", "hello all")]
        harness.client.receive_group(group_id, "bob", "hi alice")
        harness.client.receive_group(group_id, "carol", "hi both")
        await settle(pilot)
        shown = lines(pilot)
        assert "alice: hello all" in shown[-3] and "✓ sent" in shown[-3]
        assert "bob: hi alice" in shown[-2]
        assert "carol: hi both" in shown[-1]


async def test_membership_changes_appear_in_the_conversation(harness: Harness) -> None:
    """Another member's add and a member leaving are lines in the chat; the count follows."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        harness.client.group_event(group_id, GroupChange.ADDED, "bob", "dave")
        harness.client.group_event(group_id, GroupChange.LEFT, "carol", "carol")
        await settle(pilot)
        shown = lines(pilot)
        assert "bob added dave" in shown[-2]
        assert "carol left" in shown[-1]
        assert "3 members" in header(pilot)


async def test_a_group_message_elsewhere_counts_unread_and_notifies_with_the_group(
    harness: Harness,
) -> None:
    """Out of view: the group's row counts it, and toast and OSC name sender and group."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        harness.client.add_history("bob", ["hi"])
        await type_line(pilot, "/open bob")
        harness.client.receive_group(group_id, "carol", "psst")
        await settle(pilot)
        assert "# team (1)" in conversation_list(pilot)
        assert any(n.title == "message from carol in team" for n in pilot.app._notifications)
        osc = [w for w in harness.written if w.startswith("\x1b]9;")]
        assert osc == ["\x1b]9;securechat: New message from carol in team\x07"]


async def test_invite_remove_rename_and_topic_change_the_open_group(harness: Harness) -> None:
    """Each command acts on the open group and says what it did."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        await type_line(pilot, "/invite dave")
        assert "dave is added to team" in feedback(pilot)
        assert "4 members" in header(pilot)
        await type_line(pilot, "/remove bob")
        assert "bob is removed from team" in feedback(pilot)
        assert "alice removed bob" in lines(pilot)[-1]
        await type_line(pilot, "/rename night shift")
        assert "# night shift" in header(pilot) and "# night shift" in conversation_list(pilot)
        await type_line(pilot, "/topic rota for [bold]May[/bold]")
        assert "rota for [bold]May[/bold]" in header(pilot)
        await type_line(pilot, "/admin carol")
        assert "carol is now an admin of night shift" in feedback(pilot)
        members = [(m.user, m.admin) for m in harness.client.group_members(group_id)]
        assert members == [("alice", True), ("carol", True), ("dave", False)]


async def test_group_commands_outside_a_group_say_how_to_get_one(harness: Harness) -> None:
    """No group open: nothing is sent anywhere, and the line names `/group new`."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.add_history("bob", ["hi"])
        await type_line(pilot, "/open bob")
        for line in ("/invite carol", "/remove carol", "/admin carol", "/leave", "/members"):
            await type_line(pilot, line)
            assert "works in a group" in feedback(pilot) and "/group new" in feedback(pilot)
        assert harness.client.groups() == []


async def test_refusals_unknown_user_and_not_admin_are_explained(harness: Harness) -> None:
    """The core's refusals reach the feedback line as sentences; the group is unchanged."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await team(pilot, harness)
        await type_line(pilot, "/invite nobody")
        assert "nobody was not added: nobody has not published keys" in feedback(pilot)
        await type_line(pilot, "/group new other bob alice")
        assert "name only the others" in feedback(pilot)
        other = harness.client.invite_me("carol", "carols", ["bob"])
        await settle(pilot)
        await pilot.click("#open")
        await settle(pilot)
        assert main_screen(pilot).current == f"#{other}"
        await type_line(pilot, "/remove bob")
        assert "bob was not removed: only an admin of carols can remove members" in feedback(pilot)


async def test_leave_asks_first_and_keeps_the_history(harness: Harness) -> None:
    """Leaving is confirmed; afterwards the group is read-only history in the list."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        await type_line(pilot, "/leave")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.click("#confirm")
        await settle(pilot)
        assert harness.client.groups() == []
        assert "you left team" in feedback(pilot)
        assert "no longer a member" in header(pilot)
        assert "no longer a member" in conversation_list(pilot)
        assert harness.client.history(f"#{group_id}"), "the history stays"


async def test_members_lists_fingerprints_and_verified_marks(harness: Harness) -> None:
    """Each member with the full fingerprint; ✓ for a key verified, the admin named."""
    async with harness.app.run_test(size=(120, 30)) as pilot:
        await team(pilot, harness)
        harness.client.verified.add("bob")
        await type_line(pilot, "/members")
        assert isinstance(pilot.app.screen, MembersScreen)
        console = Console(width=120, record=True, file=io.StringIO())
        for static in pilot.app.screen.query(Static):
            console.print(static.content)
        shown = console.export_text()
        assert "team · 3 members" in shown
        first, second = " ".join(FINGERPRINT.split()[:8]), " ".join(FINGERPRINT.split()[8:])
        # One's own key has nothing to be compared with (`/verify` refuses it): no mark.
        assert f"alice (you) admin  {first}  your key " in shown
        assert shown.count("not verified") == 1
        assert f"bob                {first}  ✓ verified" in shown
        assert f"carol              {first}  not verified\n                   {second}" in shown
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_an_invitation_shows_inviter_members_and_a_new_key_first(
    harness: Harness,
) -> None:
    """Before the group opens: who invited, who is in it, and an unpinned inviter's fingerprint."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        group_id = harness.client.invite_me("dave", "book club", ["bob"], "novels", pinned=False)
        await wait_for_screen(pilot, InvitationScreen)
        shown = "\n".join(str(s.content) for s in pilot.app.screen.query(Static))
        assert "dave invited you to the group book club" in shown
        assert "Members (3): dave, bob and you (alice)" in shown
        assert "dave's key is new to this device" in shown and OFFERED_FINGERPRINT in shown
        assert main_screen_under(pilot).current is None
        await pilot.click("#open")
        await settle(pilot)
        assert main_screen(pilot).current == f"#{group_id}"
        assert "dave added alice" in lines(pilot)[-1]


async def test_an_invitation_from_a_pinned_key_and_leaving_at_once(harness: Harness) -> None:
    """A pinned inviter shows no fingerprint to compare; "Leave group" leaves straight away."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.invite_me("bob", "spam", ["carol"], pinned=True)
        await wait_for_screen(pilot, InvitationScreen)
        key_line = str(pilot.app.screen.query_one("#invitation-key", Static).content)
        assert "bob's key is the one pinned" in key_line
        await pilot.click("#leave")
        await settle(pilot)
        assert harness.client.groups() == []
        assert "you left spam" in feedback(pilot)


async def test_a_key_change_in_a_group_warns_and_blocks_sending(harness: Harness) -> None:
    """The warning names the member; nothing goes out until trust, then it does."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        harness.client.change_group_key(group_id, "bob")
        await settle(pilot)
        assert "key of bob changed" in header(pilot) and "`/trust bob`" in header(pilot)
        assert "key changed!" in conversation_list(pilot)
        assert any("bob's key changed in team" in n.message for n in pilot.app._notifications)
        await type_line(pilot, "still there?")
        assert harness.client.sent == []
        assert "not sent: bob's key changed" in feedback(pilot)
        await type_line(pilot, "/trust bob")
        await type_line(pilot, "still there?")
        assert harness.client.sent == [(f"#{group_id}", "still there?")]
        assert "MLS · 3 members" in header(pilot)


async def test_files_and_link_badges_work_in_a_group(harness: Harness, tmp_path: Path) -> None:
    """`/send` uploads to the group; a member's link is checked and badged as in 1:1."""
    source = tmp_path / "rota.pdf"
    source.write_bytes(b"%" * 2000)
    phish = "http://paypal.com@evil.example/login"
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        await type_line(pilot, f"/send {source}")
        assert harness.client.uploads == [(f"#{group_id}", "rota.pdf")]
        assert "rota.pdf sent to team" in feedback(pilot)
        harness.client.ratings[phish] = Rating.MALICIOUS
        harness.client.receive_group(group_id, "carol", f"log in at {phish}")
        await settle(pilot)
        assert harness.client.scans == [(phish, False)]
        assert "carol: log in at hxxp://paypal[.]com@evil[.]example/login" in lines(pilot)[-1]
        assert "⚠ MALICIOUS" in lines(pilot)[-1]


async def removed_by_bob(pilot: Pilot[None], harness: Harness) -> None:
    """Signed in, invited by bob to "team", the group opened, then removed by bob."""
    await sign_in(pilot)
    group_id = harness.client.invite_me("bob", "team", ["carol"])
    await wait_for_screen(pilot, InvitationScreen)
    await pilot.click("#open")
    await settle(pilot)
    harness.client.group_event(group_id, GroupChange.REMOVED, "bob", "alice")
    await settle(pilot)


async def test_being_removed_is_said_and_the_group_turns_read_only(harness: Harness) -> None:
    """Another admin removes us: a warning, the line in the chat, and no more sending."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await removed_by_bob(pilot, harness)
        assert "bob removed alice" in lines(pilot)[-1]
        assert any("bob removed you from" in n.message for n in pilot.app._notifications)
        assert "no longer a member" in header(pilot)
        await type_line(pilot, "/members")
        assert "you are no longer in" in feedback(pilot)


async def test_a_group_we_are_removed_from_keeps_its_name(harness: Harness) -> None:
    """The core lists only groups we are in: the name must not turn into the group's id
    (walkthrough 16: dave saw "group 664e05eb" and "removed you from a group you left")."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await removed_by_bob(pilot, harness)
        assert harness.client.groups() == []
        assert any("bob removed you from team;" in n.message for n in pilot.app._notifications)
        assert "# team  no longer a member" in header(pilot)
        assert "# team\n  no longer a member" in conversation_list(pilot)
        assert str(pilot.app.screen.query_one(ChatLog).border_title) == "team"
        await type_line(pilot, "/members")
        assert "you are no longer in team" in feedback(pilot)


async def test_a_group_we_were_removed_from_before_a_restart_keeps_its_name(
    harness: Harness,
) -> None:
    """The core's `groups()` leaves it out: the name comes from `group_names()`, not an id."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        group_id = "ab" * 16
        harness.client.group_state[group_id] = FakeGroup(group_id, "team", members=["bob"])
        harness.client.add_history(f"#{group_id}", ["hi all"])
        # A main screen starting on that vault, as after a restart.
        pilot.app.post_message(SignedIn("alice"))
        await until(pilot, lambda: main_screen(pilot).current == f"#{group_id}", "the group open")
        await settle(pilot)
        assert "# team\n  no longer a member" in conversation_list(pilot)
        assert "# team  no longer a member" in header(pilot)
        assert str(pilot.app.screen.query_one(ChatLog).border_title) == "team"


async def test_an_invitation_read_at_sign_in_comes_before_the_group_opens(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invited while offline: the group is the newest conversation when the screen starts,
    and it must not open by itself behind the invitation (walkthrough 16, erin)."""
    login = FakeClient.login

    async def invited_while_offline(
        client: FakeClient, username: str, password: str, previous: str | None = None
    ) -> None:
        await login(client, username, password, previous)
        client.invite_me("bob", "team", ["carol"])

    monkeypatch.setattr(FakeClient, "login", invited_while_offline)
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await wait_for_screen(pilot, InvitationScreen)
        await settle(pilot)
        assert main_screen_under(pilot).current is None
        await pilot.press("escape")
        await settle(pilot)
        assert main_screen(pilot).current is None
        assert "it waits in the list" in feedback(pilot)


async def test_an_invitation_read_late_shows_who_is_in_the_group_now(harness: Harness) -> None:
    """Offline when invited: the Welcome and the Commits after it arrive together, and the
    dialog names the members and topic as they are, not a member removed since."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        group_id = harness.client.invite_me("bob", "team", ["carol", "dave"])
        harness.client.group_event(group_id, GroupChange.REMOVED, "bob", "dave")
        harness.client.group_event(group_id, GroupChange.TOPIC, "bob", "launch plans")
        await wait_for_screen(pilot, InvitationScreen)
        shown = "\n".join(str(s.content) for s in pilot.app.screen.query(Static))
        assert "Members (3): bob, carol and you (alice)" in shown
        assert "launch plans" in shown


def main_screen_under(pilot: Pilot[None]) -> MainScreen:
    """The main screen under a dialog."""
    return next(s for s in pilot.app.screen_stack if isinstance(s, MainScreen))


async def test_search_names_the_group_and_sender_and_jumps_into_the_group(
    harness: Harness,
) -> None:
    """A hit in a group says who wrote it where (its key is not a name); Enter opens it there."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        harness.client.receive_group(group_id, "bob", "the pineapple plan")
        harness.client.add_history("carol", ["hi"])
        await settle(pilot)
        await type_line(pilot, "/open carol")
        await type_line(pilot, "/search pineapple")
        screen = pilot.app.screen
        assert isinstance(screen, SearchScreen)
        results = screen.query_one("#search-results", OptionList)
        assert "bob in team" in str(results.options[0].prompt)
        await pilot.press("enter")
        await settle(pilot)
        assert main_screen(pilot).current == f"#{group_id}"


async def test_ctrl_t_in_a_group_starts_no_session(harness: Harness) -> None:
    """The stuck-session key is for direct conversations: in a group it explains, not `talk`s."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert "a group has no session to restart" in feedback(pilot)
        assert f"#{group_id}" not in harness.client.states


async def test_the_palette_offers_group_commands_and_no_peer_entries_for_groups(
    harness: Harness,
) -> None:
    """Group commands are in the palette; a group's key is never offered as a user to talk to."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        entries = main_screen(pilot).palette_entries()
        titles = [title for title, _, _ in entries]
        assert ("New group…", C.NewGroup.palette_help, "/group new ") in entries
        assert "Leave this group" in titles and "Members of this group" in titles
        assert not any(group_id in title for title in titles)


async def test_a_group_name_is_text_everywhere_never_markup(harness: Harness) -> None:
    """A member names the group `[/b][red]x`: list, header, toast and warning show it as typed."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/group new [/b][red]x bob")
        (group,) = harness.client.groups()
        assert "# [/b][red]x" in header(pilot) and "# [/b][red]x" in conversation_list(pilot)
        harness.client.add_history("carol", ["hi"])
        await type_line(pilot, "/open carol")
        harness.client.receive_group(group.group_id, "bob", "[/i]psst")
        harness.client.change_group_key(group.group_id, "bob")
        await settle(pilot)
        await pilot.pause(0.1)
        shown = [(n.title, n.message, n.markup) for n in pilot.app._notifications]
        assert ("message from bob in [/b][red]x", "[/i]psst", False) in shown
        assert all(not markup for _, _, markup in shown)


async def test_help_lists_the_group_commands(harness: Harness) -> None:
    """F1 shows each group command with its usage, written once in its class."""
    async with harness.app.run_test(size=(120, 40)) as pilot:
        await sign_in(pilot)
        await pilot.press("f1")
        await settle(pilot)
        console = Console(width=120, record=True, file=io.StringIO())
        for static in pilot.app.screen.query(Static):
            console.print(static.content)
        shown = console.export_text()
        for usage in (
            "/group new <name> <user> [<user>...]",
            "/invite <user>",
            "/remove <user>",
            "/leave",
            "/members",
            "/rename <name>",
            "/topic <text>",
            "/admin <user>",
        ):
            assert usage in shown


async def test_arriving_messages_do_not_reload_the_groups(harness: Harness) -> None:
    """A burst of messages changes no group: the core's MLS states stay unread in the vault."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        client = harness.client
        calls = 0
        groups = client.groups

        def counted() -> list[GroupInfo]:
            nonlocal calls
            calls += 1
            return groups()

        client.groups = counted  # type: ignore[method-assign]
        for n in range(5):
            client.receive_group(group_id, "bob", f"message {n}")
        await settle(pilot)
        assert "bob: message 4" in lines(pilot)[-1]
        assert calls == 0


async def test_a_key_first_seen_in_a_group_is_not_called_a_sharekey(harness: Harness) -> None:
    """The core pins a new member's key as it reads the group: no `talk` is asked for."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await team(pilot, harness)
        harness.client._emit(KeyShared("dave", FINGERPRINT))
        await settle(pilot)
        assert "dave's key is pinned (A1B2 C3D4 E5F6 A7B8), first seen in a group" in (
            feedback(pilot)
        )
        harness.client.add_history("bob", ["hi"])
        harness.client._emit(KeyShared("bob", FINGERPRINT))
        await settle(pilot)
        assert "bob shared their key (A1B2 C3D4 E5F6 A7B8); `talk bob` next" in feedback(pilot)


async def test_a_group_members_key_change_warns_once_naming_the_group(harness: Harness) -> None:
    """The core reports a member's key change twice (as a key and in the group): one toast."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        group_id = await team(pilot, harness)
        pilot.app.clear_notifications()
        harness.client._emit(KeyChanged("bob", FINGERPRINT, OFFERED_FINGERPRINT))
        harness.client.change_group_key(group_id, "bob")
        await settle(pilot)
        warnings = [n.message for n in pilot.app._notifications if "key changed" in n.message]
        assert len(warnings) == 1 and "bob's key changed in team" in warnings[0]
