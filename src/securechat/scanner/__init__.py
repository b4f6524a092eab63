"""URL-safety scanning for the relay and the client.

canonicalize / expressions / full_hash   Safe Browsing canonical forms and hashes
check                                    offline heuristics (findings)
Blocklist                                local blocklist files, reloaded on change
VirusTotalProvider, OTXProvider          online providers (httpx, injectable)
Verdict, combine                         the combined answer and its rule
prefixes_for, PrefixIndex,
decide_from_hashes                       the hash-prefix privacy mode
Scanner, extract_urls                    the façade used by the relay
"""

from __future__ import annotations

from securechat.scanner.blocklist import Blocklist, BlocklistHit, parse_blocklist
from securechat.scanner.cache import CacheTTL, MemoryVerdictCache, VerdictCache
from securechat.scanner.canonical import (
    CanonicalURL,
    canonicalize,
    expressions,
    full_hash,
    hash_prefix,
    parse_canonical,
    url_key,
)
from securechat.scanner.errors import InvalidURL, ScannerError
from securechat.scanner.extract import extract_urls
from securechat.scanner.heuristics import check
from securechat.scanner.prefix import (
    HashMatch,
    PrefixIndex,
    decide_from_hashes,
    full_hashes_of,
    prefixes_for,
)
from securechat.scanner.providers import HttpProvider, OTXProvider, Provider, VirusTotalProvider
from securechat.scanner.ratelimit import (
    OTX_FREE_TIER,
    VIRUSTOTAL_FREE_TIER,
    FairQueue,
    Limiter,
    RateLimit,
    TokenBucket,
)
from securechat.scanner.scanner import Scanner
from securechat.scanner.verdict import (
    Finding,
    ProviderReport,
    ProviderStatus,
    Rating,
    Verdict,
    combine,
    decode_verdict,
    encode_verdict,
)

__all__ = [
    "OTX_FREE_TIER",
    "VIRUSTOTAL_FREE_TIER",
    "Blocklist",
    "BlocklistHit",
    "CacheTTL",
    "CanonicalURL",
    "FairQueue",
    "Finding",
    "HashMatch",
    "HttpProvider",
    "InvalidURL",
    "Limiter",
    "MemoryVerdictCache",
    "OTXProvider",
    "PrefixIndex",
    "Provider",
    "ProviderReport",
    "ProviderStatus",
    "RateLimit",
    "Rating",
    "Scanner",
    "ScannerError",
    "TokenBucket",
    "Verdict",
    "VerdictCache",
    "VirusTotalProvider",
    "canonicalize",
    "check",
    "combine",
    "decide_from_hashes",
    "decode_verdict",
    "encode_verdict",
    "expressions",
    "extract_urls",
    "full_hash",
    "full_hashes_of",
    "hash_prefix",
    "parse_blocklist",
    "parse_canonical",
    "prefixes_for",
    "url_key",
]
