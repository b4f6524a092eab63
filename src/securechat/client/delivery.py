"""What the client does about envelopes the relay drops: report gaps, send again.

The pure rules are in `sequence` (numbers and windows); this module applies
them to the vault: which peers have a gap overdue, which unconfirmed
messages are due to be sent again. `ChatClient` runs both every few seconds
and does the sending.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from securechat.client import sequence
from securechat.client.events import MessagesMissing
from securechat.client.relay_client import OutboxItem
from securechat.client.vault_store import Vault


def sent_count_key(peer: str) -> str:
    return f"txseq:{peer}"


def window_key(peer: str) -> str:
    return f"rxseq:{peer}"


def overdue_gaps(vault: Vault, now: float, after: float) -> list[MessagesMissing]:
    """Closes every gap open longer than `after` and says what it cost, once."""
    reports = []
    for conversation in vault.conversations():
        peer = conversation.peer
        window = sequence.decode_window(vault.get(window_key(peer)))
        if window is None:
            continue
        window, lost = sequence.overdue(window, now, after)
        if lost:
            vault.put(window_key(peer), sequence.encode(window))
            reports.append(MessagesMissing(peer, lost))
    return reports


def due_retries(
    vault: Vault,
    now: float,
    retry_after: float,
    max_retries: int,
    session_id: Callable[[str], bytes | None],
) -> list[OutboxItem]:
    """Unconfirmed messages to send again: the same body under the same eid.

    A relay still holding the first copy stores no second one, and a peer that
    has it answers with its receipt again. The wait doubles with each attempt;
    a message given up, or sealed in a session the peer no longer holds, is
    forgotten (`session_id` gives a peer's current session, None without one).
    """
    queued = {item.eid for item in vault.outbox_items()}
    due = []
    for entry in vault.unconfirmed():
        if entry.eid in queued:
            continue
        if entry.attempts >= max_retries or session_id(entry.peer) != entry.session_id:
            vault.drop_unconfirmed(entry.eid, entry.peer)
            continue
        if now - (entry.last_try or entry.sent_at) < retry_after * 2**entry.attempts:
            continue
        vault.update_unconfirmed(
            msgspec.structs.replace(entry, attempts=entry.attempts + 1, last_try=now)
        )
        due.append(OutboxItem(entry.eid, entry.peer, entry.body))
    return due
