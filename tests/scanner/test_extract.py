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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("go to paypal-secure.com/verify now", ["paypal-secure.com/verify"]),
        ("short: bit.ly/3xYz.", ["bit.ly/3xYz"]),
        (
            "log in at paypal.com.account-verify.example-login.xyz/signin!",
            ["paypal.com.account-verify.example-login.xyz/signin"],
        ),
        ("urgent: paypal.com@evil.example/login", ["paypal.com@evil.example/login"]),
        ("open evil.top/login", ["evil.top/login"]),
        (
            "e.g. file.txt, v1.2.3, 1.2.3.4, setup.py, README.md, stack.top and archive.zip "
            "are at docs.example.com/files (i.e. here)",
            ["docs.example.com/files"],
        ),
        (
            "both https://a.example/x and b.example.org/y",
            ["https://a.example/x", "b.example.org/y"],
        ),
    ],
)
def test_links_written_without_a_scheme(text: str, expected: list[str]) -> None:
    """People write links without http://; file names and version numbers are not links."""
    assert extract_urls(text) == expected
