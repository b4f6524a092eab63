"""The main screen and every typed command, through Pilot on the fake client."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.widgets import Button, Input, OptionList, Static

from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationState,
    MessageReceived,
    MessagesMissing,
    PresenceChanged,
)
from securechat.tui.config import TuiConfig, load_config
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.help import HelpScreen
from securechat.tui.screens.main import MainScreen
from securechat.tui.screens.safety import SafetyNumberScreen
from securechat.tui.screens.search import SearchScreen
from securechat.tui.screens.sign_in_again import SignInAgainScreen
from securechat.tui.screens.signin import SignInScreen
from securechat.tui.widgets.chat_line import MessageLine, Notice
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.command_input import CommandInput
from tests.tui.conftest import (
    PASSWORD,
    Harness,
    build,
    feedback,
    main_screen,
    settle,
    sign_in,
    type_line,
    wait_for_screen,
)
from tests.tui.fakes import OFFERED_SAFETY_NUMBER, OPERATOR_TOKEN, SAFETY_NUMBER


def lines(pilot) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(line.content) for line in pilot.app.screen.query(MessageLine)]


def conversation_list(pilot) -> str:  # type: ignore[no-untyped-def]
    options = pilot.app.screen.query_one("#conversations", OptionList).options
    return "\n".join(str(o.prompt) for o in options)


async def secured(pilot, harness: Harness, peer: str = "bob") -> None:  # type: ignore[no-untyped-def]
    """Signs in as alice with an active session to `peer`."""
    await sign_in(pilot)
    await type_line(pilot, f"talk {peer}")
    harness.client.activate(peer)
    await settle(pilot)


async def test_talk_sends_and_shows_the_e2e_badge(harness: Harness) -> None:
    """talk opens the conversation; once active the badge says so and messages go out."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "talk bob")
        assert "not secure yet" in conversation_list(pilot)
        harness.client.activate("bob")
        await settle(pilot)
        assert "🔒 E2E Active" in conversation_list(pilot)
        await type_line(pilot, "hello bob")
        assert harness.client.sent == [("bob", "hello bob")]
        assert any("hello bob" in line and "✓ sent" in line for line in lines(pilot))


async def test_message_without_session_is_refused_and_explained(harness: Harness) -> None:
    """No session: nothing is sent, and the line says to sharekey and talk first."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/open bob")
        await type_line(pilot, "secret plans")
        assert harness.client.sent == []
        assert "sharekey bob" in feedback(pilot) and "talk bob" in feedback(pilot)


async def test_message_with_no_conversation_open_suggests_a_command(harness: Harness) -> None:
    """A typo'd command with nothing open is not sent, and the likely command is named."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "tlak bob")
        assert "did you mean `/talk`" in feedback(pilot)


async def test_unknown_command_and_missing_arguments(harness: Harness) -> None:
    """Parse errors land on the feedback line with the usage."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/frob")
        assert "unknown command" in feedback(pilot)
        await type_line(pilot, "/talk")
        assert "Usage: /talk <user>" in feedback(pilot)


async def test_talk_to_unknown_user(harness: Harness) -> None:
    """The relay's "no such user" reaches the user as a sentence, without its wire code."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "talk nobody")
        assert "nobody has not published keys" in feedback(pilot)
        assert "not_found" not in feedback(pilot)


async def test_debug_adds_the_error_code() -> None:
    """`--debug` keeps the relay's code after the sentence, for bug reports."""
    for debug, shown in [(False, "the username bob is taken"), (True, "… taken (conflict)")]:
        harness = build(debug=debug)
        async with harness.app.run_test(size=(100, 30)) as pilot:
            pilot.app.screen.query_one("#username", Input).value = "bob"
            pilot.app.screen.query_one("#password", Input).value = PASSWORD
            await pilot.click("#register")
            await settle(pilot)
            status = str(pilot.app.screen.query_one("#signin-status", Static).content)
            assert status == shown.replace("…", "the username bob is")


async def test_sharekey_reports_the_fingerprint(harness: Harness) -> None:
    """sharekey says what happened and what to do next."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "sharekey bob")
        assert "your key went to bob" in feedback(pilot)
        assert "(your fingerprint A1B2 C3D4 E5F6 A7B8)" in feedback(pilot)
        assert "bob" in conversation_list(pilot)


async def test_help_dialog_opens_and_closes(harness: Harness) -> None:
    """`help` lists every command; Escape goes back to the input."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/help")
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)


async def test_verify_shows_the_safety_number(harness: Harness) -> None:
    """verify opens the dialog with the number; without a key it explains why not."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        await type_line(pilot, "/verify carol")
        assert "no key known for carol" in feedback(pilot)
        await type_line(pilot, "/verify bob")
        screen = pilot.app.screen
        assert isinstance(screen, SafetyNumberScreen)
        assert SAFETY_NUMBER.splitlines()[0] in str(screen.query_one("#safety-number").content)


async def test_key_change_warns_holds_messages_and_trust_clears_it(harness: Harness) -> None:
    """A changed key shows the warning, refuses sends; trusting from verify resets the session."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.change_key("bob")
        await settle(pilot)
        assert "key changed!" in conversation_list(pilot)
        header = str(pilot.app.screen.query_one("#chat-header").content)
        assert "bob's key changed!" in header
        await type_line(pilot, "are you there")
        assert harness.client.sent == [] and "key changed" in feedback(pilot)
        await type_line(pilot, "/verify bob")
        await pilot.click("#accept")
        await settle(pilot)
        assert harness.client.conversation_state("bob") == ConversationState.NONE
        assert "you trust bob's key" in feedback(pilot)


async def test_verify_during_a_key_change_shows_both_numbers_and_both_choices(
    harness: Harness,
) -> None:
    """Pinned and offered numbers, each labelled; "Keep pinned key" rejects the offer."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        await secured(pilot, harness)
        harness.client.change_key("bob")
        await settle(pilot)
        await type_line(pilot, "/verify bob")
        screen = pilot.app.screen
        assert isinstance(screen, SafetyNumberScreen)
        assert SAFETY_NUMBER.splitlines()[0] in str(screen.query_one("#safety-number").content)
        offered = str(screen.query_one("#offered-number").content)
        assert OFFERED_SAFETY_NUMBER.splitlines()[0] in offered
        texts = [str(w.content) for w in screen.query(Static)]
        assert any(t.startswith("Pinned key") for t in texts)
        assert any(t.startswith("New key offered for bob") for t in texts)
        assert str(screen.query_one("#keep", Button).label) == "Keep pinned key"
        assert str(screen.query_one("#accept", Button).label) == "Accept new key"
        await pilot.click("#keep")
        await settle(pilot)
        assert harness.client.conversation_state("bob") == ConversationState.ACTIVE
        assert "you kept bob's key" in feedback(pilot)
        assert any("you kept bob's pinned key" in line for line in lines(pilot))
        await type_line(pilot, "still there?")
        assert harness.client.sent == [("bob", "still there?")]


async def test_reject_typed_keeps_the_pinned_key_and_shows_the_warning(harness: Harness) -> None:
    """`/reject bob` ends the alarm; the warning is in the chat, not under bob's name."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        await type_line(pilot, "/reject bob")
        assert "no new key to reject" in feedback(pilot)
        harness.client.change_key("bob")
        await settle(pilot)
        await type_line(pilot, "/reject bob")
        await settle(pilot)
        assert "key changed!" not in conversation_list(pilot)
        [warning] = [line for line in lines(pilot) if "pinned key" in line]
        assert "you kept bob's pinned key" in warning and "bob:" not in warning


async def test_peer_resharing_the_pinned_key_clears_the_alarm_on_screen(
    harness: Harness,
) -> None:
    """The core's KeyKept from a re-share: a toast, the warning in the chat, no red header."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.change_key("bob")
        await settle(pilot)
        harness.client.reshare_pinned_key("bob")
        await settle(pilot)
        header = str(pilot.app.screen.query_one("#chat-header").content)
        assert "key changed" not in header
        assert any("bob shared the pinned key" in line for line in lines(pilot))


async def test_trust_typed_after_key_change(harness: Harness) -> None:
    """`trust bob` accepts the new key and says how to start again."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.change_key("bob")
        await settle(pilot)
        await type_line(pilot, "/trust bob")
        assert "talk bob" in feedback(pilot)
        assert "not secure yet" in conversation_list(pilot)


async def test_search_lists_results_and_enter_jumps(harness: Harness) -> None:
    """Search finds word prefixes across conversations; Enter opens the chat at that message."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.add_history("carol", [f"filler {i}" for i in range(120)])
        harness.client.add_history("carol", ["the pineapple42 plan"])
        harness.client.add_history("bob", [f"chat {i}" for i in range(10)])
        await type_line(pilot, "/open bob")
        await type_line(pilot, "/search pineapple")
        screen = pilot.app.screen
        assert isinstance(screen, SearchScreen)
        results = screen.query_one("#search-results", OptionList)
        assert results.option_count == 1 and "pineapple" in str(results.options[0].prompt)
        await pilot.press("enter")
        await settle(pilot)
        chat = pilot.app.screen.query_one(ChatLog)
        assert chat.peer == "carol"
        marked = [line for line in chat.query(MessageLine) if line.has_class("-highlight")]
        assert len(marked) == 1 and "pineapple" in str(marked[0].content)


async def test_search_hit_deep_in_history_shows_what_followed(harness: Harness) -> None:
    """A hit followed by many messages shows a page each side and says how to get back."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.add_history("bob", [f"before {i}" for i in range(60)])
        harness.client.add_history("bob", ["the pineapple plan"])
        harness.client.add_history("bob", [f"after {i}" for i in range(60)])
        await type_line(pilot, "/search pineapple")
        await pilot.press("enter")
        await settle(pilot)
        shown = lines(pilot)
        assert len(shown) == 100 and "pineapple" in shown[49] and "after 49" in shown[-1]
        assert "`/open bob` shows the latest messages" in feedback(pilot)
        harness.client.receive("bob", "a new one")
        await settle(pilot)
        assert "a new one" not in lines(pilot)[-1], "no gap hidden in the view"
        assert "1 new message ↓" in str(pilot.app.screen.query_one(ChatLog).border_subtitle)


async def test_search_without_results(harness: Harness) -> None:
    """An empty result says so instead of showing an empty box."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/search nothinghere")
        assert isinstance(pilot.app.screen, SearchScreen)
        assert "0 results" in str(pilot.app.screen.query_one(".dialog-title").content)


async def test_history_loads_lazily_from_the_last_page(harness: Harness) -> None:
    """A long conversation opens with one page; Ctrl+O loads the page before it."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.add_history("bob", [f"message {i}" for i in range(500)])
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        shown = lines(pilot)
        assert len(shown) == 50 and "message 499" in shown[-1]
        await pilot.press("ctrl+o")
        await settle(pilot)
        shown = lines(pilot)
        assert len(shown) == 100 and "message 400" in shown[0]
        assert chat.has_more


async def test_incoming_message_elsewhere_notifies_with_bell_and_osc(harness: Harness) -> None:
    """A message for a conversation not in view: toast, bell, and OSC 9 naming the sender only."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("carol", "psst \x1b]0;pwned\x07 [bold]hi")
        await settle(pilot)
        assert any("psst" in n.message for n in pilot.app._notifications)
        assert "\x07" in harness.written
        osc = [w for w in harness.written if w.startswith("\x1b]9;")]
        assert osc == ["\x1b]9;securechat: New message from carol\x07"]
        assert "carol (1)" in conversation_list(pilot)


async def test_notification_text_is_opt_in_and_inert() -> None:
    """With notification_text the OSC carries the text, its escapes made visible."""
    harness = build(TuiConfig(desktop_notifications=True, notification_text=True))
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("carol", "psst \x1b]0;pwned\x07 [bold]hi")
        await settle(pilot)
        osc = [w for w in harness.written if w.startswith("\x1b]9;")]
        assert len(osc) == 1 and "pwned" in osc[0] and "carol" in osc[0]
        assert osc[0].count("\x1b") == 1 and osc[0].count("\x07") == 1


async def test_inside_tmux_notify_send_is_used_or_the_osc_is_wrapped() -> None:
    """tmux hides the terminal: notify-send where installed, else OSC in tmux passthrough."""
    tmux = {"TMUX": "/tmp/tmux-1000/default,1,0", "TERM_PROGRAM": "tmux"}
    for notify_send in (True, False):
        harness = build(env=tmux, notify_send=notify_send)
        async with harness.app.run_test(size=(100, 30)) as pilot:
            await secured(pilot, harness)
            harness.client.receive("carol", "-rf <b>x</b>")
            await settle(pilot)
        if notify_send:
            assert harness.spawned == [
                [
                    "notify-send",
                    "--app-name=securechat",
                    "--",
                    "securechat",
                    "New message from carol",
                ]
            ]
            assert not any("\x1b]" in w for w in harness.written)
        else:
            assert harness.spawned == []
            wrapped = [w for w in harness.written if w.startswith("\x1bPtmux;")]
            assert wrapped == [
                "\x1bPtmux;\x1b\x1b]777;notify;securechat;New message from carol\x07\x1b\\"
            ]


async def test_notifications_follow_the_config(harness: Harness) -> None:
    """With bell and desktop notifications off, only the toast remains."""
    from securechat.tui.config import TuiConfig

    quiet = build(TuiConfig(bell=False, desktop_notifications=False))
    async with quiet.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        quiet.client.receive("carol", "hello")
        await settle(pilot)
        assert quiet.written == []
        assert any("hello" in n.message for n in pilot.app._notifications)


async def test_incoming_message_in_view_is_appended_and_read(harness: Harness) -> None:
    """The open conversation grows in place and its unread count stays zero."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("bob", "hi alice")
        await settle(pilot)
        assert "hi alice" in lines(pilot)[-1]
        assert harness.client.unread["bob"] == 0
        assert harness.written == []


async def test_delete_conversation_after_confirmation(harness: Harness) -> None:
    """delete asks first; Cancel keeps everything, confirming deletes it."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        await type_line(pilot, "/delete bob")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("enter")  # Cancel has the focus
        await settle(pilot)
        assert harness.client.deleted == []
        await type_line(pilot, "/delete bob")
        await pilot.click("#confirm")
        await settle(pilot)
        assert harness.client.deleted == ["bob"]
        assert pilot.app.screen.query_one(ChatLog).peer is None


async def test_delete_account_needs_the_password(harness: Harness) -> None:
    """A wrong password keeps the account; the right one signs out to the sign-in screen."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/delete-account")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        pilot.app.screen.query_one("#confirm-password", Input).value = "wrong password"
        await pilot.click("#confirm")
        await settle(pilot)
        assert "not deleted" in feedback(pilot) and not harness.client.account_deleted
        await type_line(pilot, "/delete-account")
        pilot.app.screen.query_one("#confirm-password", Input).value = PASSWORD
        await pilot.click("#confirm")
        await settle(pilot)
        assert harness.client.account_deleted
        assert isinstance(pilot.app.screen, SignInScreen)


async def test_reset_typed_in_main_is_masked_and_not_in_history(harness: Harness) -> None:
    """The password of a typed reset shows as bullets and cannot be recalled with Up."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/open bob")
        line = pilot.app.screen.query_one(CommandInput)
        line.focus()
        await pilot.press(*"/reset alice TOKEN hunter2")
        rendered = "".join(s.text for s in line.render_line(0))
        assert "hunter2" not in rendered and "/reset alice TOKEN •••••••" in rendered
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("up")
        assert line.value == "/open bob"


async def test_history_and_tab_completion_on_the_input(harness: Harness) -> None:
    """Up recalls earlier lines; Tab completes commands and then usernames."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "sharekey bob")
        line = pilot.app.screen.query_one(CommandInput)
        await pilot.press("up")
        assert line.value == "sharekey bob"
        line.value = ""
        await pilot.press(*"ta", "tab")
        assert line.value == "/talk "
        await pilot.press("b", "tab")
        assert line.value == "/talk bob"


async def test_status_bar_shows_reconnecting(harness: Harness) -> None:
    """Connection changes from the core show in the status bar."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.events.put_nowait(ConnectionChanged(ConnectionState.RECONNECTING, "lost"))
        await settle(pilot)
        text = str(pilot.app.screen.query_one("#status").render())
        assert "reconnecting" in text and "relay.test" in text


async def test_palette_runs_the_same_commands(harness: Harness) -> None:
    """The command palette offers the conversation actions and runs them."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "sharekey bob")
        screen = main_screen(pilot)
        titles = [title for title, _, _ in screen.palette_entries()]
        assert "Verify bob" in titles and "Search history…" in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"verify bob")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, SafetyNumberScreen)


async def test_quit_command_exits(harness: Harness) -> None:
    """`quit` leaves the app and closes the client."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/quit")
    assert harness.client.closed


async def test_message_already_in_the_loaded_page_is_not_shown_twice(harness: Harness) -> None:
    """An event queued before the screen opened repeats a stored message; it appears once."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.add_history("bob", ["only once"])
        await type_line(pilot, "/open bob")
        stored = harness.client.messages[-1]
        harness.client.events.put_nowait(
            MessageReceived(
                ConversationId.direct("bob"), "bob", "only once", stored.record.ts, stored.id
            )
        )
        await settle(pilot)
        assert [line for line in lines(pilot) if "only once" in line] == ["22:14 bob: only once"]


async def test_stuck_session_is_shown_and_ctrl_t_starts_a_new_one(harness: Harness) -> None:
    """A jammed session says so in the list, header and chat; one key press runs `talk`."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.jam("bob")
        await settle(pilot)
        assert "session stuck" in conversation_list(pilot)
        assert "ctrl+t" in str(pilot.app.screen.query_one("#chat-header").content)
        notices = [str(n.content) for n in pilot.app.screen.query(Notice)]
        assert any("session with bob is stuck" in n and "ctrl+t" in n for n in notices)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert harness.client.conversation_state("bob") == ConversationState.PENDING
        assert "session set-up sent to bob" in feedback(pilot)


async def test_a_message_the_relay_dates_differently_is_flagged(harness: Harness) -> None:
    """The line shows the sender's time, and warns with the relay's when they disagree."""
    async with harness.app.run_test(size=(120, 30)) as pilot:
        await secured(pilot, harness)
        sent = 1_700_000_000.0
        harness.client.receive("bob", "on time")
        message_id = harness.client._store("bob", False, "dated by a liar")
        harness.client._emit(
            MessageReceived(
                ConversationId.direct("bob"),
                "bob",
                "dated by a liar",
                sent,
                message_id,
                sent - 7200,
                True,
            )
        )
        await settle(pilot)
        assert "relay says received" not in lines(pilot)[-2]
        flagged = lines(pilot)[-1]
        assert flagged.startswith("22:13 ") and "relay says received 20:13" in flagged
        tooltip = str(list(pilot.app.screen.query(MessageLine))[-1].tooltip)
        assert "sent 22:13" in tooltip and "received 20:13" in tooltip


async def test_missing_messages_are_shown_in_the_conversation(harness: Harness) -> None:
    """The core's report of a gap becomes a warning line where the gap is."""
    from securechat.tui.widgets.chat_line import Notice

    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client._emit(MessagesMissing("bob", 1))
        await settle(pilot)
        notices = [str(n.content) for n in pilot.app.screen.query(Notice)]
        assert "⚠ 1 message from bob is missing" in notices


async def test_operator_reset_while_signed_in_keeps_history_and_session(harness: Harness) -> None:
    """Signed in, the reset says history is kept, re-wraps at once and stays signed in."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        line = pilot.app.screen.query_one("#input", Input)
        line.value = f"reset alice {OPERATOR_TOKEN} brand new password"
        await pilot.press("enter")
        await wait_for_screen(pilot, ConfirmScreen)
        warning = " ".join(str(s.content) for s in pilot.app.screen.query(Static))
        assert "history on this device is kept" in warning
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
        assert harness.accounts["alice"] == "brand new password"
        assert "alice" not in harness.vaults
        assert len(harness.clients) == 1  # the signed-in client did it


async def test_mark_as_verified_shows_a_tick_that_a_key_change_clears(harness: Harness) -> None:
    """verify offers "Mark as verified"; the ✓ shows in the list until the key changes."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        assert "bob ✓" not in conversation_list(pilot)
        await type_line(pilot, "/verify bob")
        assert isinstance(pilot.app.screen, SafetyNumberScreen)
        await pilot.click("#mark-verified")
        await settle(pilot)
        assert "bob ✓" in conversation_list(pilot)
        assert "marked verified" in feedback(pilot)
        await type_line(pilot, "/verify bob")
        assert "marked bob's key as verified" in str(
            pilot.app.screen.query_one("#verified-note", Static).content
        )
        assert not pilot.app.screen.query("#mark-verified")
        await pilot.press("escape")
        harness.client.change_key("bob")
        await settle(pilot)
        assert "bob ✓" not in conversation_list(pilot)


async def test_an_ended_session_offers_sign_in_in_place_and_keeps_the_draft(
    harness: Harness,
) -> None:
    """Header no longer claims online; the dialog signs in again over the main screen."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client._emit(PresenceChanged("bob", "online"))
        await settle(pilot)
        assert " online" in str(pilot.app.screen.query_one("#chat-header").content)
        line = pilot.app.screen.query_one("#input", Input)
        line.value = "half-typed draft"
        harness.client._emit(
            ConnectionChanged(
                ConnectionState.CLOSED, "session expired; sign in again", session_ended=True
            )
        )
        await wait_for_screen(pilot, SignInAgainScreen)
        header = str(main_screen_below(pilot).query_one("#chat-header").content)
        assert " online" not in header and " offline" in header
        field = pilot.app.screen.query_one("#again-password", Input)
        field.value = "not the password"
        await pilot.press("enter")
        await settle(pilot)
        assert "wrong username or password" in str(
            pilot.app.screen.query_one("#again-error", Static).content
        )
        field.value = PASSWORD
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
        assert harness.client.signed_in_again == 1
        assert pilot.app.screen.query_one("#input", Input).value == "half-typed draft"


def main_screen_below(pilot) -> MainScreen:  # type: ignore[no-untyped-def]
    [screen] = [s for s in pilot.app.screen_stack if isinstance(s, MainScreen)]
    return screen


async def test_a_deleted_contact_is_shown_as_deleted(harness: Harness) -> None:
    """No presence dot or E2E badge for an account that is gone: the list and header say so."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        assert "🔒 E2E Active" in conversation_list(pilot)
        harness.client.peer_deletes_account("bob")
        await settle(pilot)
        listed = conversation_list(pilot)
        assert "account deleted" in listed and "E2E Active" not in listed
        header = str(pilot.app.screen.query_one("#chat-header").content)
        assert "account deleted" in header and "online" not in header


async def test_sentences_starting_with_command_words_are_messages(harness: Harness) -> None:
    """Only `/` lines run commands: "search for it" and "open the door" are sent as written."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        for text in ["search for it", "send my regards", "open the door", "talk to me"]:
            await type_line(pilot, text)
        await type_line(pilot, "//shrug")
        await type_line(pilot, " talk bob")
        assert harness.client.sent == [
            ("bob", "search for it"),
            ("bob", "send my regards"),
            ("bob", "open the door"),
            ("bob", "talk to me"),
            ("bob", "/shrug"),
            ("bob", "talk bob"),
        ]
        assert not isinstance(pilot.app.screen, SearchScreen)


async def test_input_says_before_enter_what_a_bare_command_does(harness: Harness) -> None:
    """A bare `talk bob` is announced as a command; a bare `verify bob` as a message."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        line = pilot.app.screen.query_one(CommandInput)
        line.focus()
        await pilot.press(*"talk bob")
        assert line.border_subtitle == "runs the command; start with a space to send it as text"
        line.value = ""
        await pilot.press("space", *"talk bob")
        assert line.border_subtitle == ""
        line.value = ""
        await pilot.press(*"verify bob")
        assert "start with `/verify` to run the command" in line.border_subtitle
        await pilot.press("enter")
        await settle(pilot)
        assert harness.client.sent[-1] == ("bob", "verify bob")


async def test_help_lists_the_slash_and_the_bare_forms(harness: Harness) -> None:
    """The help page names `/talk <user>` and the bare `talk <user>` that still works."""
    async with harness.app.run_test(size=(100, 60)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/help")
        assert isinstance(pilot.app.screen, HelpScreen)
        console = Console(width=100, record=True, file=io.StringIO())
        for static in pilot.app.screen.query(Static):
            console.print(static.content)
        shown = console.export_text()
        assert "/talk <user>" in shown and "or talk <user>" in shown
        assert "/verify <user>" in shown and "or verify" not in shown


async def test_narrow_terminal_collapses_the_sidebar_and_ctrl_b_toggles_it(
    harness: Harness,
) -> None:
    """At 60x20 the chat gets the whole width; Ctrl+B brings the 32-column list back."""
    async with harness.app.run_test(size=(60, 20)) as pilot:
        await sign_in(pilot)
        listing = pilot.app.screen.query_one("#conversations")
        chat = pilot.app.screen.query_one("#chat-pane")
        assert not listing.display and chat.size.width == 60
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert listing.display and listing.outer_size.width == 32
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert not listing.display
        await pilot.press("f2")
        await pilot.pause()
        assert listing.display and listing.has_focus
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        assert listing.display and chat.size.width == 120 - 32


async def test_settings_changed_in_the_app_are_saved(tmp_path: Path) -> None:
    """The palette's bell switch and a theme change land in config.toml and load back."""
    path = tmp_path / "config.toml"
    path.write_text("# my settings\n[tui]\nbell = true\n")
    harness = build(config=load_config(tmp_path, {}), config_path=path)
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"Bell: turn off")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert harness.app.config.bell is False
        pilot.app.theme = "nord"
        await settle(pilot)
    assert path.read_text().startswith("# my settings\n[tui]\nbell = false\n")
    assert load_config(tmp_path, {}) == TuiConfig(bell=False, theme="nord")


async def test_keymap_from_config_moves_a_binding() -> None:
    """`[keymap] help = "f5"` opens help on F5, and F1 no longer does."""
    harness = build(config=TuiConfig(keymap=(("help", "f5"),)))
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(pilot.app.screen, MainScreen)
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(pilot.app.screen, HelpScreen)


async def test_empty_chat_points_to_the_slash_help(harness: Harness) -> None:
    """Commands start with `/`: a bare `help` would be sent as a message (walkthrough)."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        notices = [str(n.content) for n in pilot.app.screen.query(Notice)]
        assert any("type `/help`" in n for n in notices)


async def test_talk_answered_at_once_does_not_leave_the_set_up_line(harness: Harness) -> None:
    """Both online, the answer can beat the screen: the feedback ends saying it is active."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        client = harness.client
        pending_talk = client.talk

        async def answered_at_once(peer: str) -> ConversationState:
            state = await pending_talk(peer)
            client.activate(peer)
            return state

        client.talk = answered_at_once  # type: ignore[method-assign]
        await type_line(pilot, "/talk bob")
        await settle(pilot)
        assert "set-up sent" not in feedback(pilot)
        assert "session with bob is active" in feedback(pilot)

    harness2 = build()
    async with harness2.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, "/talk bob")
        await settle(pilot)
        assert "set-up sent to bob" in feedback(pilot)
        harness2.client.activate("bob")
        await settle(pilot)
        assert "session with bob is active" in feedback(pilot)
