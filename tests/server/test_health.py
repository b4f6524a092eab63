"""Liveness and readiness: /readyz follows the store and the bus, /healthz only the process."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from securechat.server.app import RelayServer
from tests.conftest import fast_config
from tests.services import private_redis, start_redis
from tests.wire import b64, signed_up

__all__ = ["private_redis"]  # the fixture, used by name


async def _ready_within(server: RelayServer, ready: bool, seconds: float) -> dict[str, object]:
    """Polls /readyz on the operator listener until it says `ready`; its JSON body."""
    url = f"http://127.0.0.1:{server.metrics_port}/readyz"
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as http:
        while True:
            answer = await http.get(url)
            body: dict[str, object] = answer.json()
            assert (answer.status_code == 200) == body["ready"]
            if body["ready"] == ready or time.monotonic() > deadline:
                assert body["ready"] == ready, body
                return body
            await asyncio.sleep(0.1)


async def test_readyz_fails_within_two_seconds_of_redis_going_and_recovers(
    tmp_path: Path,
    private_redis: tuple[str, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis killed: 503 naming the bus within 2 s, /healthz still 200, one log line each way."""
    url, proc = private_redis
    server = RelayServer(fast_config(tmp_path / "relay", bus=url))
    await server.start()
    try:
        await _ready_within(server, True, 5)
        caplog.set_level(logging.INFO, logger="securechat")
        caplog.clear()
        proc.kill()
        proc.wait()
        body = await _ready_within(server, False, 2)
        assert body == {"ready": False, "store": "ok", "bus": "down"}
        async with httpx.AsyncClient() as http:
            live = await http.get(f"http://127.0.0.1:{server.port}/healthz")
            public = await http.get(f"http://127.0.0.1:{server.port}/readyz")
        assert live.status_code == 200 and public.status_code == 503
        await asyncio.sleep(3)  # the listener retries every second: still one line
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        restarted = start_redis(shutil.which("redis-server") or "redis-server", port, tmp_path)
        try:
            back = await _ready_within(server, True, 5)
            assert back == {"ready": True, "store": "ok", "bus": "ok"}
            lines = [r.getMessage() for r in caplog.records if "redis" in r.getMessage()]
        finally:
            restarted.kill()
            restarted.wait()
    finally:
        await server.stop()
    assert [m.split(" ", 2)[1] for m in lines] == ["unavailable", "reachable:"], lines


async def test_readyz_fails_while_the_store_cannot_commit(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock: 503 naming the store, then back to 200."""
    server = RelayServer(fast_config(tmp_path / "relay"))
    await server.start()
    try:
        await _ready_within(server, True, 5)
        blocker = sqlite3.connect(tmp_path / "relay" / "relay.sqlite3", timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            body = await _ready_within(server, False, 4)
            assert body == {"ready": False, "store": "down", "bus": "ok"}
        finally:
            blocker.rollback()
            blocker.close()
        await _ready_within(server, True, 8)
    finally:
        await server.stop()


async def test_the_store_is_probed_only_while_no_write_batch_commits(tmp_path: Path) -> None:
    """Commits every 50 ms prove the store writable: no probe then; idle, one a second."""
    server = RelayServer(fast_config(tmp_path / "relay"))
    await server.start()
    probes: list[float] = []
    probe = server.store.ping

    async def counted() -> None:
        probes.append(time.monotonic())
        await probe()

    server.store.ping = counted  # type: ignore[method-assign]
    try:
        url = f"ws://127.0.0.1:{server.port}"
        alice = await signed_up(url, "alice")
        await signed_up(url, "bob")
        busy_from = time.monotonic()
        for i in range(50):
            answer = await alice.call("send", to="bob", eid=f"m{i}", body=b64(b"x"))
            assert answer["type"] == "accepted"
            await asyncio.sleep(0.05)
        busy_until = time.monotonic()
        assert busy_until - busy_from > 2.5
        # The first round may probe before the first commit; none after it while busy.
        assert [t for t in probes if busy_from + 1.2 < t < busy_until] == []
        await asyncio.sleep(2.5)
        assert len([t for t in probes if t > busy_until]) >= 1
        await _ready_within(server, True, 1)
    finally:
        await server.stop()
