"""Finding links in a chat message."""

from __future__ import annotations

import re

__all__ = ["extract_urls"]

_URL_RE = re.compile(
    r"""(?ix)
    (?<![\w@.])
    (?:
        https?://[^\s<>"]+
      | www\.[^\s<>"]+
      | data:[\w.+-]*/?[\w.+-]*(?:;[^\s,]*)*,[^\s<>"]*
      | javascript:[^\s<>"]+
    )
    """
)
_TRAILING = ".,;:!?'\"*_"
_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<"}


def _trim(candidate: str) -> str:
    while candidate:
        last = candidate[-1]
        if last in _TRAILING:
            candidate = candidate[:-1]
        elif last in _PAIRS and candidate.count(last) > candidate.count(_PAIRS[last]):
            candidate = candidate[:-1]  # "(see http://x.example/a)" keeps no ")"
        else:
            break
    return candidate


def extract_urls(text: str) -> list[str]:
    """Links in `text`, in order, without the punctuation that ends a sentence."""
    found = []
    for match in _URL_RE.finditer(text):
        url = _trim(match.group(0))
        if url.lower() not in ("http://", "https://", "www.", "javascript:"):
            found.append(url)
    return found
