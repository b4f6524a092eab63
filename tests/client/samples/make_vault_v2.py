"""Writes `vault-v2/`: the fixed sample of a vault holding MessageRecord v2 records.

Run once, from the repository root, when the format was introduced:

    .venv/bin/python -m tests.client.samples.make_vault_v2

and commit the result. Never run it again over the committed sample: the point
of a sample is that it was written by an older release and must keep opening
(`tests/client/test_vault_store.py`). A later format gets a `vault-v3/` of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from securechat.client.conversation import ConversationId
from securechat.client.records import MessageRecord
from securechat.client.relay_client import OutboxItem
from securechat.client.vault_store import Vault

HERE = Path(__file__).parent / "vault-v2"
PASSWORD = "sample vault password"
RECOVERY_CODE = "0123-4567-89ab-cdef-ghjk-mnpq"
OWNER = "alice"


def write(directory: Path) -> None:
    bob, carol = ConversationId.direct("bob").key, ConversationId.direct("carol").key
    vault = Vault.create(directory, PASSWORD, RECOVERY_CODE, OWNER)
    vault.put("identity", b"sample identity bytes")
    vault.add_message(
        MessageRecord(
            peer="bob", conversation=bob, sender=OWNER, outgoing=True, text="hello bob", ts=1.0
        )
    )
    vault.record_incoming(
        "bob",
        "e2",
        MessageRecord(
            peer="bob",
            conversation=bob,
            sender="bob",
            outgoing=False,
            text="hi alice, lunch at noon?",
            ts=2.0,
            eid="e2",
            received=2.5,
        ),
        {},
    )
    vault.add_message(
        MessageRecord(
            peer="bob",
            conversation=bob,
            outgoing=False,
            kind="system",
            text="you kept bob's pinned key",
            ts=3.0,
        )
    )
    vault.record_incoming(
        "carol",
        "e4",
        MessageRecord(
            peer="carol",
            conversation=carol,
            sender="carol",
            outgoing=False,
            kind="file",
            file_id="blob123",
            text="photo.jpg (1.0 KB)",
            ts=4.0,
            eid="e4",
            received=4.0,
        ),
        {},
    )
    vault.outbox_add(OutboxItem("e9", "bob", b"ciphertext"))
    vault.close()
    for leftover in directory.glob("vault.sqlite3-*"):
        leftover.unlink()


if __name__ == "__main__":
    if HERE.exists():
        sys.exit(f"{HERE} exists: a committed sample is never regenerated")
    write(HERE)
