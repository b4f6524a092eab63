"""Fixtures shared by every test: a relay on a free loopback port and quick bcrypt."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.server.app import RelayServer
from securechat.server.config import ServerConfig

REPO = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))


def fast_config(data_dir: Path, **overrides: object) -> ServerConfig:
    """bcrypt cost 4 keeps tests quick; everything else is the production default."""
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": str(data_dir),
        "bcrypt_cost": 4,
        "metrics_listen": "127.0.0.1:0",
    }
    values.update(overrides)
    return ServerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayServer]:
    server = RelayServer(fast_config(tmp_path / "relay"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def relay_url(relay: RelayServer) -> str:
    return f"ws://127.0.0.1:{relay.port}"
