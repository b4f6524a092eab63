"""The fake VirusTotal serves the relay's scanner tests too; `store` is each store in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.server.store import Store
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.sqlite import SQLiteStore
from tests.scanner.fakes import fake_vt  # noqa: F401 (a fixture)
from tests.services import pg_schema


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "store.sqlite3")
        yield sqlite
        await sqlite.close()
        return
    async for dsn in pg_schema():
        pg = await PostgresStore.connect(dsn, min_size=1, max_size=3)
        yield pg
        await pg.close()
