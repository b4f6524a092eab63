"""Link safety in the chat: the verdict behind each link's badge, and how a link is drawn.

The offline heuristics run the moment a link is first drawn (pure, no
network), so a `user@host` disguise is flagged before the relay answers. The
screen then asks the client in a worker and `settle`s the answer here; the
book keeps it for the session, so a link seen twice is checked once. The
answer can only make a link look worse than the heuristics said, never
better, and a failed check reads as unknown, never safe.

A link rated malicious is drawn defanged (`hxxp://evil[.]example`), so a
terminal that turns URLs into clickable links cannot open it by accident.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from rich.text import Text

from securechat.scanner import Rating, Verdict, check, combine, extract_urls
from securechat.scanner.brands import DEFAULT_BRANDS, Brand
from securechat.tui.safe_text import safe, visible

SEVERITY = {Rating.SAFE: 0, Rating.UNKNOWN: 1, Rating.SUSPICIOUS: 2, Rating.MALICIOUS: 3}

BADGES: dict[Rating, tuple[str, str]] = {
    Rating.SAFE: ("[✓ safe]", "green"),
    Rating.UNKNOWN: ("[? unknown]", "dim"),
    Rating.SUSPICIOUS: ("[⚠ suspicious]", "bold yellow"),
    Rating.MALICIOUS: (" ⚠ MALICIOUS ", "bold white on red"),
}
CHECKING = ("[… checking]", "dim italic")
URL_STYLES = {
    Rating.SAFE: "underline",
    Rating.UNKNOWN: "underline",
    Rating.SUSPICIOUS: "underline yellow",
    Rating.MALICIOUS: "bold red",
}

_SCHEME = re.compile(r"^http(s?)://", re.IGNORECASE)
_AUTHORITY = re.compile(r"^([a-z][a-z0-9+.-]*://)?([^/?#]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LinkState:
    verdict: Verdict
    final: bool = False
    """False until the relay (or the full lookup) answered or failed."""
    full: bool = False
    """The verdict includes a full lookup (VirusTotal, OTX through the relay)."""
    failed: bool = False
    """The network check failed; the scan dialog tries again."""

    @property
    def rating(self) -> Rating:
        return self.verdict.rating


def offline_verdict(url: str, brands: Sequence[Brand] = DEFAULT_BRANDS) -> Verdict:
    """What the heuristics alone say: suspicious when one fires, otherwise unknown."""
    return combine(url, (), check(url, brands))


def merge(offline: Verdict, answer: Verdict) -> Verdict:
    """The answer, but never rated better than what the heuristics found, with their reasons."""
    if not offline.findings:
        return answer
    rating = max(offline.rating, answer.rating, key=SEVERITY.__getitem__)
    reasons = list(answer.reasons)
    reasons += [r for r in offline.reasons if r not in reasons]
    findings = answer.findings + tuple(f for f in offline.findings if f not in answer.findings)
    return msgspec.structs.replace(answer, rating=rating, reasons=tuple(reasons), findings=findings)


class LinkBook:
    """Every link's state for this session; written only by the screen's workers.

    `brands` are the ones the heuristics protect: the defaults plus the user's.
    """

    def __init__(self, brands: Sequence[Brand] = DEFAULT_BRANDS) -> None:
        self.brands = tuple(brands)
        self._states: dict[str, LinkState] = {}
        self._checking: set[str] = set()

    def state(self, url: str) -> LinkState:
        if url not in self._states:
            self._states[url] = LinkState(offline_verdict(url, self.brands))
        return self._states[url]

    def needs_check(self, url: str) -> bool:
        return not self.state(url).final and url not in self._checking

    def checking(self, url: str) -> None:
        self._checking.add(url)

    def settle(self, url: str, answer: Verdict, full: bool) -> LinkState:
        state = LinkState(merge(offline_verdict(url, self.brands), answer), final=True, full=full)
        self._store(url, state)
        return state

    def fail(self, url: str, reason: str) -> LinkState:
        """A check that broke: unknown (or what the heuristics found), never safe.

        When an earlier check did answer (a failed full lookup after the private
        one), its verdict stays, with the failure named first among the reasons.
        """
        previous = self._states.get(url)
        if previous is not None and previous.final and not previous.failed:
            reasons = (f"the full lookup failed ({reason})", *previous.verdict.reasons)
            verdict = msgspec.structs.replace(previous.verdict, reasons=reasons)
            state = LinkState(verdict, final=True, full=previous.full)
        else:
            offline = offline_verdict(url, self.brands)
            reasons = (f"the link check failed ({reason}), so nothing vouches for it",)
            verdict = msgspec.structs.replace(offline, reasons=reasons + offline.reasons)
            state = LinkState(verdict, final=True, failed=True)
        self._store(url, state)
        return state

    def _store(self, url: str, state: LinkState) -> None:
        self._states[url] = state
        self._checking.discard(url)


def badge(state: LinkState) -> Text:
    if not state.final and state.rating == Rating.UNKNOWN:
        label, style = CHECKING
    else:
        label, style = BADGES[state.rating]
    return Text(label, style=style)


def defang(url: str) -> str:
    """`hxxp://evil[.]example/x`: readable, but no terminal or chat client links it."""
    url = _SCHEME.sub(lambda m: f"hxxp{m.group(1).lower()}://", url)
    match = _AUTHORITY.match(url)
    if match is None:
        return url
    start, end = match.span(2)
    return url[:start] + url[start:end].replace(".", "[.]") + url[end:]


def shown_url(url: str, rating: Rating) -> str:
    """The link as the chat and the dialog draw it: escaped, and defanged when malicious."""
    return visible(defang(url) if rating == Rating.MALICIOUS else url, keep_newlines=False)


def linkify(text: str, book: LinkBook | None) -> Text:
    """Peer text with each link styled by its rating and its badge right after it."""
    urls = extract_urls(text) if book is not None else []
    if book is None or not urls:
        return safe(text)
    out = Text()
    position = 0
    for url in urls:
        at = text.find(url, position)
        if at < 0:
            continue
        out.append_text(safe(text[position:at]))
        state = book.state(url)
        out.append(shown_url(url, state.rating), style=URL_STYLES[state.rating])
        out.append(" ")
        out.append_text(badge(state))
        position = at + len(url)
    out.append_text(safe(text[position:]))
    return out
