"""`Store` on one SQLite database file, the embedded default: one module per concern.

Each concern is a class over the one connection of `base.SQLiteBase`;
`SQLiteStore` is all of them. The schema is `migrations.py`.
"""

from __future__ import annotations

from securechat.server.store.sqlite.accounts import SQLiteAccounts
from securechat.server.store.sqlite.directory import SQLiteDirectory
from securechat.server.store.sqlite.files import SQLiteFiles
from securechat.server.store.sqlite.groups import SQLiteGroups
from securechat.server.store.sqlite.key_packages import SQLiteKeyPackages
from securechat.server.store.sqlite.limits import SQLiteLimits


class SQLiteStore(
    SQLiteAccounts, SQLiteLimits, SQLiteGroups, SQLiteDirectory, SQLiteKeyPackages, SQLiteFiles
):
    """`Store` on one SQLite database file."""


__all__ = ["SQLiteStore"]
