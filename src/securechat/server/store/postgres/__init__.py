"""`Store` on PostgreSQL, for several relay nodes sharing one database: one module per concern.

Each concern is a class over the connection pool of `base.PostgresBase`;
`PostgresStore` is all of them. The schema is `migrations.py`.
"""

from __future__ import annotations

from securechat.server.store.postgres.accounts import PostgresAccounts
from securechat.server.store.postgres.directory import PostgresDirectory
from securechat.server.store.postgres.files import PostgresFiles
from securechat.server.store.postgres.groups import PostgresGroups
from securechat.server.store.postgres.key_packages import PostgresKeyPackages
from securechat.server.store.postgres.limits import PostgresLimits
from securechat.server.store.postgres.queue import PostgresQueue


class PostgresStore(
    PostgresAccounts,
    PostgresLimits,
    PostgresQueue,
    PostgresGroups,
    PostgresDirectory,
    PostgresKeyPackages,
    PostgresFiles,
):
    """`Store` on PostgreSQL."""


__all__ = ["PostgresStore"]
