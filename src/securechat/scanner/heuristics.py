"""Offline checks for tricks that phishing links use. Pure: a URL in, findings out.

Every finding makes the verdict at least suspicious, so the checks aim at tricks
ordinary links do not need: an IP address instead of a name, lookalike letters,
`user@host` disguises, deep subdomain chains, throwaway TLDs, shorteners that hide
the destination, odd ports, script schemes, and URLs too long to read.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import unquote_to_bytes

from securechat.scanner.canonical import parse_ipv4, split_url
from securechat.scanner.errors import InvalidURL
from securechat.scanner.verdict import Finding

__all__ = ["MAX_LABELS", "MAX_URL_LENGTH", "SHORTENERS", "SUSPICIOUS_TLDS", "check"]

MAX_URL_LENGTH = 2000
MAX_LABELS = 5  # www.news.example.co.uk is fine; a.b.c.d.e.f.example.tk is not

#: TLDs that abuse reports (Spamhaus, Interisle) rank far above their share of names.
SUSPICIOUS_TLDS = frozenset(
    {"tk", "ml", "ga", "cf", "gq", "zip", "mov", "top", "click", "country", "kim", "loan",
     "work", "rest", "cam", "icu", "buzz", "su", "gdn", "men", "xin"}
)  # fmt: skip

SHORTENERS = frozenset(
    {"bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "v.gd",
     "buff.ly", "rebrand.ly", "cutt.ly", "shorturl.at", "tiny.cc", "rb.gy", "t.ly",
     "bl.ink", "s.id", "shorte.st", "adf.ly", "qrco.de", "lnkd.in", "tiny.one"}
)  # fmt: skip

_SCRIPT_SCHEMES = ("javascript:", "data:", "vbscript:")
_WEB_SCHEMES = {"http": "80", "https": "443"}
_DOTTED_DECIMAL = re.compile(r"^(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}$")


def _scripts(label: str) -> set[str]:
    """The scripts a label's letters come from (first word of the Unicode name)."""
    scripts = set()
    for char in label:
        if char.isalpha():
            name = unicodedata.name(char, "UNKNOWN")
            scripts.add(name.split(" ", 1)[0])
    return scripts


def _host_findings(host: str) -> list[Finding]:
    findings: list[Finding] = []
    bare = host.strip("[]")
    ip = parse_ipv4(host)
    if ip is not None or host.startswith("["):
        if ip is not None and not _DOTTED_DECIMAL.match(host):
            findings.append(
                Finding("obfuscated_ip", f"the host {host} is the IP address {ip} in disguise")
            )
        address = _ip_address(ip or bare)
        where = " on a private network" if address is not None and address.is_private else ""
        findings.append(Finding("ip_host", f"the link points at a bare IP address{where}"))
        return findings
    labels = [label for label in host.split(".") if label]
    decoded = []
    for label in labels:
        if label.startswith("xn--"):
            try:
                decoded.append(label.encode("ascii").decode("idna"))
            except UnicodeError:
                decoded.append(label)
        else:
            decoded.append(label)
    unicode_host = ".".join(decoded)
    if unicode_host != host or not host.isascii():
        mixed = [label for label in decoded if len(_scripts(label)) > 1]
        if mixed:
            findings.append(
                Finding(
                    "homograph",
                    f"the name {unicode_host} mixes alphabets, a lookalike of another site",
                )
            )
        else:
            findings.append(
                Finding("punycode", f"the name {host} is shown to people as {unicode_host}")
            )
    if len(labels) > MAX_LABELS:
        findings.append(
            Finding("many_subdomains", f"the name has {len(labels)} parts, hiding the real one")
        )
    if labels and labels[-1] in SUSPICIOUS_TLDS:
        findings.append(
            Finding("suspicious_tld", f".{labels[-1]} is a domain ending favoured by abusers")
        )
    if host in SHORTENERS or host.removeprefix("www.") in SHORTENERS:
        findings.append(
            Finding("shortener", f"{host} is a link shortener that hides the destination")
        )
    return findings


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check(url: str) -> list[Finding]:
    """Run every offline check on the URL as written (before canonicalisation)."""
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
    if parts.port is not None and parts.port != _WEB_SCHEMES.get(parts.scheme):
        findings.append(Finding("unusual_port", f"the link uses the unusual port {parts.port}"))
    host_bytes = parts.host
    try:
        host = unquote_to_bytes(host_bytes).decode("utf-8").lower().strip(".")
    except UnicodeDecodeError:
        findings.append(Finding("garbled_host", "the host name is not readable text"))
        return findings
    findings.extend(_host_findings(host))
    return findings
