"""What the link check said about one link: rating, reasons, and each provider's answer.

The dialog never talks to the network itself: the main screen hands it a
`lookup` that asks the client (and keeps the answer for the chat's badges).
The private check runs first; the full lookup is a button, because it sends
the link itself to the relay and on to the online scanners the relay has keys
for, which it names at sign-in (`session.online_scanners`). Before the lookup
the note names those; after it, the ones the providers' reports say were
asked: a relay with no keys asks nobody, and the dialog must not claim otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from securechat.scanner import ProviderStatus, Rating, Verdict
from securechat.tui.links import LinkState, badge, shown_url
from securechat.tui.safe_text import visible

Lookup = Callable[[str, bool], Awaitable[LinkState]]

#: How the online providers' names read; the relay's blocklist is named apart.
PROVIDER_NAMES = {"virustotal": "VirusTotal", "otx": "OTX"}


def private_note(scanners: tuple[str, ...] | None) -> str:
    """What the private check sent, and what a full lookup would ask, as the relay said."""
    sent = "Checked privately: only short hash prefixes of the link went to the relay. "
    if scanners is None:
        return sent + (
            "A full lookup sends the link itself to the relay, which asks the online "
            "scanners it has keys for, if any."
        )
    if not scanners:
        return sent + (
            "The relay has no online scanner keys: a full lookup sends it the link itself, "
            "and only its offline rules and any blocklists it holds check it."
        )
    return sent + (
        f"A full lookup sends the link itself to the relay, which asks "
        f"{_and([_name(s) for s in scanners])}."
    )


def full_note(verdict: Verdict) -> str:
    """What a full lookup really asked, from the reports the relay sent back."""
    online = [r for r in verdict.providers if r.provider != "blocklist"]
    asked = [_name(r.provider) for r in online if r.status is not ProviderStatus.DISABLED]
    off = [_name(r.provider) for r in online if r.status is ProviderStatus.DISABLED]
    lists = any(
        r.provider == "blocklist" and r.status is not ProviderStatus.DISABLED
        for r in verdict.providers
    )
    if asked:
        note = f"Full lookup: the link went to the relay, which asked {_and(asked)}."
        if off:
            note += f" {_and(off)} {'is' if len(off) == 1 else 'are'} not set up on the relay."
        return note
    checked = "its blocklists and the offline checks" if lists else "the offline checks"
    nobody = f" ({_and(off)} {'is' if len(off) == 1 else 'are'} not set up there)" if off else ""
    return (
        f"Full lookup: the link went to the relay, which asked no online scanner{nobody}: "
        f"only {checked} looked at it."
    )


def _name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class ScanScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(
        self,
        url: str,
        lookup: Lookup,
        full: bool = False,
        scanners: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.lookup = lookup
        self.full = full
        self.scanners = scanners
        """The online scanners the relay said a full lookup asks; None: it did not say."""
        self.state: LinkState | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide", id="scan-dialog"):
            yield Static(Text("Link check", style="bold"), classes="dialog-title")
            yield Static(Text(visible(self.url, keep_newlines=False)), id="scan-url")
            yield Static(Text("… checking", style="dim italic"), id="scan-rating")
            yield Static(id="scan-details")
            yield Static(id="scan-note", classes="scan-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Full lookup (sends the link)", id="full", variant="warning")
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close").focus()
        self._check(self.full)

    @work(exclusive=True, group="scan")
    async def _check(self, full: bool) -> None:
        self.query_one("#full", Button).disabled = True
        if full:
            self.query_one("#scan-rating", Static).update(
                Text("… full lookup through the relay", style="dim italic")
            )
        self.state = await self.lookup(self.url, full)
        self._show(self.state)

    def _show(self, state: LinkState) -> None:
        shown = shown_url(self.url, state.rating)
        self.query_one("#scan-url", Static).update(Text(shown, style="bold"))
        rating = badge(state)
        if state.rating == Rating.MALICIOUS:
            rating.append("  shown defanged so that it cannot be opened by accident", "dim")
        self.query_one("#scan-rating", Static).update(rating)
        self.query_one("#scan-details", Static).update(_details(state))
        self.query_one("#scan-note", Static).update(
            Text(
                full_note(state.verdict) if state.full else private_note(self.scanners),
                style="dim",
            )
        )
        self.query_one("#full", Button).disabled = state.full and not state.failed

    @on(Button.Pressed, "#full")
    def _full(self) -> None:
        self._check(True)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


def _details(state: LinkState) -> Text:
    """Reasons, then a line per provider. Provider text comes from afar: shown as text only."""
    lines = [Text(f"• {visible(reason, keep_newlines=False)}") for reason in state.verdict.reasons]
    reports = state.verdict.providers
    width = max((len(r.provider) for r in reports), default=0)
    if reports:
        lines.append(Text("\nwhat each source said", style="bold"))
    for report in reports:
        line = Text(f"  {visible(report.provider, keep_newlines=False):<{width}}  {report.status}")
        if report.rating:
            line.append(f", {report.rating}", style=_RATING_STYLES[report.rating])
        if report.detail:
            line.append(f": {visible(report.detail, keep_newlines=False)}")
        lines.append(line)
    return Text("\n").join(lines)


_RATING_STYLES = {
    Rating.SAFE: "green",
    Rating.UNKNOWN: "dim",
    Rating.SUSPICIOUS: "yellow",
    Rating.MALICIOUS: "bold red",
}
