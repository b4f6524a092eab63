"""Link safety: what the relay's lists and providers say about a URL.

By default only hash prefixes of the URL's forms leave the device; the verdict
is decided here from the full hashes the relay returns (`scanner`).
"""

from __future__ import annotations

import msgspec

from securechat.client.relay_client import RelayClient
from securechat.protocol import frames as F
from securechat.scanner import InvalidURL, Verdict, decide_from_hashes, prefixes_for


async def scan(relay: RelayClient, url: str, *, full: bool, submit: bool) -> Verdict:
    """Checks a link. By default only hash prefixes leave the device; `full` sends the URL.

    A full lookup asks the relay's providers (VirusTotal, OTX) with the relay's keys;
    `submit` also lets VirusTotal analyse a link it has never seen.
    """
    if full:
        answer = await relay.request(
            lambda rid: F.ScanUrl(rid=rid, url=url, submit=submit), timeout=90
        )
        assert isinstance(answer, F.ScanVerdict)
        return msgspec.convert(answer.verdict, Verdict)
    try:
        prefixes = prefixes_for(url)
    except InvalidURL:
        return decide_from_hashes(url, [])
    answer = await relay.request(lambda rid: F.ScanPrefixes(rid=rid, prefixes=prefixes))
    assert isinstance(answer, F.ScanHashes)
    return decide_from_hashes(url, [(m.full_hash, m.verdict, m.source) for m in answer.matches])
