"""Local blocklist files, reloaded when they change.

Formats read, one entry a line, `#` starting a comment:
- a URL (URLhaus, OpenPhish): `http://evil.example/login.php` blocks that URL and
  everything below that path;
- a bare domain: `evil.example` blocks the host and its subdomains;
- a hosts-file line (URLhaus hostfile): `0.0.0.0 evil.example`, read as a domain.

Entries are kept as Safe Browsing expressions and their SHA-256, so a lookup is
the same set-membership test as the prefix privacy mode. Files are re-read when
their mtime, size or inode changes, checked at most every `check_interval` seconds.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from securechat.scanner.canonical import CanonicalURL, expressions, full_hash, parse_canonical
from securechat.scanner.errors import InvalidURL
from securechat.scanner.ratelimit import Clock
from securechat.scanner.verdict import ProviderReport, ProviderStatus, Rating

__all__ = ["Blocklist", "BlocklistHit", "parse_blocklist"]

log = logging.getLogger(__name__)

_INLINE_COMMENT = re.compile(r"\s+#")
_SINKHOLES = {"0.0.0.0", "127.0.0.1", "::", "::1"}  # noqa: S104 - hosts-file sinkholes


def _entry_expression(line: str) -> str:
    fields = line.split()
    if len(fields) == 2 and fields[0] in _SINKHOLES:
        line = fields[1]
    elif len(fields) != 1:
        raise InvalidURL("a blocklist line holds one URL or domain")
    canon = parse_canonical(line)
    if "://" not in line and "/" not in line:
        return canon.host + "/"
    return expressions(canon)[0]


def parse_blocklist(text: str) -> tuple[list[str], int]:
    """Expressions for each usable line, and how many lines could not be read."""
    found: list[str] = []
    bad = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = _INLINE_COMMENT.split(line, maxsplit=1)[0]  # a '#' inside a URL stays
        try:
            found.append(_entry_expression(line))
        except InvalidURL:
            bad += 1
    return found, bad


@dataclass(frozen=True, slots=True)
class BlocklistHit:
    """A blocklist entry that matched: the expression and the file it came from."""

    expression: str
    source: str


class Blocklist:
    """The union of some blocklist files, kept fresh by cheap mtime checks."""

    name = "blocklist"

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        check_interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.check_interval = check_interval
        self._clock = clock
        self._signatures: dict[Path, tuple[int, int, int] | None] = {}
        self._per_file: dict[Path, dict[bytes, BlocklistHit]] = {}
        self._hashes: dict[bytes, BlocklistHit] = {}
        self._checked_at = float("-inf")
        self.version = 0
        self.refresh(force=True)

    def __len__(self) -> int:
        self.refresh()
        return len(self._hashes)

    def _signature(self, path: Path) -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self, path: Path) -> dict[bytes, BlocklistHit]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.warning("blocklist %s cannot be read: %s", path, exc.strerror)
            return {}
        found, bad = parse_blocklist(text)
        if bad:
            log.warning("blocklist %s: skipped %d unreadable line(s)", path, bad)
        return {full_hash(e): BlocklistHit(e, path.name) for e in found}

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read files that changed; True if anything was reloaded."""
        now = self._clock()
        if not force and now - self._checked_at < self.check_interval:
            return False
        self._checked_at = now
        changed = False
        for path in self.paths:
            signature = self._signature(path)
            if force or signature != self._signatures.get(path):
                self._signatures[path] = signature
                self._per_file[path] = self._load(path) if signature else {}
                changed = True
        if changed:
            merged: dict[bytes, BlocklistHit] = {}
            for path in self.paths:
                merged.update(self._per_file.get(path, {}))
            self._hashes = merged
            self.version += 1
        return changed

    def entries(self) -> Iterator[tuple[bytes, BlocklistHit]]:
        """Every (full hash, hit) pair, for building a PrefixIndex."""
        self.refresh()
        return iter(list(self._hashes.items()))

    def lookup(self, url: str | CanonicalURL) -> BlocklistHit | None:
        """The first entry that matches any of the URL's expressions."""
        self.refresh()
        canon = url if isinstance(url, CanonicalURL) else parse_canonical(url)
        for expression in expressions(canon):
            hit = self._hashes.get(full_hash(expression))
            if hit is not None:
                return hit
        return None

    def report(self, url: str | CanonicalURL) -> ProviderReport:
        """The lookup as a source report: listed means malicious."""
        if not self.paths:
            return ProviderReport(self.name, ProviderStatus.DISABLED, detail="no files configured")
        hit = self.lookup(url)
        if hit is None:
            return ProviderReport(self.name, ProviderStatus.NOT_FOUND, detail="not listed")
        return ProviderReport(
            self.name,
            ProviderStatus.OK,
            rating=Rating.MALICIOUS,
            detail=f"{hit.expression} is listed in {hit.source}",
        )
