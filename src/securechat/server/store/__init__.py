"""The relay's storage: records, one Protocol per concern, and the schema.

- `records`: what the stores hand over (accounts, envelopes, keys, files...).
- `protocols`: one Protocol per concern, and `Store`, all of them together.
- `schema`: what a user owns and the schema versions; inboxes per device.
- `sqlite/`, `postgres/`: the two implementations, one module per concern,
  with their numbered migrations.

Services import from here; only `server/app.py` picks an implementation.
"""

from __future__ import annotations

from securechat.server.store.protocols import (
    AccountStore,
    FileStore,
    GroupStore,
    KeyDirectoryStore,
    KeyPackageStore,
    Operations,
    QueueStore,
    ScanCacheStore,
    SessionStore,
    Store,
    ThrottleStore,
)
from securechat.server.store.records import (
    Account,
    FileRecord,
    HandedKeyPackage,
    KeyBundle,
    NewEnvelope,
    SessionRecord,
    StoredEnvelope,
    Throttle,
)

__all__ = [
    "Account",
    "AccountStore",
    "FileRecord",
    "FileStore",
    "GroupStore",
    "HandedKeyPackage",
    "KeyBundle",
    "KeyDirectoryStore",
    "KeyPackageStore",
    "NewEnvelope",
    "Operations",
    "QueueStore",
    "ScanCacheStore",
    "SessionRecord",
    "SessionStore",
    "Store",
    "StoredEnvelope",
    "Throttle",
    "ThrottleStore",
]
