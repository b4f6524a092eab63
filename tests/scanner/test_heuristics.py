"""Offline heuristics: tricky real-world URLs fire, ordinary ones stay quiet."""

from __future__ import annotations

import pytest

from securechat.scanner import check

TRICKY = [
    ("http://paypal.com@evil.example/", {"userinfo"}),
    ("http://xn--pypal-4ve.com/", {"homograph"}),
    ("http://p\u0430ypal.com/login", {"homograph"}),
    ("http://xn--mnchen-3ya.de/", {"punycode"}),
    ("http://0x7f000001/", {"obfuscated_ip", "ip_host"}),
    ("http://3279880203/blah", {"obfuscated_ip", "ip_host"}),
    ("http://0177.0.0.1/", {"obfuscated_ip", "ip_host"}),
    ("http://192.168.0.1:8080/", {"ip_host", "unusual_port"}),
    ("http://[::1]/admin", {"ip_host"}),
    ("javascript:alert(1)", {"script_scheme"}),
    ("JavaScript:alert(document.cookie)", {"script_scheme"}),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", {"script_scheme"}),
    ("http://example.com/" + "a" * 3000, {"long_url"}),
    ("http://a.b.c.d.e.f.g.example.tk/", {"many_subdomains", "suspicious_tld"}),
    ("https://login-secure.example.zip/", {"suspicious_tld"}),
    ("https://bit.ly/x", {"shortener"}),
    ("https://tinyurl.com/abc123", {"shortener"}),
    ("https://example.com:8443/", {"unusual_port"}),
    ("ftp://files.example.com/x", {"unusual_scheme"}),
]

ORDINARY = [
    "https://www.google.com/search?q=python+asyncio",
    "https://en.wikipedia.org/wiki/URL_(disambiguation)",
    "https://github.com/encode/httpx/blob/master/README.md",
    "https://news.bbc.co.uk/sport/football",
    "https://docs.python.org/3/library/asyncio.html#module-asyncio",
    "http://example.com:80/",
    "https://example.com:443/path",
    "https://mail.google.com/mail/u/0/#inbox",
    "www.example.org/about",
    "https://www.amazon.co.uk/dp/B08N5WRWNW?ref=x&th=1",
    "https://user-images.githubusercontent.com/1/2.png",
    "https://stackoverflow.com/questions/123/how-to?answertab=votes#tab-top",
]


@pytest.mark.parametrize(("url", "codes"), TRICKY)
def test_tricky_urls_fire(url: str, codes: set[str]) -> None:
    """Each trick used by phishing links is caught by the check aimed at it."""
    assert {f.code for f in check(url)} == codes


@pytest.mark.parametrize("url", ORDINARY)
def test_ordinary_urls_stay_quiet(url: str) -> None:
    """Everyday links must not fire, or users learn to ignore warnings."""
    assert check(url) == []


def test_findings_explain_themselves() -> None:
    """A finding carries a sentence a person can act on, naming the real destination."""
    [finding] = check("http://paypal.com@evil.example/")
    assert "evil.example" in finding.message
