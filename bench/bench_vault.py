"""What `secure_delete` and the checkpoint after a deletion cost the client vault.

Two workloads on a real vault on disk, each with `secure_delete` on (as shipped) and
off (the baseline, SQLite's usual default):
- receiving a message: `record_incoming` with a 2 KiB session state replacing the
  previous one (what every received message writes), per message;
- deleting: `Vault.delete` of a 2 KiB record (with its WAL checkpoint) against a
  plain DELETE in a transaction with secure_delete off.

Run: .venv/bin/python -m bench vault
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.common import Row, log, row, scratch
from securechat.client.records import MessageRecord
from securechat.client.vault_store import Vault
from securechat.crypto import generate_recovery_code

NAME = "vault"
STATE = 2048


def _open(directory: Path, secure: bool) -> Vault:
    vault = Vault.create(directory, "benchmark password", generate_recovery_code())
    vault._db.execute(f"PRAGMA secure_delete={'ON' if secure else 'OFF'}")
    return vault


def _receive(directory: Path, secure: bool, count: int) -> float:
    """Milliseconds per received message."""
    vault = _open(directory, secure)
    try:
        start = time.perf_counter()
        for i in range(count):
            record = MessageRecord(
                peer="bob", outgoing=False, text=f"message {i}", ts=i, eid=f"e{i}"
            )
            vault.record_incoming("bob", f"e{i}", record, {"session:bob": os.urandom(STATE)})
        return 1000 * (time.perf_counter() - start) / count
    finally:
        vault.close()


def _delete(directory: Path, shipped: bool, count: int) -> float:
    """Milliseconds per deleted record: `Vault.delete` as shipped, or a bare DELETE."""
    vault = _open(directory, shipped)
    try:
        for i in range(count):
            vault.put(f"record:{i}", os.urandom(STATE))
        start = time.perf_counter()
        for i in range(count):
            if shipped:
                vault.delete(f"record:{i}")
            else:
                with vault._tx() as db:
                    db.execute("DELETE FROM kv WHERE name = ?", (vault._tag("kv", f"record:{i}"),))
        return 1000 * (time.perf_counter() - start) / count
    finally:
        vault.close()


def run(quick: bool = False) -> list[Row]:
    count = 200 if quick else 1000
    repeats = 2 if quick else 5
    receive_on, receive_off, delete_on, delete_off = [], [], [], []
    with scratch("vault") as tmp:
        for repeat in range(repeats):
            receive_on.append(_receive(tmp / f"r-on-{repeat}", True, count))
            receive_off.append(_receive(tmp / f"r-off-{repeat}", False, count))
            delete_on.append(_delete(tmp / f"d-on-{repeat}", True, count // 4))
            delete_off.append(_delete(tmp / f"d-off-{repeat}", False, count // 4))
            log(
                f"receive {receive_on[-1]:.3f} vs {receive_off[-1]:.3f} ms, "
                f"delete {delete_on[-1]:.3f} vs {delete_off[-1]:.3f} ms"
            )
    return [
        row(
            NAME,
            "vault: receive a message (2 KiB state), secure_delete on vs off",
            receive_on,
            "ms",
            receive_off,
            note="record_incoming per message, WAL, synchronous=NORMAL",
        ),
        row(
            NAME,
            "vault: delete a record with secure_delete and a WAL checkpoint vs a bare DELETE",
            delete_on,
            "ms",
            delete_off,
            note="Vault.delete: PRAGMA wal_checkpoint(TRUNCATE) after each deletion",
        ),
    ]
