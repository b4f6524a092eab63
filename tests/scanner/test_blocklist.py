"""Local blocklist files: formats, matching and reload on change."""

from __future__ import annotations

import os
from pathlib import Path

from securechat.scanner import Blocklist, ProviderStatus, Rating, parse_blocklist

URLHAUS = """\
################################################################
# abuse.ch URLhaus Database Dump (CSV - recent URLs only)       #
################################################################
http://198.51.100.7/bins/mozi.m
https://evil.example/login.php   # reported 2024-01-01
"""
OPENPHISH = "https://phish.example.net/secure/paypal/\nnot a url line\n"
HOSTS = "0.0.0.0 tracker.example\n127.0.0.1 malware.example.org\nbadsite.test\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_formats_parse_to_expressions() -> None:
    """URLhaus, OpenPhish and hosts lines all become Safe Browsing expressions."""
    found, bad = parse_blocklist(URLHAUS + OPENPHISH + HOSTS)
    assert found == [
        "198.51.100.7/bins/mozi.m",
        "evil.example/login.php",
        "phish.example.net/secure/paypal/",
        "tracker.example/",
        "malware.example.org/",
        "badsite.test/",
    ]
    assert bad == 1


def test_matching(tmp_path: Path) -> None:
    """A URL entry covers that path; a domain entry covers the host and subdomains."""
    blocklist = Blocklist([write(tmp_path / "urlhaus.txt", URLHAUS), write(tmp_path / "h", HOSTS)])
    assert blocklist.lookup("https://evil.example/login.php?session=1") is not None
    assert blocklist.lookup("http://EVIL.example/./login.php#x") is not None
    assert blocklist.lookup("https://evil.example/about") is None
    hit = blocklist.lookup("http://cdn.tracker.example/pixel.gif")
    assert hit is not None and hit.source == "h"
    assert blocklist.lookup("https://example.com/") is None


def test_report_is_malicious_when_listed(tmp_path: Path) -> None:
    """Being on a blocklist is a malicious rating; not being on it is no opinion."""
    blocklist = Blocklist([write(tmp_path / "list.txt", HOSTS)])
    assert blocklist.report("http://badsite.test/x").rating is Rating.MALICIOUS
    assert blocklist.report("http://fine.test/").status is ProviderStatus.NOT_FOUND
    assert Blocklist([]).report("http://x.test/").status is ProviderStatus.DISABLED


def test_reload_on_change(tmp_path: Path) -> None:
    """Editing a file takes effect on the next lookup, without a restart."""
    path = write(tmp_path / "list.txt", "first.example\n")
    blocklist = Blocklist([path], check_interval=0.0)
    assert blocklist.lookup("http://first.example/") is not None
    version = blocklist.version
    write(path, "second.example\nthird.example\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert blocklist.lookup("http://first.example/") is None
    assert blocklist.lookup("http://second.example/") is not None
    assert blocklist.version == version + 1


def test_unchanged_files_are_not_reread(tmp_path: Path) -> None:
    """The mtime check is cheap: no change, no reload."""
    blocklist = Blocklist([write(tmp_path / "list.txt", HOSTS)], check_interval=0.0)
    version = blocklist.version
    for _ in range(5):
        blocklist.lookup("http://example.com/")
    assert blocklist.version == version


def test_missing_file_appears_later(tmp_path: Path) -> None:
    """A list that does not exist yet is empty, and is read once it shows up."""
    path = tmp_path / "later.txt"
    blocklist = Blocklist([path], check_interval=0.0)
    assert len(blocklist) == 0
    write(path, "late.example\n")
    assert blocklist.lookup("http://late.example/") is not None
