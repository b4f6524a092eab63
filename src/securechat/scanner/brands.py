"""The well-known brands phishing links pretend to be, and how lookalike names are seen through.

A brand is a registrable domain (`paypal.com`); its name is the first label
(`paypal`). A site whose own name is the brand's name (`paypal.de`,
`paypal.github.io`) is never flagged for it: brands own many endings and
guessing which is theirs would flag real sites. What is flagged is the brand
worn as decoration in front of someone else's site, and a site name that only
looks like the brand's.

`skeleton` folds a label to what a reader sees, so раураl (Cyrillic) and pàypal
both read as paypal: accents are dropped (NFKD), and the Cyrillic and Greek
letters that Unicode's confusables table (UTS 39) lists as lookalikes of Latin
ones become those Latin letters. The list is short on purpose: people can add
their own brand (their bank, their employer) through the TUI's `brands` setting.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from securechat.scanner.errors import InvalidURL
from securechat.scanner.hostnames import parse_host, registrable_domain

__all__ = ["DEFAULT_BRANDS", "Brand", "parse_brands", "skeleton"]

_DNS_NAME = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+$")

#: Lowercase Cyrillic, Greek and Latin-extension letters that UTS 39 maps to one Latin letter.
_LOOKALIKES = str.maketrans(
    {
        "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "ӏ": "l",
        "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "ԝ": "w", "х": "x", "у": "y", "ɡ": "g",
        "α": "a", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "υ": "u", "χ": "x",
        "γ": "y", "ı": "i", "ɑ": "a", "ℓ": "l",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def skeleton(label: str) -> str:
    """What a reader takes the label for: accents gone, lookalike letters made Latin."""
    folded = unicodedata.normalize("NFKD", label.lower().translate(_LOOKALIKES))
    return "".join(c for c in folded if not unicodedata.combining(c)).translate(_LOOKALIKES)


@dataclass(frozen=True, slots=True)
class Brand:
    """A brand by its main registrable domain, e.g. `paypal.com`."""

    domain: str

    @property
    def name(self) -> str:
        return self.domain.split(".", 1)[0]


def parse_brands(entries: Iterable[object]) -> tuple[Brand, ...]:
    """Brands from user settings; each entry must be a domain such as `mybank.co.uk`.

    Raises ValueError with a sentence naming the bad entry.
    """
    brands = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"a brand must be a domain such as mybank.com, not {entry!r}")
        try:
            host = parse_host(entry.strip())
        except InvalidURL as exc:
            raise ValueError(f"the brand {entry!r} is not a domain name: {exc}") from exc
        if not _DNS_NAME.match(host.ascii):
            raise ValueError(f"the brand {entry!r} is not a domain name such as mybank.com")
        site = registrable_domain(host.ascii)
        if site != host.ascii:
            example = f" such as {site}" if site else ", not a public suffix"
            raise ValueError(f"the brand {entry!r} must be a registrable domain{example}")
        brands.append(Brand(host.ascii))
    return tuple(brands)


#: Brands most imitated in phishing reports (APWG, Check Point, Vade), one domain each.
DEFAULT_BRANDS: tuple[Brand, ...] = tuple(
    Brand(domain)
    for domain in (
        "paypal.com", "google.com", "gmail.com", "youtube.com", "microsoft.com",
        "office.com", "outlook.com", "live.com", "apple.com", "icloud.com", "amazon.com",
        "facebook.com", "instagram.com", "whatsapp.com", "linkedin.com", "twitter.com",
        "netflix.com", "github.com", "dropbox.com", "docusign.com", "adobe.com",
        "ebay.com", "dhl.com", "fedex.com", "chase.com", "wellsfargo.com",
        "bankofamerica.com", "coinbase.com", "binance.com", "steamcommunity.com",
    )
)  # fmt: skip
