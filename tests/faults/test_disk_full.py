"""A full or read-only data directory: a clear `unavailable`, nothing lost, recovery after.

Three ways in: a real tmpfs that fills up (needs root and mount), SQLite's own
page limit (the same SQLITE_FULL from the same code path, anywhere), and
`query_only` for a store that cannot be written (root ignores chmod).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from securechat.client.relay_client import RelayClient
from securechat.protocol.limits import SUBPROTOCOL
from securechat.server.app import RelayServer
from securechat.server.store.sqlite import SQLiteStore
from tests.faults.harness import MemoryOutbox, eventually, integrity, log_problems
from tests.procs import RelayProcess
from tests.wire import PASSWORD, Wire, b64, signed_up

BODY = 64 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: a disk that really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path, leave: int) -> Path:
    """Writes a ballast file that leaves `leave` bytes free."""
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    ballast = directory / "ballast"
    with open(ballast, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return ballast


async def _send_until_refused(
    wire: Wire, to: str, prefix: str, limit: int = 200
) -> tuple[list[str], list[tuple[str, dict]]]:
    """Sends 64 KiB envelopes until the relay refuses five in a row (bounded)."""
    accepted: list[str] = []
    refused: list[tuple[str, dict]] = []
    for i in range(limit):
        eid = f"{prefix}{i}"
        answer = await wire.call("send", to=to, eid=eid, body=b64(_body(eid)))
        if answer["type"] == "accepted":
            accepted.append(eid)
            refused.clear()
        else:
            refused.append((eid, answer))
            if len(refused) == 5:
                break
    return accepted, refused


async def _reader(url: str, username: str) -> Wire:
    """Bob, able to read `deliver` frames over 1 MiB (see test_large_backlog.py)."""
    ws = await connect(url, subprotocols=[SUBPROTOCOL], compression=None, max_size=None)  # type: ignore[list-item]
    wire = Wire(ws)
    answer = await wire.call("login", username=username, password=PASSWORD)
    assert answer["type"] == "session", answer
    return wire


def _body(eid: str) -> bytes:
    return eid.encode().ljust(BODY, b".")


async def _collect(wire: Wire, timeout: float = 2.0) -> dict[str, bytes]:
    import base64

    got: dict[str, bytes] = {}
    with contextlib.suppress(TimeoutError):
        while True:
            push = await wire.next_push("deliver", timeout=timeout)
            for env in push["envelopes"]:
                got[env["eid"]] = base64.b64decode(env["body"])
            await wire.send(
                {"type": "ack", "rid": 0, "sids": [e["sid"] for e in push["envelopes"]]}
            )
    return got


def _assert_refusals_say_full(refused: list[tuple[str, dict]]) -> None:
    assert refused, "the relay never refused an envelope"
    for _, answer in refused:
        assert answer["type"] == "error" and answer["code"] == "unavailable", answer
        assert "full" in answer["message"], answer["message"]


async def test_real_disk_full_is_refused_clearly_and_recovers(small_fs: Path) -> None:
    """A tmpfs fills up: `unavailable` saying so, no corruption, delivery once space returns."""
    relay = RelayProcess(small_fs / "relay")
    await asyncio.to_thread(relay.start)
    try:
        alice = await signed_up(relay.url, "alice")
        await (await signed_up(relay.url, "bob")).close()
        ballast = _fill(small_fs, leave=1024 * 1024)

        accepted, refused = await _send_until_refused(alice, "bob", "full")
        _assert_refusals_say_full(refused)
        assert relay.proc is not None and relay.proc.poll() is None, "the relay died"
        db = relay.data_dir / "relay.sqlite3"
        assert integrity(db) == "ok"

        ballast.unlink()
        for eid, _ in refused:
            answer = await alice.call("send", to="bob", eid=eid, body=b64(_body(eid)))
            assert answer["type"] == "accepted", answer
        bob = await _reader(relay.url, "bob")
        got = await _collect(bob)
        expected = accepted + [eid for eid, _ in refused]
        assert sorted(got) == sorted(expected)
        assert all(got[eid] == _body(eid) for eid in expected)
        await asyncio.to_thread(relay.terminate)
        assert integrity(db) == "ok"
        assert log_problems(relay.log) == []
    finally:
        await asyncio.to_thread(relay.kill)


def _sqlite(relay: RelayServer) -> SQLiteStore:
    assert isinstance(relay.store, SQLiteStore)
    return relay.store


async def _fill_store(relay: RelayServer) -> tuple[str, Wire, list[str], list[tuple[str, dict]]]:
    """Caps SQLite's file 64 pages above its size, then sends until refused."""
    url = f"ws://127.0.0.1:{relay.port}"
    db = _sqlite(relay)._db
    alice = await signed_up(url, "alice")
    await (await signed_up(url, "bob")).close()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages + 64}")
    accepted, refused = await _send_until_refused(alice, "bob", "full")
    return url, alice, accepted, refused


async def test_store_full_loses_nothing_and_recovers(relay: RelayServer) -> None:
    """SQLite's page limit reached: `unavailable`, accepted ones intact, then recovery."""
    url, alice, accepted, refused = await _fill_store(relay)
    db = _sqlite(relay)._db
    assert refused and all(a["code"] == "unavailable" for _, a in refused), refused
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    db.execute("PRAGMA max_page_count=1073741823")
    for eid, _ in refused:
        answer = await alice.call("send", to="bob", eid=eid, body=b64(_body(eid)))
        assert answer["type"] == "accepted", answer
    bob = await _reader(url, "bob")
    got = await _collect(bob)
    expected = accepted + [eid for eid, _ in refused]
    assert sorted(got) == sorted(expected)
    assert all(got[eid] == _body(eid) for eid in expected)


async def test_store_full_error_says_the_disk_is_full(relay: RelayServer) -> None:
    """The refusal tells the operator's users why: the disk is full, not a vague failure."""
    _, _, _, refused = await _fill_store(relay)
    _assert_refusals_say_full(refused)


async def test_read_only_store_is_refused_clearly_and_recovers(relay: RelayServer) -> None:
    """A store that cannot be written: `unavailable` saying read-only, reads still served."""
    url = f"ws://127.0.0.1:{relay.port}"
    db = _sqlite(relay)._db
    alice = await signed_up(url, "alice")
    await (await signed_up(url, "bob")).close()
    before = await alice.call("send", to="bob", eid="before", body=b64(b"kept"))
    assert before["type"] == "accepted"
    db.execute("PRAGMA query_only=1")

    answer = await alice.call("send", to="bob", eid="during", body=b64(b"x"))
    assert answer["type"] == "error" and answer["code"] == "unavailable", answer
    assert "read-only" in answer["message"], answer["message"]
    assert (await alice.call("watch", users=["bob"]))["type"] == "presence_list"
    assert await relay.store.watchers_of("bob") == set()  # recorded at the next watch

    db.execute("PRAGMA query_only=0")
    assert (await alice.call("send", to="bob", eid="during", body=b64(b"x")))["type"] == "accepted"
    assert (await alice.call("watch", users=["bob"]))["type"] == "presence_list"
    assert await relay.store.watchers_of("bob") == {"alice"}
    bob = await _reader(url, "bob")
    assert sorted(await _collect(bob)) == ["before", "during"]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_client_outbox_drains_once_space_returns(relay: RelayServer) -> None:
    """What the real client queued while the relay was full goes out when space returns."""
    url = f"ws://127.0.0.1:{relay.port}"
    db = _sqlite(relay)._db
    outbox = MemoryOutbox()
    alice = RelayClient(url, outbox, backoff_base=0.05, backoff_max=0.5)
    await alice.connect()
    await alice.register("alice", PASSWORD, os.urandom(32))
    await alice.login("alice", PASSWORD)
    await (await signed_up(url, "bob")).close()
    try:
        db.execute("PRAGMA query_only=1")
        await alice.send_envelope("bob", b"queued while full", eid="queued")
        assert [item.eid for item in outbox.outbox_items()] == ["queued"]

        db.execute("PRAGMA query_only=0")
        await alice.send_envelope("bob", b"after", eid="after")
        assert "after" in outbox.accepted
        assert await eventually(lambda: "queued" in outbox.accepted, timeout=3), (
            "the envelope refused with `unavailable` stays in the outbox until a reconnect"
        )
    finally:
        await alice.close()
