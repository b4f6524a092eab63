"""Access to the PostgreSQL and Redis that this machine and CI provide.

Each test gets its own PostgreSQL schema or Redis key prefix, so runs never
collide. Without the services the tests skip, except under CI (the variable
CI is set), where a missing service is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.procs import free_port

PG_BASE = os.environ.get("SECURECHAT_TEST_PG", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SECURECHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unavailable(what: str, exc: BaseException) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but unavailable: {exc}")
    pytest.skip(f"{what} unavailable: {exc}")


async def pg_schema() -> AsyncIterator[str]:
    """A DSN whose search_path is a fresh schema, dropped afterwards."""
    import asyncpg

    schema = "sc_" + secrets.token_hex(6)
    try:
        admin = await asyncpg.connect(PG_BASE, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL at " + PG_BASE, exc)
        raise
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield f"{PG_BASE}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of its own; its keys are deleted afterwards."""
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        await client.aclose()
        unavailable("Redis at " + REDIS_URL, exc)
        raise
    prefix = "sctest:" + secrets.token_hex(6)
    try:
        yield prefix
    finally:
        async for key in client.scan_iter(match=prefix + ":*"):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Our own redis-server on another loopback port: it may be stopped, the shared one never."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = start_redis(binary, port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0", proc
    proc.kill()
    proc.wait()


def start_redis(binary: str, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return proc
