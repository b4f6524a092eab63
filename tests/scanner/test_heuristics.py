"""Offline heuristics: tricky real-world URLs fire, ordinary ones stay quiet."""

from __future__ import annotations

import socket

import pytest

from securechat.scanner import Rating, check, combine, hostnames
from securechat.scanner.brands import DEFAULT_BRANDS, Brand, parse_brands

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


def warning(url: str, brands: tuple[Brand, ...] = DEFAULT_BRANDS) -> str:
    """The reasons a person reads, after checking that the verdict warns."""
    verdict = combine(url, (), check(url, brands))
    assert verdict.rating is Rating.SUSPICIOUS, f"{url} should warn, got {verdict.reasons}"
    return " | ".join(verdict.reasons)


@pytest.mark.parametrize(
    ("url", "worn", "site", "brand"),
    [
        (
            "http://paypal.com.account-verify.example-login.xyz/signin",
            "paypal.com",
            "example-login.xyz",
            "paypal.com",
        ),
        (
            "https://www.google.co.uk.login-check.example/",
            "google.co.uk",
            "login-check.example",
            "google.com",
        ),
        ("https://apple.com.evil.github.io/", "apple.com", "evil.github.io", "apple.com"),
        ("https://раураl.com.evil.example/", "раураl.com", "evil.example", "paypal.com"),
    ],
)
def test_brand_domain_in_front_of_another_site_warns(
    url: str, worn: str, site: str, brand: str
) -> None:
    """The issue's link: a brand's domain as the first labels of someone else's site."""
    reasons = warning(url)
    assert f"starts with {worn}, but the site is {site}, which is not {brand}" in reasons


@pytest.mark.parametrize(
    ("url", "shown", "brand"),
    [
        ("https://xn--80ak6aa92e.com/", "аррӏе.com", "apple.com"),  # all Cyrillic: one script
        ("https://раураl.com/login", "раураl.com", "paypal.com"),  # written in Unicode
        ("http://xn--pypal-4ve.com/", "pаypal.com", "paypal.com"),  # mixed scripts
        ("https://pàypal.com/", "pàypal.com", "paypal.com"),  # an accent
        ("https://www.gооgle.com/", "gооgle.com", "google.com"),
    ],
)
def test_brand_homographs_name_the_brand(url: str, shown: str, brand: str) -> None:
    """A name that only looks like a brand's says which brand it imitates."""
    assert f"{shown} imitates {brand} with lookalike letters" in warning(url)


def test_ip_literal_in_fullwidth_digits_is_an_ip() -> None:
    """A browser maps fullwidth digits and 。 to 127.0.0.1 (UTS 46): so must the check."""
    assert "bare IP address" in warning("http://１２７。０。０。１/admin")
    assert {f.code for f in check("http://１２７。０。０。１/")} == {"obfuscated_ip", "ip_host"}


def test_backslash_before_at_is_a_userinfo_trick() -> None:
    """`evil.example\\@paypal.com` opens evil.example in every browser, not paypal.com."""
    reasons = warning("https://evil.example\\@paypal.com/")
    assert "looks like it goes to paypal.com" in reasons and "opens evil.example" in reasons


def test_deep_subdomains_are_counted_in_front_of_the_site() -> None:
    """Depth is measured against the registrable domain, which the warning names."""
    assert "4 names in front of example.com" in warning(
        "https://login.account.verify.secure.example.com/"
    )
    assert check("https://my-bucket.s3.dualstack.us-east-1.amazonaws.com/report.csv") == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "https://secure-login.example.xyz/",
            "the site example.xyz ends in .xyz, an ending favoured by abusers",
        ),
        ("https://bit.do/x1", "bit.do is a link shortener"),
        ("https://go.rebrand.ly/x1", "go.rebrand.ly is a link shortener"),
    ],
)
def test_risky_tlds_and_shorteners_warn(url: str, reason: str) -> None:
    """Abuse-heavy endings and shorteners (on any of their subdomains) warn."""
    assert reason in warning(url)


def test_brand_sites_and_ordinary_links_stay_quiet_with_the_users_brands() -> None:
    """A brand's own sites never warn, with the defaults or the user's additions."""
    brands = DEFAULT_BRANDS + parse_brands(["mybank.co.uk"])
    quiet = [
        "https://www.python.org/",
        "https://github.com/encode/httpx",
        "https://www.paypal.com/signin",
        "https://accounts.google.com/",
        "https://www.google.co.uk/maps",
        "https://www.paypal.de/",
        "https://bbc.co.uk/news",
        "https://paypal.github.io/",
        "https://online.mybank.co.uk/login",
        "https://r3---sn-abc.googlevideo.com/videoplayback",
        "https://paypal.okta.com/",
    ]
    assert {url: check(url, brands) for url in quiet} == {url: [] for url in quiet}
    assert "which is not mybank.co.uk" in warning("https://mybank.co.uk.verify.example/", brands)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("co.uk", "must be a registrable domain"),
        ("www.mybank.com", "must be a registrable domain such as mybank.com"),
        ("my bank", "is not a domain name"),
        ("", "must be a domain"),
        (7, "must be a domain"),
    ],
)
def test_user_brands_are_checked(entry: object, message: str) -> None:
    """A bad `brands` entry gets a sentence naming it, not a silent miss."""
    with pytest.raises(ValueError, match=message):
        parse_brands([entry])


def test_public_suffix_list_is_bundled_not_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registrable domain comes from the installed package, with no network at all."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Public Suffix List must not be fetched")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    hostnames._suffixes.cache_clear()
    assert hostnames.parse_host("news.bbc.co.uk").site == "bbc.co.uk"


def test_a_name_idna_refuses_warns() -> None:
    """A non-ASCII name that IDNA 2008 refuses is not shown as if it were a site."""
    assert "i❤.ws is not a valid international domain name" in warning("https://i❤.ws/")
