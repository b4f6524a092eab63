"""Link safety in the chat: badges from the heuristics and the relay, and the scan dialog."""

from __future__ import annotations

import asyncio

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static

from securechat.errors import ConnectionLost
from securechat.scanner import Rating, Verdict
from securechat.tui.config import TuiConfig
from securechat.tui.links import LinkBook, defang, linkify
from securechat.tui.screens.main import MainScreen
from securechat.tui.screens.scan import ScanScreen
from securechat.tui.widgets.chat_line import MessageLine
from tests.tui.conftest import Harness, build, settle, type_line, until
from tests.tui.test_main import secured

PHISH = "http://paypal.com@evil.example/login"
PLAIN = "https://example.org/page"


def last_line(pilot: Pilot[None]) -> MessageLine:
    return list(pilot.app.screen.query(MessageLine))[-1]


def last_text(pilot: Pilot[None]) -> str:
    shown = list(pilot.app.screen.query(MessageLine))
    return str(shown[-1].content) if shown else ""


def dialog_text(pilot: Pilot[None]) -> str:
    return "\n".join(str(s.content) for s in pilot.app.screen.query(Static))


def test_defang_and_linkify_keep_peer_text_inert() -> None:
    """A malicious link is drawn defanged and red; markup in the text stays text."""
    assert defang("http://paypal.com@evil.example/a.b") == "hxxp://paypal[.]com@evil[.]example/a.b"
    assert defang("HTTPS://x.example") == "hxxps://x[.]example"
    book = LinkBook()
    book.settle(PHISH, Verdict(PHISH, Rating.MALICIOUS), full=False)
    text = linkify(f"[bold]see[/bold] {PHISH} now", book)
    assert text.plain == (
        "[bold]see[/bold] hxxp://paypal[.]com@evil[.]example/login  ⚠ MALICIOUS  now"
    )
    assert any("red" in str(span.style) for span in text.spans)


async def test_malicious_link_is_flagged_before_anyone_opens_it(harness: Harness) -> None:
    """The heuristics flag the disguise at once; the relay's answer turns it red."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.ratings[PHISH] = Rating.MALICIOUS
        harness.client.scan_gate = asyncio.Event()
        harness.client.receive("bob", f"urgent: log in at {PHISH} today")
        await until(pilot, lambda: "[⚠ suspicious]" in last_text(pilot), "the heuristics")
        assert PHISH in str(last_line(pilot).content)
        harness.client.scan_gate.set()
        await settle(pilot)
        shown = str(last_line(pilot).content)
        assert "hxxp://paypal[.]com@evil[.]example/login  ⚠ MALICIOUS " in shown
        assert PHISH not in shown, "a terminal must not be able to link it"
        assert harness.client.scans == [(PHISH, False)]


async def test_unknown_link_reads_unknown_and_is_checked_once(harness: Harness) -> None:
    """A link on no list and with no trick is unknown, not safe; seen again, it is not re-asked."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("bob", f"the notes are at {PLAIN}.")
        harness.client.receive("bob", f"again {PLAIN}")
        await settle(pilot)
        assert str(list(pilot.app.screen.query(MessageLine))[-2].content).endswith(
            f"{PLAIN} [? unknown]."
        )
        await type_line(pilot, "/open carol")
        await type_line(pilot, "/open bob")
        assert harness.client.scans == [(PLAIN, False)]


async def test_failed_check_reads_unknown_never_safe(harness: Harness) -> None:
    """A relay error leaves the link unknown, and the heuristics' warning stands."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.ratings[PLAIN] = Rating.SAFE
        harness.client.scan_error = ConnectionLost("the relay went away")
        harness.client.receive("bob", f"{PLAIN} and {PHISH}")
        await settle(pilot)
        shown = str(last_line(pilot).content)
        assert f"{PLAIN} [? unknown]" in shown and f"{PHISH} [⚠ suspicious]" in shown
        assert "safe" not in shown


async def test_slow_check_does_not_hold_up_typing_or_messages(harness: Harness) -> None:
    """While the relay sits on a link check, messages still arrive and go out."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.scan_gate = asyncio.Event()
        harness.client.receive("bob", f"look: {PLAIN}")
        harness.client.receive("bob", "and a plain line")
        await until(pilot, lambda: "and a plain line" in last_text(pilot), "the second line")
        line = pilot.app.screen.query_one("#input")
        line.focus()
        await pilot.press(*"on it", "enter")
        await until(pilot, lambda: harness.client.sent == [("bob", "on it")], "the send")
        assert "[… checking]" in str(list(pilot.app.screen.query(MessageLine))[-3].content)
        harness.client.scan_gate.set()
        await settle(pilot)


async def test_scan_dialog_shows_the_private_result(harness: Harness) -> None:
    """`scan <url>` shows rating, reasons, the relay's answer and the privacy note."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.ratings[PHISH] = Rating.MALICIOUS
        await type_line(pilot, f"/scan {PHISH}")
        assert isinstance(pilot.app.screen, ScanScreen)
        text = dialog_text(pilot)
        assert "MALICIOUS" in text and "hxxp://paypal[.]com@evil[.]example/login" in text
        assert "relay: malicious (listed by urlhaus)" in text
        assert "relay  ok, malicious: listed by urlhaus" in text
        assert "the link really goes to evil.example" in text
        assert "only short hash prefixes of the link went to the relay" in text
        assert harness.client.scans == [(PHISH, False)]
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_scan_dialog_full_lookup_button(harness: Harness) -> None:
    """The button (or --full) asks for the full lookup; providers show, the chat badge updates."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("bob", PLAIN)
        await settle(pilot)
        await type_line(pilot, f"/scan {PLAIN}")
        await pilot.click("#full")
        await settle(pilot)
        text = dialog_text(pilot)
        assert harness.client.scans == [(PLAIN, False), (PLAIN, True)]
        assert "virustotal" in text and "0 of 90 engines flag it" in text and "otx" in text
        assert "Full lookup: the link went to the relay" in text
        assert pilot.app.screen.query_one("#full", Button).disabled
        await pilot.press("escape")
        await settle(pilot)
        assert f"{PLAIN} [✓ safe]" in str(last_line(pilot).content)
        await type_line(pilot, f"/scan --full {PHISH}")
        assert harness.client.scans[-1] == (PHISH, True)
        assert "the relay, which asked VirusTotal and OTX." in dialog_text(pilot)


async def test_clicking_a_link_opens_its_check(harness: Harness) -> None:
    """A click on a message with a link shows what the check said."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("bob", PLAIN)
        await settle(pilot)
        await pilot.click(last_line(pilot))
        await settle(pilot)
        assert isinstance(pilot.app.screen, ScanScreen) and pilot.app.screen.url == PLAIN


async def test_full_link_checks_setting_sends_links_for_the_full_lookup() -> None:
    """With `full_link_checks` on, the automatic check is the full one."""
    harness = build(TuiConfig(full_link_checks=True))
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("bob", PLAIN)
        await settle(pilot)
        assert harness.client.scans == [(PLAIN, True)]
        assert f"{PLAIN} [✓ safe]" in str(last_line(pilot).content)


async def test_failed_full_lookup_keeps_the_private_answer_and_says_so(harness: Harness) -> None:
    """A full lookup that breaks names the failure; the earlier rating stays."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.ratings[PHISH] = Rating.MALICIOUS
        await type_line(pilot, f"/scan {PHISH}")
        harness.client.scan_error = ConnectionLost("the relay went away")
        await pilot.click("#full")
        await settle(pilot)
        text = dialog_text(pilot)
        assert "the full lookup failed (the relay went away)" in text and "MALICIOUS" in text
        assert not pilot.app.screen.query_one("#full", Button).disabled


async def test_full_lookup_says_what_a_relay_without_keys_asked(harness: Harness) -> None:
    """With VirusTotal and OTX both off, the dialog must not claim the relay asked them."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.online_scanners = ()
        await type_line(pilot, f"/scan --full {PLAIN}")
        await settle(pilot)
        text = " ".join(dialog_text(pilot).split())
        assert "which asked VirusTotal" not in text and "asks VirusTotal" not in text
        assert (
            "the relay, which asked no online scanner (VirusTotal and OTX are not set up "
            "there): only its blocklists and the offline checks looked at it." in text
        )
        assert "virustotal disabled: no API key" in text and "[? unknown]" in text


@pytest.mark.parametrize(
    ("scanners", "said", "unsaid"),
    [
        (("virustotal", "otx"), "to the relay, which asks VirusTotal and OTX.", []),
        (("otx",), "to the relay, which asks OTX.", ["VirusTotal"]),
        (
            (),
            "The relay has no online scanner keys: a full lookup sends it the link itself, "
            "and only its offline rules and any blocklists it holds check it.",
            ["VirusTotal", "OTX"],
        ),
    ],
)
async def test_scan_dialog_names_the_scanners_the_relay_has_keys_for(
    harness: Harness, scanners: tuple[str, ...], said: str, unsaid: list[str]
) -> None:
    """Before a full lookup the note names what the relay said it would ask, and no other."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.online_scanners = scanners
        await type_line(pilot, f"/scan {PLAIN}")
        await settle(pilot)
        note = " ".join(str(pilot.app.screen.query_one("#scan-note", Static).content).split())
        assert said in note
        assert not [name for name in unsaid if name in note]


async def test_full_lookup_with_one_key_says_which_was_asked(harness: Harness) -> None:
    """The verdict's note comes from the reports: OTX asked, VirusTotal not set up."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.online_scanners = ("otx",)
        await type_line(pilot, f"/scan --full {PLAIN}")
        await settle(pilot)
        note = " ".join(str(pilot.app.screen.query_one("#scan-note", Static).content).split())
        assert note == (
            "Full lookup: the link went to the relay, which asked OTX. "
            "VirusTotal is not set up on the relay."
        )


async def test_brand_in_front_of_another_site_warns_in_the_chat() -> None:
    """The issue's link gets a warning badge with its reason; python.org stays unknown;
    a brand from config.toml's `brands` is protected too."""
    harness = build(TuiConfig(brands=("mybank.co.uk",)))
    issue = "http://paypal.com.account-verify.example-login.xyz/signin"
    mine = "mybank.co.uk.secure-login.net/verify"
    async with harness.app.run_test(size=(120, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive("bob", f"{issue} vs https://www.python.org/ and {mine}")
        await settle(pilot)
        shown = str(last_line(pilot).content)
        assert f"{issue} [⚠ suspicious]" in shown
        assert "https://www.python.org/ [? unknown]" in shown
        assert f"{mine} [⚠ suspicious]" in shown
        await type_line(pilot, f"/scan {issue}")
        text = " ".join(dialog_text(pilot).split())
        assert "the name starts with paypal.com, but the site is example-login.xyz" in text
