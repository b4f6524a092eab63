"""Host names as a browser reads them, and the site (registrable domain) behind each.

International names follow IDNA 2008 with UTS 46 processing (the `idna`
package), as browsers do: Python's built-in "idna" codec is IDNA 2003, which
turns faß.de into fass.de, a different domain, and cannot read fullwidth digits
or the ideographic full stop that a browser maps to plain ones.

The registrable domain comes from the Public Suffix List snapshot bundled in
`publicsuffixlist` (read from the installed package, never fetched), so
bbc.co.uk is one site, and paypal.com.account-verify.example-login.xyz is
example-login.xyz dressed up. The list's private section counts too: each
github.io or amazonaws.com customer is a site of its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import idna
from publicsuffixlist import PublicSuffixList

from securechat.scanner.errors import InvalidURL

__all__ = ["HostName", "parse_host", "public_suffix_length", "registrable_domain", "to_ascii"]


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The bundled list, parsed once (about 10k rules) on first use."""
    return PublicSuffixList()


def to_ascii(host: str) -> str:
    """The name as DNS sees it: lower case, A-labels (`xn--`), no trailing dot.

    ASCII names are only lower-cased: UTS 46's hyphen rules would refuse real
    CDN names such as r3---sn-abc.googlevideo.com, and a browser opens those.
    Raises InvalidURL for a non-ASCII name IDNA 2008 does not allow.
    """
    if host.isascii():
        return host.lower().strip(".")
    try:
        encoded = idna.encode(host, uts46=True, transitional=False)
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidURL(f"{host} is not a valid international domain name") from exc
    return encoded.decode("ascii").strip(".")


def _to_unicode(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        return label  # not valid punycode: shown as it is written


@dataclass(frozen=True, slots=True)
class HostName:
    """One host name in the forms a check needs; `site` is its registrable domain."""

    ascii: str
    unicode: str
    site: str
    """The registrable domain (ASCII), or the whole name when no public suffix fits."""

    @property
    def labels(self) -> list[str]:
        return self.ascii.split(".")

    @property
    def unicode_labels(self) -> list[str]:
        return self.unicode.split(".")

    @property
    def subdomain_labels(self) -> list[str]:
        """The labels in front of the site, as people see them."""
        return self.unicode_labels[: len(self.labels) - len(self.site.split("."))]

    @property
    def site_unicode(self) -> str:
        return ".".join(self.unicode_labels[len(self.labels) - len(self.site.split(".")) :])


def parse_host(host: str) -> HostName:
    """Read a (non-IP) host name; raises InvalidURL when it is not a valid name."""
    ascii_name = to_ascii(host)
    if not ascii_name or "" in ascii_name.split("."):
        raise InvalidURL(f"{host!r} is not a host name")
    unicode_name = ".".join(_to_unicode(label) for label in ascii_name.split("."))
    site = registrable_domain(ascii_name) or ascii_name
    return HostName(ascii=ascii_name, unicode=unicode_name, site=site)


def registrable_domain(ascii_name: str) -> str | None:
    """The site a name belongs to (`bbc.co.uk` for news.bbc.co.uk); None for a public
    suffix such as `co.uk`, or a single label such as `localhost`."""
    return _suffixes().privatesuffix(ascii_name)


def public_suffix_length(labels: list[str]) -> int:
    """How many leading labels form a listed public suffix (`com`, `co.uk`), as the
    `com` in front of `evil.example` in `paypal.com.evil.example`; 0 for none.
    Endings that are not on the list do not count."""
    suffixes = _suffixes()
    for end in range(len(labels), 0, -1):
        candidate = ".".join(labels[:end])
        try:
            ascii_candidate = to_ascii(candidate)
        except InvalidURL:
            continue
        if suffixes.publicsuffix(ascii_candidate, accept_unknown=False) == ascii_candidate:
            return end
    return 0
