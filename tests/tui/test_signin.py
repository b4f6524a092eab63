"""The sign-in screen: sign in, register with the recovery code, reset, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import Button, Checkbox, Input, Static

from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.main import MainScreen
from securechat.tui.screens.recovery import RecoveryCodeScreen
from securechat.tui.screens.reset import ResetPasswordScreen
from securechat.tui.screens.signin import SignInScreen
from tests.tui.conftest import PASSWORD, SERVER, Harness, build, settle, sign_in, wait_for_screen
from tests.tui.fakes import NEW_RECOVERY_CODE, OPERATOR_TOKEN, RECOVERY_CODE


def status(pilot) -> str:  # type: ignore[no-untyped-def]
    return str(pilot.app.screen.query_one("#signin-status", Static).content)


async def test_sign_in_opens_the_main_screen(harness: Harness) -> None:
    """The happy path: right password, main screen with the user in the status bar."""
    async with harness.app.run_test() as pilot:
        await sign_in(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
        assert "alice" in str(pilot.app.screen.query_one("#status").render())


async def test_wrong_password_stays_on_sign_in_with_the_reason(harness: Harness) -> None:
    """A wrong password says so and leaves the form ready for another try."""
    async with harness.app.run_test() as pilot:
        await sign_in(pilot, password="not the password")
        assert isinstance(pilot.app.screen, SignInScreen)
        assert "does not unlock" in status(pilot)
        await sign_in(pilot)
        assert isinstance(pilot.app.screen, MainScreen)


async def test_unreachable_server_is_reported(harness: Harness) -> None:
    """A relay that cannot be reached is an error on the form, not a crash."""
    async with harness.app.run_test() as pilot:
        pilot.app.screen.query_one("#server", Input).value = "ws://unreachable:1"
        await sign_in(pilot)
        assert "cannot reach the relay" in status(pilot)


async def test_form_checks_username_before_connecting(harness: Harness) -> None:
    """An impossible username is caught on the form with the rule spelled out."""
    async with harness.app.run_test() as pilot:
        await sign_in(pilot, user="A!")
        assert "3 to 32" in status(pilot)
        assert harness.clients == []


async def test_register_shows_the_recovery_code_until_confirmed(harness: Harness) -> None:
    """The recovery code is shown once and the user must tick "I have saved it" to go on."""
    async with harness.app.run_test() as pilot:
        pilot.app.screen.query_one("#username", Input).value = "dave"
        pilot.app.screen.query_one("#password", Input).value = PASSWORD
        await pilot.click("#register")
        await wait_for_screen(pilot, RecoveryCodeScreen)
        screen = pilot.app.screen
        assert isinstance(screen, RecoveryCodeScreen)
        assert RECOVERY_CODE in str(screen.query_one("#recovery-code", Static).content)
        assert screen.query_one("#continue", Button).disabled
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, RecoveryCodeScreen)
        screen.query_one("#saved", Checkbox).value = True
        await pilot.pause()
        await pilot.click("#continue")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)


async def test_register_refuses_a_short_password(harness: Harness) -> None:
    """Registration asks for the relay's minimum length before creating any keys."""
    async with harness.app.run_test() as pilot:
        pilot.app.screen.query_one("#username", Input).value = "dave"
        pilot.app.screen.query_one("#password", Input).value = "short"
        await pilot.click("#register")
        await settle(pilot)
        assert "at least 10" in status(pilot)


async def test_reset_form_resets_and_shows_the_new_code(harness: Harness) -> None:
    """The reset form runs the reset and shows the new recovery code once."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        form = pilot.app.screen
        assert isinstance(form, ResetPasswordScreen)
        form.query_one("#reset-user", Input).value = "alice"
        form.query_one("#reset-token", Input).value = RECOVERY_CODE
        form.query_one("#reset-password", Input).value = "a new long password"
        form.query_one("#reset-again", Input).value = "a new long password"
        await pilot.click("#reset-submit")
        await wait_for_screen(pilot, RecoveryCodeScreen)
        assert NEW_RECOVERY_CODE in str(pilot.app.screen.query_one("#recovery-code").content)
        assert harness.accounts["alice"] == "a new long password"


async def test_reset_form_catches_mismatched_passwords(harness: Harness) -> None:
    """Two different new passwords are caught before anything is sent."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        await pilot.click("#reset")
        await pilot.pause()
        form = pilot.app.screen
        form.query_one("#reset-user", Input).value = "alice"
        form.query_one("#reset-token", Input).value = RECOVERY_CODE
        form.query_one("#reset-password", Input).value = "a new long password"
        form.query_one("#reset-again", Input).value = "another one"
        await pilot.click("#reset-submit")
        await pilot.pause()
        assert "differ" in str(form.query_one("#reset-error", Static).content)
        assert harness.accounts["alice"] == PASSWORD


async def test_reset_typed_on_the_sign_in_command_line(harness: Harness) -> None:
    """`reset` works before signing in, where a forgotten password leaves you."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        line = pilot.app.screen.query_one("#signin-command", Input)
        line.focus()
        line.value = f"reset alice {RECOVERY_CODE} brand new password"
        await pilot.press("enter")
        await wait_for_screen(pilot, RecoveryCodeScreen)
        assert harness.accounts["alice"] == "brand new password"


async def test_bad_reset_token_is_reported(harness: Harness) -> None:
    """A wrong recovery code says the password was not reset."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        line = pilot.app.screen.query_one("#signin-command", Input)
        line.focus()
        line.value = "reset alice WRONG-CODE brand new password"
        await pilot.press("enter")
        await settle(pilot)
        messages = [n.message for n in pilot.app._notifications]
        assert any("not reset" in m for m in messages)
        assert harness.accounts["alice"] == PASSWORD


async def test_operator_reset_warns_then_the_previous_password_unlocks_history(
    harness: Harness,
) -> None:
    """Before: what happens to history; at sign-in: the previous password, then the new alone."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        line = pilot.app.screen.query_one("#signin-command", Input)
        line.focus()
        line.value = f"reset alice {OPERATOR_TOKEN} brand new password"
        await pilot.press("enter")
        await wait_for_screen(pilot, ConfirmScreen)
        warning = " ".join(str(s.content) for s in pilot.app.screen.query(Static))
        assert "stays locked under the previous password" in warning
        assert "Nothing is deleted" in warning
        await pilot.click("#confirm")
        await settle(pilot)
        assert harness.accounts["alice"] == "brand new password"

        await sign_in(pilot, "alice", "brand new password")
        assert isinstance(pilot.app.screen, SignInScreen)
        assert "previous password or your recovery code" in status(pilot)
        previous = pilot.app.screen.query_one("#previous", Input)
        assert previous.display and previous.has_focus
        previous.value = PASSWORD
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
        assert "alice" not in harness.vaults  # re-wrapped under the new password


async def test_operator_reset_can_be_cancelled(harness: Harness) -> None:
    """Cancelling the warning sends nothing."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        line = pilot.app.screen.query_one("#signin-command", Input)
        line.focus()
        line.value = f"reset alice {OPERATOR_TOKEN} brand new password"
        await pilot.press("enter")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.click("#cancel")
        await settle(pilot)
        assert harness.accounts["alice"] == PASSWORD


async def test_the_previous_password_field_stays_hidden_for_a_plain_wrong_password(
    harness: Harness,
) -> None:
    """Only a password the relay takes asks for the previous one."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        await sign_in(pilot, "alice", "wrong password here")
        assert "does not unlock this vault" in status(pilot)
        assert not pilot.app.screen.query_one("#previous", Input).display


def rules(pilot) -> str:  # type: ignore[no-untyped-def]
    return str(pilot.app.screen.query_one("#password-rules", Static).content)


async def test_password_rules_are_shown_first_and_checked_as_typed(harness: Harness) -> None:
    """The rules show before typing; each gets a ✓ or ✗ as the password changes."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        shown = rules(pilot)
        assert "at least 10 characters" in shown and "username" in shown
        assert "common password" in shown and "✓" not in shown and "✗" not in shown
        pilot.app.screen.query_one("#username", Input).value = "dave"
        password = pilot.app.screen.query_one("#password", Input)
        password.focus()
        await pilot.press(*"dave")
        await pilot.pause()
        assert "✗ at least 10" in rules(pilot) and "✗ not containing" in rules(pilot)
        await pilot.press(*"-was-here")
        await pilot.pause()
        assert "✓ at least 10" in rules(pilot) and "✗ not containing" in rules(pilot)
        await pilot.click("#register")
        await settle(pilot)
        assert "must not contain the username" in status(pilot)
        assert harness.clients == []
        password.value = "password1234"
        await pilot.pause()
        assert "✗ not a common password" in rules(pilot)
        password.value = PASSWORD
        await pilot.pause()
        assert rules(pilot).count("✓") == 3


async def test_recovery_checkbox_shows_a_tick_and_enter_goes_on(harness: Harness) -> None:
    """The box reads blank, then ✓, without colour; Enter ticks it and Enter continues."""
    async with harness.app.run_test(size=(100, 40)) as pilot:
        pilot.app.screen.query_one("#username", Input).value = "dave"
        pilot.app.screen.query_one("#password", Input).value = PASSWORD
        await pilot.click("#register")
        await wait_for_screen(pilot, RecoveryCodeScreen)
        box = pilot.app.screen.query_one("#saved", Checkbox)
        assert "✓" not in box.render().plain
        await pilot.press("enter")
        assert box.value and "✓" in box.render().plain
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)


async def test_last_username_is_remembered_per_relay(tmp_path: Path) -> None:
    """After signing in, the next start fills in that username for that relay only."""
    state = tmp_path / "tui-state.json"
    first = build(state_path=state)
    async with first.app.run_test(size=(100, 40)) as pilot:
        await sign_in(pilot, user="bob")
        assert isinstance(pilot.app.screen, MainScreen)
    second = build(state_path=state)
    async with second.app.run_test(size=(100, 40)) as pilot:
        username = pilot.app.screen.query_one("#username", Input)
        assert username.value == "bob"
        assert pilot.app.focused is pilot.app.screen.query_one("#password", Input)
        pilot.app.screen.query_one("#server", Input).value = "ws://elsewhere.test:1"
        await pilot.pause()
        assert username.value == ""
        pilot.app.screen.query_one("#server", Input).value = SERVER
        await pilot.pause()
        assert username.value == "bob"
    given = build(state_path=state, user="carol")
    async with given.app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert pilot.app.screen.query_one("#username", Input).value == "carol"


async def test_a_damaged_state_file_is_ignored(tmp_path: Path) -> None:
    """Garbage, or a username that breaks the rules, leaves the form empty and no crash."""
    state = tmp_path / "tui-state.json"
    bad_name = json.dumps({"version": 1, "last_users": {SERVER: "../../x"}})
    for content in ["{not json", "[]", bad_name]:
        state.write_text(content)
        harness = build(state_path=state)
        async with harness.app.run_test(size=(100, 40)) as pilot:
            assert pilot.app.screen.query_one("#username", Input).value == ""
