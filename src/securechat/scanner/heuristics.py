"""Offline checks for tricks that phishing links use. Pure: a URL in, findings out.

Every finding makes the verdict at least suspicious, so the checks aim at tricks
ordinary links do not need: an IP address instead of a name, a brand's domain
worn in front of another site (paypal.com.evil.example), names that only look
like a brand's, `user@host` disguises, deep subdomain chains, throwaway TLDs,
shorteners that hide the destination, odd ports, script schemes, and URLs too
long to read. Names are read the way a browser reads them (UTS 46, the Public
Suffix List: see securechat.scanner.hostnames), so the site a finding names is
the one the link really opens.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from securechat.scanner.brands import DEFAULT_BRANDS, Brand, skeleton
from securechat.scanner.canonical import parse_ipv4, split_url
from securechat.scanner.errors import InvalidURL
from securechat.scanner.hostnames import HostName, parse_host, public_suffix_length
from securechat.scanner.verdict import Finding

__all__ = ["MAX_SUBDOMAINS", "MAX_URL_LENGTH", "SHORTENERS", "SUSPICIOUS_TLDS", "check"]

MAX_URL_LENGTH = 2000
#: Labels allowed in front of the site: us-east-1.console.aws.amazon.com has 3.
MAX_SUBDOMAINS = 3

#: TLDs that abuse reports (Spamhaus's most abused TLDs, Interisle's phishing
#: landscape) rank far above their share of names.
SUSPICIOUS_TLDS = frozenset(
    {"tk", "ml", "ga", "cf", "gq", "zip", "mov", "top", "click", "country", "kim", "loan",
     "work", "rest", "cam", "icu", "buzz", "su", "gdn", "men", "xin", "xyz", "cyou", "sbs",
     "cfd", "bond", "lol", "monster", "quest", "pw", "online", "site"}
)  # fmt: skip

#: Matched against the site, so www.bit.ly and any subdomain count too.
SHORTENERS = frozenset(
    {"bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "v.gd",
     "buff.ly", "rebrand.ly", "cutt.ly", "shorturl.at", "tiny.cc", "rb.gy", "t.ly",
     "bl.ink", "s.id", "shorte.st", "adf.ly", "qrco.de", "lnkd.in", "tiny.one", "bit.do",
     "tr.im", "x.co", "u.to", "surl.li", "t2m.io", "urlz.fr", "shorturl.com"}
)  # fmt: skip

_SCRIPT_SCHEMES = ("javascript:", "data:", "vbscript:")
_WEB_SCHEMES = {"http": "80", "https": "443"}


def _scripts(label: str) -> set[str]:
    """The scripts a label's letters come from (first word of the Unicode name)."""
    scripts = set()
    for char in label:
        if char.isalpha():
            name = unicodedata.name(char, "UNKNOWN")
            scripts.add(name.split(" ", 1)[0])
    return scripts


def _ip_findings(host: str, ip: str | None) -> list[Finding]:
    findings = []
    if ip is not None and host != ip:
        findings.append(
            Finding("obfuscated_ip", f"the host {host} is the IP address {ip} in disguise")
        )
    address = _ip_address(ip or host.strip("[]"))
    where = " on a private network" if address is not None and address.is_private else ""
    findings.append(Finding("ip_host", f"the link points at a bare IP address{where}"))
    return findings


def _lookalike(name: HostName, brands: Sequence[Brand]) -> Brand | None:
    """The brand whose name the site's own name imitates with other letters."""
    site_label = name.site_unicode.split(".", 1)[0]
    return next(
        (
            brand
            for brand in brands
            if site_label != brand.name and skeleton(site_label) == skeleton(brand.name)
        ),
        None,
    )


def _brand_in_front(name: HostName, brands: Sequence[Brand]) -> Finding | None:
    """A brand's domain worn as labels in front of another site (paypal.com.evil.example)."""
    front = name.subdomain_labels
    seen = [skeleton(label) for label in front[:-1]]
    own = name.site.split(".", 1)[0]
    for brand in brands:
        target = skeleton(brand.name)
        if own == brand.name or target not in seen:
            continue
        for at, label in enumerate(seen):
            suffix = public_suffix_length(front[at + 1 :]) if label == target else 0
            if suffix:
                worn = ".".join(front[at : at + 1 + suffix])
                return Finding(
                    "brand_in_subdomain",
                    f"the name starts with {worn}, but the site is {name.site_unicode}, "
                    f"which is not {brand.domain}",
                )
    return None


def _name_findings(host: str, name: HostName, brands: Sequence[Brand]) -> list[Finding]:
    findings: list[Finding] = []
    if name.unicode != name.ascii:
        brand = _lookalike(name, brands)
        mixed = [label for label in name.unicode_labels if len(_scripts(label)) > 1]
        if brand is not None:
            findings.append(
                Finding(
                    "homograph",
                    f"{name.site_unicode} imitates {brand.domain} with lookalike letters: "
                    f"it is {name.site}, another site",
                )
            )
        elif mixed:
            findings.append(
                Finding(
                    "homograph",
                    f"the name {name.unicode} mixes alphabets, a lookalike of another site",
                )
            )
        elif host.isascii():
            findings.append(
                Finding("punycode", f"the name {host} is shown to people as {name.unicode}")
            )
        else:
            findings.append(
                Finding("punycode", f"the name {name.unicode} is really {name.ascii} to a browser")
            )
    worn = _brand_in_front(name, brands)
    if worn is not None:
        findings.append(worn)
    depth = len(name.subdomain_labels)
    if depth > MAX_SUBDOMAINS:
        findings.append(
            Finding(
                "many_subdomains",
                f"{depth} names in front of {name.site_unicode} hide which site this is",
            )
        )
    tld = name.labels[-1]
    if tld in SUSPICIOUS_TLDS:
        findings.append(
            Finding(
                "suspicious_tld",
                f"the site {name.site_unicode} ends in .{tld}, an ending favoured by abusers",
            )
        )
    if name.site in SHORTENERS or name.ascii in SHORTENERS:
        findings.append(
            Finding("shortener", f"{name.ascii} is a link shortener that hides the destination")
        )
    return findings


def _host_findings(host: str, brands: Sequence[Brand]) -> list[Finding]:
    if host.startswith("["):
        return _ip_findings(host, None)
    try:
        name = parse_host(host)
    except InvalidURL as exc:
        return [Finding("bad_name", f"{exc}: a browser may not open what is shown")]
    ip = parse_ipv4(name.ascii)
    if ip is not None:
        return _ip_findings(host, ip)
    return _name_findings(host, name, brands)


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host_as_read(text: str) -> bytes | None:
    """The host a person reading left to right takes the link for, if a backslash sits
    before an `@`: `https://evil.example\\@paypal.com/` reads as paypal.com."""
    if "\\" not in text:
        return None
    try:
        return split_url(text.replace("\\", "%5C")).host
    except InvalidURL:
        return None


def check(url: str, brands: Sequence[Brand] = DEFAULT_BRANDS) -> list[Finding]:
    """Run every offline check on the URL as written (before canonicalisation).

    `brands` are the sites whose names a link may not wear or imitate; callers
    add the user's own to DEFAULT_BRANDS.
    """
    text = url.strip()
    findings: list[Finding] = []
    if len(text) > MAX_URL_LENGTH:
        findings.append(
            Finding("long_url", f"the link is {len(text)} characters long, too long to read")
        )
    lowered = text.lower()
    for scheme in _SCRIPT_SCHEMES:
        if lowered.startswith(scheme):
            findings.append(Finding("script_scheme", f"a {scheme} link runs code or embeds a page"))
            return findings
    try:
        parts = split_url(text)
    except InvalidURL as exc:
        findings.append(Finding("not_web", str(exc)))
        return findings
    if parts.scheme not in _WEB_SCHEMES:
        findings.append(Finding("unusual_scheme", f"{parts.scheme}: is not a web link"))
    if parts.userinfo is not None:
        findings.append(
            Finding(
                "userinfo",
                f"'{parts.userinfo}@' is decoration: the link really goes to "
                f"{parts.host.decode('utf-8', 'replace')}",
            )
        )
    shown = _host_as_read(text)
    if parts.userinfo is None and shown is not None and shown != parts.host:
        findings.append(
            Finding(
                "userinfo",
                f"the link looks like it goes to {shown.decode('utf-8', 'replace')}, but a "
                f"browser reads '\\' as '/' and opens {parts.host.decode('utf-8', 'replace')}",
            )
        )
    if parts.port is not None and parts.port != _WEB_SCHEMES.get(parts.scheme):
        findings.append(Finding("unusual_port", f"the link uses the unusual port {parts.port}"))
    host_bytes = parts.host
    try:
        host = unquote_to_bytes(host_bytes).decode("utf-8").lower().strip(".")
    except UnicodeDecodeError:
        findings.append(Finding("garbled_host", "the host name is not readable text"))
        return findings
    findings.extend(_host_findings(host, brands))
    return findings
