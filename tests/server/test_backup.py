"""Backups of a running SQLite relay, and their restore."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from securechat.errors import ConfigError, StoreError
from securechat.server.app import RelayServer
from securechat.server.backup import backup, restore
from tests.conftest import fast_config
from tests.wire import Wire, b64, logged_in, signed_up


async def _everything_delivered(wire: Wire, quiet: float = 1.5) -> list[str]:
    """Every envelope the relay delivers to this connection until it goes quiet."""
    eids: list[str] = []
    with contextlib.suppress(TimeoutError):
        while True:
            push = await wire.next_push("deliver", timeout=quiet)
            eids += [env["eid"] for env in push["envelopes"]]
            sids = [e["sid"] for e in push["envelopes"]]
            await wire.send({"type": "ack", "rid": 0, "sids": sids})
    return eids


async def test_backup_taken_while_sending_restores_every_accepted_message(tmp_path: Path) -> None:
    """Messages accepted before the backup began are all delivered by a relay restored from
    it; those sent meanwhile arrive whole or not at all, and none twice."""
    live = RelayServer(fast_config(tmp_path / "live"))
    await live.start()
    url = f"ws://127.0.0.1:{live.port}"
    try:
        await (await signed_up(url, "bob")).close()
        alice = await signed_up(url, "alice")
        for i in range(100):
            answer = await alice.call("send", to="bob", eid=f"before{i}", body=b64(b"x" * 200))
            assert answer["type"] == "accepted"
        during: list[str] = []

        async def keep_sending() -> None:
            for i in range(300):
                eid = f"during{i}"
                answer = await alice.call("send", to="bob", eid=eid, body=b64(b"y" * 200))
                if answer["type"] == "accepted":
                    during.append(eid)

        sender = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.05)
        copied = await asyncio.to_thread(backup, live.config, tmp_path / "backup")
        await sender
        assert copied.database_bytes > 0 and during
    finally:
        await live.stop()
    restore_command = ["restore", str(tmp_path / "backup")]
    restore_command += ["--data-dir", str(tmp_path / "restored")]
    out = subprocess.run(
        [sys.executable, "-m", "securechat.server.cli", *restore_command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    restored = RelayServer(fast_config(tmp_path / "restored"))
    await restored.start()
    try:
        bob = await logged_in(f"ws://127.0.0.1:{restored.port}", "bob")
        got = await _everything_delivered(bob)
    finally:
        await restored.stop()
    assert len(got) == len(set(got))
    assert {f"before{i}" for i in range(100)} <= set(got)
    assert set(got) - {f"before{i}" for i in range(100)} <= set(during)


def test_restore_refuses_a_data_directory_in_use(tmp_path: Path) -> None:
    """A restore never overwrites a relay's database, and backup refuses PostgreSQL."""
    config = fast_config(tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "relay.sqlite3").write_bytes(b"")
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "securechat-backup.json").write_text('{"format": 1}')
    with pytest.raises(StoreError, match="restore only into an empty data directory"):
        restore(tmp_path / "bk", config)
    with pytest.raises(ConfigError, match="pg_dump"):
        backup(fast_config(tmp_path, store="postgresql://db/x"), tmp_path / "out")
