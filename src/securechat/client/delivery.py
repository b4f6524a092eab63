"""What the client does about envelopes the relay drops: report gaps, send again.

The pure rules are in `sequence` (numbers and windows); this module applies
them to the vault: which peers have a gap overdue, which unconfirmed
messages are due to be sent again. `DeliveryWatch` runs both every few
seconds and does the sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import msgspec

from securechat.client import sequence
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.events import MessagesMissing
from securechat.client.relay_client import OutboxItem
from securechat.client.vault_store import Vault
from securechat.errors import SecureChatError


def overdue_gaps(vault: Vault, now: float, after: float) -> list[MessagesMissing]:
    """Closes every gap open longer than `after` and says what it cost, once."""
    reports = []
    for conversation in vault.conversations():
        peer = conversation.peer
        window = sequence.decode_window(vault.get(K.received_window(peer)))
        if window is None:
            continue
        window, lost = sequence.overdue(window, now, after)
        if lost:
            vault.put(K.received_window(peer), sequence.encode(window))
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


class DeliveryWatch:
    """Reports overdue gaps and sends unconfirmed messages again, for as long as we run."""

    retry_after = 60.0
    """Seconds before an unconfirmed message is sent again; doubles with each attempt."""
    max_retries = 8
    missing_after = 180.0
    """Seconds a numbered message may lag behind a later one before it is reported missing."""
    check_every = 5.0

    def __init__(self, ctx: ClientContext, session_id: Callable[[str], bytes | None]) -> None:
        self._ctx = ctx
        self._session_id = session_id

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            with contextlib.suppress(SecureChatError):
                self.report_missing()
                await self.retry_unconfirmed()

    def report_missing(self) -> None:
        for report in overdue_gaps(self._ctx.need_vault(), time.time(), self.missing_after):
            self._ctx.emit(report)

    async def retry_unconfirmed(self) -> None:
        vault = self._ctx.need_vault()
        if not self._ctx.relay.connected:
            return
        due = due_retries(vault, time.time(), self.retry_after, self.max_retries, self._session_id)
        for item in due:
            vault.outbox_add(item)
            await self._ctx.relay.transmit(item)
