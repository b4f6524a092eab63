"""Finding links in a chat message, including the ones people write without a scheme.

A link with a scheme (`https://…`, `javascript:`, `data:`) is taken as far as it
goes, up to the punctuation that ends a sentence: a browser opens all of it,
IPv6 literals and fullwidth digits included. Scheme-less links
(`paypal-secure.com/verify`, `www.example.org`) come from linkify-it-py, which
knows real top-level domains, so "e.g.", "file.txt" and "v1.2.3" are no links.
A bare `name.ending` whose ending is also a file type people name in chat
(`setup.py`, `README.md`, `photos.zip`) is a link only with a path after it,
and so is one ending in a rarer TLD this module adds (`stack.top` is code,
`evil.top/login` a link).
"""

from __future__ import annotations

import functools
import re

from linkify_it import LinkifyIt

from securechat.scanner.heuristics import SUSPICIOUS_TLDS

__all__ = ["extract_urls"]

_URL_RE = re.compile(
    r"""(?ix)
    (?<![\w@.])
    (?:
        https?://[^\s<>"]+
      | data:[\w.+-]*/?[\w.+-]*(?:;[^\s,]*)*,[^\s<>"]*
      | javascript:[^\s<>"]+
    )
    """
)
_TRAILING = ".,;:!?'\"*_"
_PAIRS = {")": "(", "]": "[", "}": "{", ">": "<"}

#: Endings that are file types first in chat; a bare `name.ending` with one is no link.
FILE_ENDINGS = frozenset(
    {"py", "md", "sh", "rs", "pl", "pm", "ps", "cc", "cl", "cr", "sv", "so", "ai", "ml",
     "mo", "in", "la", "tf", "gd", "ms", "sc", "zip", "mov"}
)  # fmt: skip

#: TLDs beyond linkify-it's own list (common gTLDs and every two-letter one) that
#: phishing favours; bare names in them need a path to count (see FILE_ENDINGS).
EXTRA_TLDS = SUSPICIOUS_TLDS | {"io", "app", "dev"}


@functools.cache
def _linkify() -> LinkifyIt:
    return LinkifyIt(options={"fuzzy_email": False}).tlds(sorted(EXTRA_TLDS), True)


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


def _is_bare_name(link: str) -> bool:
    """`setup.py`, `stack.top`: a name and an ending, with nothing that makes it a link."""
    if link.lower().startswith("www.") or any(c in link for c in "/?:#@"):
        return False
    ending = link.rsplit(".", 1)[-1].lower()
    return ending in FILE_ENDINGS or ending in EXTRA_TLDS


def _scheme_less(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, str]]:
    found = []
    for match in _linkify().match(text) or ():
        if match.schema != "":
            continue  # links with a scheme are the regex's; "//host" is no chat link
        start, end = match.index, match.last_index
        if text[end : end + 1] == "@":  # paypal.com@evil.example/login opens evil.example
            while end < len(text) and not text[end].isspace() and text[end] not in '<>"':
                end += 1
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        link = _trim(text[start:end])
        if link and not _is_bare_name(link):
            found.append((start, link))
    return found


def extract_urls(text: str) -> list[str]:
    """Links in `text`, in order, as written, without the punctuation that ends a sentence."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for match in _URL_RE.finditer(text):
        url = _trim(match.group(0))
        if url.lower() not in ("http://", "https://", "javascript:"):
            found.append((match.start(), url))
            taken.append(match.span())
    found += _scheme_less(text, taken)
    return [url for _, url in sorted(found)]
