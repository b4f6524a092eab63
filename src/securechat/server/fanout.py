"""One group send -> N inbox rows, one `accepted`: the group's write batching and wakes.

A `group_send` waits, like a one-to-one `send`, for the next write batch: one
transaction for every group send received meanwhile, which stores each body
once with a delivery row per other member (`GroupStore.group_send_batch`).
Its copies leave only after that commit, so the batch waits a delay of its
own (`group_commit_delay`, shorter than the one-to-one `commit_delay`).
Then the members' connections on this node are woken, then the other nodes
(through the bus), and only then is the sender told `accepted`: from then on
the message is stored. Group batches are apart from the one-to-one batches, so
the one-to-one path is unchanged; the two share the inboxes and the sids.
Re-sending the same (sender, eid) is answered `accepted` again, as for `send`,
and the first copy is announced again to the members still waiting for it: a
sender sends again when it never heard the answer, which is when a node may have
died between storing a copy and announcing it to the other nodes.

A member whose queue is full (`queue_max_count`, `queue_max_bytes`: the numbers and
the rule of a one-to-one `send`) gets no copy of a message, and `accepted` names
them in `full`: one member away for months does not stop the group for the others.
Handshake messages go to every member, full or not, and count: a member who missed
one could not follow the group any more (so do Commits, server/groups.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from securechat.errors import StorageFullError
from securechat.protocol import frames as F
from securechat.protocol import group_frames as G
from securechat.protocol.codec import encode_str
from securechat.protocol.errors import ErrorCode
from securechat.server.relay import Outlet, Relay
from securechat.server.store import GroupStore
from securechat.server.store.records import (
    WELCOME_EID_SUFFIX,
    Fanned,
    GroupBody,
    GroupKind,
    GroupSendOutcome,
    NewGroupSend,
    StoredEnvelope,
)

log = logging.getLogger("securechat.relay")

NOT_A_MEMBER = "you are not a member of this group"


@dataclass
class _Pending:
    send: NewGroupSend
    outlet: Outlet
    rid: int


@dataclass
class Fanout:
    store: GroupStore
    relay: Relay
    clock: Callable[[], float] = time.time
    commit_delay: float = 0.0
    _batch: list[_Pending] = field(default_factory=list)
    _flush_task: asyncio.Task[None] | None = None
    _timer: asyncio.TimerHandle | None = None

    def submit(self, outlet: Outlet, sender: str, frame: G.GroupSend) -> None:
        """Queues a send for the next group write batch; `accepted` follows it."""
        send = NewGroupSend(
            frame.group,
            frame.epoch,
            sender,
            frame.eid,
            frame.body,
            self.clock(),
            G.is_handshake(frame.group, frame.body),
        )
        self._batch.append(_Pending(send, outlet, frame.rid))
        if self._timer is None and (self._flush_task is None or self._flush_task.done()):
            self._timer = asyncio.get_running_loop().call_later(self.commit_delay, self._due)

    def _due(self) -> None:
        self._timer = None
        self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, []
            await self._write(batch)

    async def drain(self) -> None:
        """Waits until every send received is stored and answered (used on shutdown)."""
        while self._batch or (self._flush_task is not None and not self._flush_task.done()):
            if self._flush_task is not None and not self._flush_task.done():
                await self._flush_task
            else:
                if self._timer is not None:
                    self._timer.cancel()
                self._due()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self.store.group_send_batch(
                [p.send for p in batch], self.relay.queue_limits
            )
        except Exception as exc:
            text = (
                str(exc)
                if isinstance(exc, StorageFullError)
                else "the relay could not store the message; send it again later"
            )
            log.error("group write failed: %s", type(exc).__name__)
            for pending in batch:
                pending.outlet.push(_error(pending.rid, ErrorCode.UNAVAILABLE, text))
            return
        await self.deliver(
            [
                (outcome.fanned, outcome.body or pending.send.stored_body())
                for pending, outcome in zip(batch, outcomes, strict=True)
                if outcome.fanned is not None
            ]
        )
        metrics = self.relay.metrics
        metrics.group_messages_accepted += sum(o.status == "stored" for o in outcomes)
        metrics.group_copies_withheld += sum(len(o.full) for o in outcomes)
        answered: set[Outlet] = set()
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.outlet.push(_answer(pending, outcome))
            answered.add(pending.outlet)
        for outlet in answered:
            outlet.flush()

    async def deliver(self, fanned: Sequence[tuple[Fanned, GroupBody]]) -> None:
        """Hands stored deliveries to the recipients' connections here, then tells the
        other nodes (before the sender's answer, as for one-to-one envelopes)."""
        woken: set[Outlet] = set()
        items: dict[str, list[int]] = defaultdict(list)
        online = self.relay.online
        for delivery, body in fanned:
            for recipient in delivery.recipients:
                items[recipient].append(delivery.sid)
                outlets = online.get(recipient)
                if not outlets:
                    continue
                envelope = StoredEnvelope(
                    delivery.sid,
                    recipient,
                    body.sender,
                    body.eid,
                    body.body,
                    body.ts,
                    body.group,
                    delivery.kind,
                    delivery.epoch,
                )
                for outlet in outlets:
                    outlet.wake_delivery(envelope)
                    woken.add(outlet)
        for outlet in woken:
            outlet.flush()
        # Their queues grew outside the one-to-one accounting: counted again when needed.
        self.relay.forget_usage(*items)
        if items and self.relay.bus.shared:
            await self.relay.bus.wake(items)


def _answer(pending: _Pending, outcome: GroupSendOutcome) -> str:
    send = pending.send
    match outcome.status:
        case "stored" | "resent":
            return encode_str(F.Accepted(rid=pending.rid, eid=send.eid, full=list(outcome.full)))
        case "conflict":
            return encode_str(
                G.GroupConflict(rid=pending.rid, group=send.group, epoch=outcome.epoch)
            )
        case "forbidden":
            return _error(pending.rid, ErrorCode.FORBIDDEN, NOT_A_MEMBER)
        case _:
            return _error(
                pending.rid,
                ErrorCode.CONFLICT,
                f"envelope id {send.eid} was already used for another message",
            )


def _error(rid: int, code: ErrorCode, message: str) -> str:
    return encode_str(F.Error(rid=rid, code=code.value, message=message))


_DELIVERY_KIND: dict[GroupKind, G.DeliveryKind] = {
    "commit": "commit",
    "welcome": "welcome",
    "welcome_file": "welcome",
    "message": "message",
}


def group_envelope(envelope: StoredEnvelope) -> G.GroupEnvelope:
    """A stored group delivery as its recipient gets it."""
    assert envelope.group is not None and envelope.kind is not None
    assert envelope.epoch is not None
    as_file = envelope.kind == "welcome_file"
    return G.GroupEnvelope(
        sid=envelope.sid,
        group=envelope.group,
        kind=_DELIVERY_KIND[envelope.kind],
        epoch=envelope.epoch,
        sender=envelope.sender,
        eid=envelope.eid.removesuffix(WELCOME_EID_SUFFIX),
        body=b"" if as_file else envelope.body,
        ts=envelope.ts,
        file=envelope.body.decode() if as_file else None,
    )
