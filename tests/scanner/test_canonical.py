"""Canonicalisation, expressions and hashes against Safe Browsing's published examples."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.scanner import InvalidURL, canonicalize, expressions, full_hash, hash_prefix
from securechat.scanner.canonical import parse_ipv4

# The "URLs and Hashing" document of Safe Browsing v4 (identical in Web Risk).
SAFE_BROWSING_EXAMPLES: list[tuple[str | bytes, str]] = [
    ("http://host/%25%32%35", "http://host/%25"),
    ("http://host/%25%32%35%25%32%35", "http://host/%25%25"),
    ("http://host/%2525252525252525", "http://host/%25"),
    ("http://host/asdf%25%32%35asd", "http://host/asdf%25asd"),
    ("http://host/%%%25%32%35asd%%", "http://host/%25%25%25asd%25%25"),
    ("http://www.google.com/", "http://www.google.com/"),
    (
        "http://%31%36%38%2e%31%38%38%2e%39%39%2e%32%36/%2E%73%65%63%75%72%65/%77%77%77%2E%65%62%61%79%2E%63%6F%6D/",
        "http://168.188.99.26/.secure/www.ebay.com/",
    ),
    (
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
    ),
    (
        "http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833%252944_55%252B",
        "http://host%23.com/~a!b@c%23d$e%25f^00&11*22(33)44_55+",
    ),
    ("http://3279880203/blah", "http://195.127.0.11/blah"),
    ("http://www.google.com/blah/..", "http://www.google.com/"),
    ("www.google.com/", "http://www.google.com/"),
    ("www.google.com", "http://www.google.com/"),
    ("http://www.evil.com/blah#frag", "http://www.evil.com/blah"),
    ("http://www.GOOgle.com/", "http://www.google.com/"),
    ("http://www.google.com.../", "http://www.google.com/"),
    ("http://www.google.com/foo\tbar\rbaz\n2", "http://www.google.com/foobarbaz2"),
    ("http://www.google.com/q?", "http://www.google.com/q?"),
    ("http://www.google.com/q?r?", "http://www.google.com/q?r?"),
    ("http://www.google.com/q?r?s", "http://www.google.com/q?r?s"),
    ("http://evil.com/foo#bar#baz", "http://evil.com/foo"),
    ("http://evil.com/foo;", "http://evil.com/foo;"),
    ("http://evil.com/foo?bar;", "http://evil.com/foo?bar;"),
    (b"http://\x01\x80.com/", "http://%01%80.com/"),
    ("http://notrailingslash.com", "http://notrailingslash.com/"),
    ("http://www.gotaport.com:1234/", "http://www.gotaport.com/"),
    ("  http://www.google.com/  ", "http://www.google.com/"),
    ("http:// leadingspace.com/", "http://%20leadingspace.com/"),
    ("http://%20leadingspace.com/", "http://%20leadingspace.com/"),
    ("%20leadingspace.com/", "http://%20leadingspace.com/"),
    ("https://www.securesite.com/", "https://www.securesite.com/"),
    ("http://host.com/ab%23cd", "http://host.com/ab%23cd"),
    ("http://host.com//twoslashes?more//slashes", "http://host.com/twoslashes?more//slashes"),
]


@pytest.mark.parametrize(("raw", "expected"), SAFE_BROWSING_EXAMPLES)
def test_safe_browsing_examples(raw: str | bytes, expected: str) -> None:
    """Our canonical form must equal Safe Browsing's, or hashes would never match theirs."""
    assert canonicalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://0x7f000001/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://user:pw@Example.COM:8080/a/./b/../c", "http://example.com/a/c"),
        ("http://münchen.de/straße", "http://xn--mnchen-3ya.de/stra%C3%9Fe"),
    ],
)
def test_more_forms(raw: str, expected: str) -> None:
    """IP spellings, userinfo, ports and IDNs all fold into one canonical URL."""
    assert canonicalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://faß.de/", "http://xn--fa-hia.de/"),
        ("http://βόλος.com/", "http://xn--nxasmm1c.com/"),
        (
            "https://evil.example\\@paypal.com/a\\b?q=\\",
            "https://evil.example/@paypal.com/a/b?q=\\",
        ),
    ],
)
def test_hosts_are_read_as_browsers_read_them(raw: str, expected: str) -> None:
    """IDNA 2008 / UTS 46 (faß.de is not fass.de) and a backslash ends the host, as in a
    browser: the prefix lookup must hash the site the link really opens."""
    assert canonicalize(raw) == expected


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "256.1.1.1", "08.1.1.1", "example.com", "4294967296"]
)
def test_parse_ipv4_rejects_non_addresses(host: str) -> None:
    """Only legal inet_aton spellings become addresses; names stay names."""
    assert parse_ipv4(host) is None


@pytest.mark.parametrize("raw", ["javascript:alert(1)", "data:text/html,<b>x</b>", "http:///path"])
def test_uncheckable_urls_raise(raw: str) -> None:
    """Script schemes and host-less URLs cannot be looked up, so they raise InvalidURL."""
    with pytest.raises(InvalidURL):
        canonicalize(raw)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://a.b.c/1/2.html?param=1",
            ["a.b.c/1/2.html?param=1", "a.b.c/1/2.html", "a.b.c/", "a.b.c/1/",
             "b.c/1/2.html?param=1", "b.c/1/2.html", "b.c/", "b.c/1/"],
        ),
        (
            "http://a.b.c.d.e.f.g/1.html",
            ["a.b.c.d.e.f.g/1.html", "a.b.c.d.e.f.g/", "c.d.e.f.g/1.html", "c.d.e.f.g/",
             "d.e.f.g/1.html", "d.e.f.g/", "e.f.g/1.html", "e.f.g/", "f.g/1.html", "f.g/"],
        ),
        ("http://1.2.3.4/1/", ["1.2.3.4/1/", "1.2.3.4/"]),
    ],
)  # fmt: skip
def test_safe_browsing_expressions(url: str, expected: list[str]) -> None:
    """The suffix/prefix expressions match the three examples Safe Browsing publishes."""
    assert expressions(url) == expected


def test_expressions_are_bounded() -> None:
    """At most 5 hosts x 6 paths, whatever the URL's depth."""
    url = "http://a.b.c.d.e.f.g.h/1/2/3/4/5/6/7.html?q=1"
    assert len(expressions(url)) <= 30


def test_hash_prefix_known_answer() -> None:
    """FIPS 180-2 example B1, as in the Safe Browsing document: sha256('abc') starts ba7816bf."""
    assert full_hash("abc") == hashlib.sha256(b"abc").digest()
    assert hash_prefix(full_hash("abc")) == bytes.fromhex("ba7816bf")


@given(
    host=st.from_regex(r"[A-Za-z0-9%.\-]{1,20}", fullmatch=True),
    path=st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="#"), max_size=30
    ),
)
def test_canonical_form_is_stable(host: str, path: str) -> None:
    """Canonicalising twice changes nothing, so stored hashes and fresh ones agree."""
    try:
        once = canonicalize(f"http://{host}/{path}")
    except InvalidURL:
        return
    assert canonicalize(once) == once
