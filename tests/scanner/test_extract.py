"""Finding links in chat messages."""

from __future__ import annotations

import pytest

from securechat.scanner import extract_urls


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://example.com/a.", ["https://example.com/a"]),
        (
            "(http://example.com/x), then www.example.org!",
            ["http://example.com/x", "www.example.org"],
        ),
        (
            "wiki: https://en.wikipedia.org/wiki/URL_(disambiguation)?",
            ["https://en.wikipedia.org/wiki/URL_(disambiguation)"],
        ),
        ("<https://example.com/?q=1&r=2>", ["https://example.com/?q=1&r=2"]),
        ("click javascript:alert(1) now", ["javascript:alert(1)"]),
        ("img data:text/html;base64,PGI+ done", ["data:text/html;base64,PGI+"]),
        ("the data: it is fine; metadata:x; mail me@www.example.com", []),
        (
            "two: http://a.example/1, http://b.example/2;",
            ["http://a.example/1", "http://b.example/2"],
        ),
        ("no links here, just text.", []),
        ('quoted "https://example.com/q" ok', ["https://example.com/q"]),
    ],
)
def test_extract_urls(text: str, expected: list[str]) -> None:
    """Links are found in their common chat forms without trailing punctuation."""
    assert extract_urls(text) == expected
