"""The hash-prefix privacy mode, after Safe Browsing. Pure functions and one index.

Client: `prefixes_for(url)` -> the 4-byte SHA-256 prefixes of the URL's
expressions; only these go to the relay.
Relay: `PrefixIndex.full_hashes_for(prefixes)` -> every full hash it holds that
starts with one of them, with a rating and source.
Client: `decide_from_hashes(url, answers)` compares full hashes locally. The relay
learns a handful of 4-byte values, each shared by many unrelated URLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from securechat.scanner.canonical import (
    PREFIX_LENGTH,
    expressions,
    full_hash,
    hash_prefix,
    parse_canonical,
)
from securechat.scanner.errors import InvalidURL
from securechat.scanner.heuristics import check
from securechat.scanner.verdict import (
    ProviderReport,
    ProviderStatus,
    Rating,
    Verdict,
    combine,
)

__all__ = ["HashMatch", "PrefixIndex", "decide_from_hashes", "full_hashes_of", "prefixes_for"]

_SEVERITY = {Rating.MALICIOUS: 2, Rating.SUSPICIOUS: 1}


class HashMatch(NamedTuple):
    """One relay answer: a full hash, what is known about it, and who said so."""

    full_hash: bytes
    verdict: Rating
    source: str


def full_hashes_of(url: str | bytes) -> list[bytes]:
    """SHA-256 of each expression of the canonical URL (raises InvalidURL)."""
    return [full_hash(e) for e in expressions(parse_canonical(url))]


def prefixes_for(url: str | bytes) -> list[bytes]:
    """The distinct 4-byte prefixes a client sends instead of the URL (raises InvalidURL)."""
    return list(dict.fromkeys(hash_prefix(h) for h in full_hashes_of(url)))


class PrefixIndex:
    """Full hashes of bad URLs, looked up by prefix; the worst rating per hash wins."""

    def __init__(self, matches: Iterable[HashMatch] = ()) -> None:
        self._by_prefix: dict[bytes, dict[bytes, HashMatch]] = {}
        for match in matches:
            self.add(match.full_hash, match.verdict, match.source)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._by_prefix.values())

    def add(self, digest: bytes, verdict: Rating, source: str) -> None:
        """Index one full hash; only malicious and suspicious ratings belong here."""
        if verdict not in _SEVERITY:
            raise ValueError(f"only bad ratings are indexed, not {verdict}")
        bucket = self._by_prefix.setdefault(hash_prefix(digest), {})
        known = bucket.get(digest)
        if known is None or _SEVERITY[verdict] > _SEVERITY[known.verdict]:
            bucket[digest] = HashMatch(digest, verdict, source)

    def add_expression(self, expression: str, verdict: Rating, source: str) -> None:
        """Index one Safe Browsing expression such as `evil.example/` or `a.b/c.html`."""
        self.add(full_hash(expression), verdict, source)

    def full_hashes_for(self, prefixes: Iterable[bytes]) -> list[HashMatch]:
        """Every indexed full hash starting with one of `prefixes` (others are ignored)."""
        found: list[HashMatch] = []
        for prefix in dict.fromkeys(prefixes):
            if len(prefix) == PREFIX_LENGTH:
                found.extend(self._by_prefix.get(prefix, {}).values())
        return found


def decide_from_hashes(
    url: str, answers: Iterable[HashMatch | tuple[bytes, Rating | str, str]]
) -> Verdict:
    """The client's verdict from the relay's answers plus its own offline heuristics."""
    findings = check(url)
    try:
        canon = parse_canonical(url)
    except InvalidURL:
        return combine(url.strip()[:200], (), findings)
    mine = {full_hash(e) for e in expressions(canon)}
    matched = [
        HashMatch(bytes(digest), Rating(verdict), source)
        for digest, verdict, source in answers
        if bytes(digest) in mine and Rating(verdict) in _SEVERITY
    ]
    if matched:
        worst = max(matched, key=lambda m: _SEVERITY[m.verdict])
        sources = ", ".join(sorted({m.source for m in matched}))
        report = ProviderReport(
            "relay", ProviderStatus.OK, rating=worst.verdict, detail=f"listed by {sources}"
        )
    else:
        report = ProviderReport(
            "relay", ProviderStatus.NOT_FOUND, detail="on no list the relay holds"
        )
    return combine(str(canon), (report,), findings)
