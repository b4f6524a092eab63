"""What the link check said about one link: rating, reasons, and each provider's answer.

The dialog never talks to the network itself: the main screen hands it a
`lookup` that asks the client (and keeps the answer for the chat's badges).
The private check runs first; the full lookup is a button, because it sends
the link itself to the relay and on to VirusTotal and OTX.
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

from securechat.scanner import Rating
from securechat.tui.links import LinkState, badge, shown_url
from securechat.tui.safe_text import visible

Lookup = Callable[[str, bool], Awaitable[LinkState]]

PRIVATE_NOTE = (
    "Checked privately: only short hash prefixes of the link went to the relay. "
    "A full lookup sends the link itself to the relay, which asks VirusTotal and OTX."
)
FULL_NOTE = "Full lookup: the link went to the relay, which asked VirusTotal and OTX."


class ScanScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, url: str, lookup: Lookup, full: bool = False) -> None:
        super().__init__()
        self.url = url
        self.lookup = lookup
        self.full = full
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
                Text("… asking VirusTotal and OTX through the relay", style="dim italic")
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
            Text(FULL_NOTE if state.full else PRIVATE_NOTE, style="dim")
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
