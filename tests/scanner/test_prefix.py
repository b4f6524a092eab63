"""The hash-prefix privacy mode: round trip, and what the relay gets to see."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from securechat.scanner import (
    Blocklist,
    HashMatch,
    PrefixIndex,
    Rating,
    decide_from_hashes,
    full_hash,
    prefixes_for,
)

LISTED = "https://evil.example/login.php?user=alice"
CLEAN = "https://www.example.com/news/today.html"


def relay_index(tmp_path: Path) -> PrefixIndex:
    path = tmp_path / "openphish.txt"
    path.write_text("https://evil.example/login.php\nmalware.example.org\n")
    blocklist = Blocklist([path])
    return PrefixIndex(HashMatch(h, Rating.MALICIOUS, hit.source) for h, hit in blocklist.entries())


def test_prefixes_are_four_bytes_and_distinct() -> None:
    """The client sends one 4-byte prefix per expression, nothing longer."""
    prefixes = prefixes_for(LISTED)
    assert prefixes and all(len(p) == 4 for p in prefixes)
    assert len(set(prefixes)) == len(prefixes)


def test_listed_url_found_via_prefixes(tmp_path: Path) -> None:
    """A blocklisted URL comes back malicious after a prefix-only round trip."""
    answers = relay_index(tmp_path).full_hashes_for(prefixes_for(LISTED))
    verdict = decide_from_hashes(LISTED, answers)
    assert verdict.rating is Rating.MALICIOUS
    assert "openphish.txt" in verdict.providers[0].detail


def test_listed_domain_covers_subdomains(tmp_path: Path) -> None:
    """A domain entry matches any page on the domain via its host-suffix expression."""
    url = "http://cdn.malware.example.org/a/b.exe"
    answers = relay_index(tmp_path).full_hashes_for(prefixes_for(url))
    assert decide_from_hashes(url, answers).rating is Rating.MALICIOUS


def test_clean_url_not_found(tmp_path: Path) -> None:
    """An unlisted URL matches nothing and is not called malicious."""
    answers = relay_index(tmp_path).full_hashes_for(prefixes_for(CLEAN))
    assert answers == []
    assert decide_from_hashes(CLEAN, answers).rating is Rating.UNKNOWN


def test_prefix_collision_is_resolved_by_full_hash() -> None:
    """The relay may return hashes for other URLs sharing a prefix; the client ignores them."""
    [prefix, *_] = prefixes_for(CLEAN)
    impostor = prefix + b"\x00" * 28
    assert full_hash("www.example.com/news/today.html") != impostor
    verdict = decide_from_hashes(CLEAN, [(impostor, Rating.MALICIOUS, "x")])
    assert verdict.rating is Rating.UNKNOWN


def test_heuristics_still_run_on_the_client() -> None:
    """Offline checks need no relay at all, so prefix mode keeps them."""
    assert decide_from_hashes("http://0x7f000001/", []).rating is Rating.SUSPICIOUS


def test_request_data_does_not_reveal_the_url() -> None:
    """What the client sends (raw, hex, JSON, msgpack) never contains the URL or its host."""
    prefixes = prefixes_for(LISTED)
    forms = [
        b"".join(prefixes),
        json.dumps([p.hex() for p in prefixes]).encode(),
        msgspec.json.encode(prefixes),
        msgspec.msgpack.encode(prefixes),
    ]
    secrets = [LISTED, "evil.example", "evil", "login.php", "alice"]
    for form in forms:
        for secret in secrets:
            assert secret.encode() not in form
            assert secret.encode("utf-16-le") not in form
            assert secret.encode().hex().encode() not in form


def test_index_ignores_malformed_prefixes(tmp_path: Path) -> None:
    """Prefixes of the wrong length answer nothing rather than matching loosely."""
    index = relay_index(tmp_path)
    assert index.full_hashes_for([b"", b"\x00", b"\x00" * 32]) == []
