"""The relay's embedded scanner: private prefix mode, full lookups, limits, isolation."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.scanner import Scanner, decide_from_hashes, prefixes_for
from securechat.scanner.blocklist import Blocklist
from securechat.scanner.providers.virustotal import VirusTotalProvider
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD
from tests.conftest import fast_config
from tests.scanner.fakes import VT_KEY, FakeVirusTotal, Fault
from tests.wire import Wire, b64, signed_up

PHISH = "http://evil.example/phish/login.php"


@pytest.fixture
async def scanning_relay(tmp_path: Path, fake_vt: FakeVirusTotal) -> AsyncIterator[RelayServer]:
    blocklist = tmp_path / "urlhaus.txt"
    blocklist.write_text("# test list\nevil.example/phish/\n")
    scanner = Scanner(
        providers=[VirusTotalProvider(VT_KEY, base_url=fake_vt.base_url, timeout=2.0)],
        blocklist=Blocklist([blocklist]),
    )
    server = RelayServer(fast_config(tmp_path / "relay", scan_rate_per_minute=60), scanner=scanner)
    await server.start()
    yield server
    await server.stop()


async def test_prefix_mode_finds_a_listed_url_and_never_sends_it(
    scanning_relay: RelayServer, tmp_path: Path
) -> None:
    """The client decides from full hashes; its frames hold neither the URL nor its host."""
    url = f"ws://127.0.0.1:{scanning_relay.port}"
    client = ChatClient(url, tmp_path / "c", reconnect=False)
    await client.connect()
    await client.register("alice", PASSWORD)
    sent: list[str] = []
    conn = client.relay._conn
    assert conn is not None
    original = conn.ws.send

    async def recording_send(message, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(message if isinstance(message, str) else message.decode())
        return await original(message, *args, **kwargs)

    conn.ws.send = recording_send  # type: ignore[method-assign]
    bad = await client.scan(PHISH)
    clean = await client.scan("https://www.example.org/docs")
    assert bad.rating == "malicious"
    assert clean.rating == "unknown"
    assert sent and all('"scan_prefixes"' in frame for frame in sent)
    for frame in sent:
        for secret in ("evil.example", "phish", "example.org", "docs"):
            assert secret not in frame
    await client.close()


async def test_full_lookup_uses_the_providers(
    scanning_relay: RelayServer, fake_vt: FakeVirusTotal
) -> None:
    """`scan_url` asks VirusTotal with the relay's key and answers with its verdict."""
    fake_vt.add("http://malware.example/x", malicious=12)
    wire = await signed_up(f"ws://127.0.0.1:{scanning_relay.port}", "alice")
    answer = await wire.call("scan_url", url="http://malware.example/x")
    assert answer["type"] == "scan_verdict"
    assert answer["verdict"]["rating"] == "malicious"
    assert len(fake_vt.requests) == 1


async def test_scanner_is_for_signed_in_users_only(scanning_relay: RelayServer) -> None:
    """Strangers cannot spend the relay's API quota."""
    wire = await Wire.open(f"ws://127.0.0.1:{scanning_relay.port}")
    answer = await wire.call("scan_url", url="http://malware.example/x")
    assert answer["code"] == "unauthorized"


async def test_per_user_scan_rate(scanning_relay: RelayServer) -> None:
    """One user cannot drain the providers: full lookups are rate limited per user."""
    wire = await signed_up(f"ws://127.0.0.1:{scanning_relay.port}", "alice")
    codes = []
    for i in range(40):
        answer = await wire.call("scan_url", url=f"http://site{i}.example/")
        codes.append(answer.get("code", answer["type"]))
    assert "rate_limited" in codes


async def test_slow_provider_does_not_hold_up_messages(
    scanning_relay: RelayServer, fake_vt: FakeVirusTotal
) -> None:
    """While a lookup waits on a slow provider, the same connection keeps sending."""
    fake_vt.fault = Fault.SLOW
    url = f"ws://127.0.0.1:{scanning_relay.port}"
    alice = await signed_up(url, "alice")
    await signed_up(url, "bob")
    alice.rid += 1
    scan_rid = alice.rid
    await alice.send({"type": "scan_url", "rid": scan_rid, "url": "http://slow.example/"})
    started = time.monotonic()
    answer = await alice.call("send", to="bob", eid="m1", body=b64(b"x"))
    assert answer["type"] == "accepted" and time.monotonic() - started < 1.0
    verdict = None
    while verdict is None:
        frame = await alice.recv(timeout=10)
        if frame.get("rid") == scan_rid:
            verdict = frame
    assert verdict["verdict"]["rating"] != "safe"


def test_prefix_helpers_agree_with_the_index() -> None:
    """The same hashing on both sides: a listed URL's prefixes find its full hash."""
    from securechat.scanner.prefix import PrefixIndex
    from securechat.scanner.verdict import Rating

    index = PrefixIndex()
    index.add_expression("evil.example/phish/", Rating.MALICIOUS, "test")
    answers = index.full_hashes_for(prefixes_for(PHISH))
    assert decide_from_hashes(PHISH, answers).rating == "malicious"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VT_API_KEY": "vt-secret-0123", "OTX_API_KEY": "otx-secret-4567"}, ["virustotal", "otx"]),
        ({"OTX_API_KEY": "otx-secret-4567"}, ["otx"]),
        ({}, []),
    ],
)
async def test_session_names_the_scanners_the_relay_has_keys_for(
    tmp_path: Path, env: dict[str, str], named: list[str]
) -> None:
    """The client's scan dialog names what a full lookup asks: the names, never the keys."""
    server = RelayServer(fast_config(tmp_path / "relay"), scanner=Scanner.from_env(env=env))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        await signed_up(url, "alice")
        wire = await Wire.open(url)
        session = await wire.call("login", username="alice", password=PASSWORD)
        assert session["online_scanners"] == named
        assert not [key for key in env.values() if key in json.dumps(session)]
        client = ChatClient(url, tmp_path / "c", reconnect=False)
        await client.connect()
        await client.register("bob", PASSWORD)
        assert client.online_scanners == tuple(named)
        await client.close()
    finally:
        await server.stop()
