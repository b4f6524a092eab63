"""Routing: accept envelopes, persist them in write batches, deliver them in order.

The path of one envelope: a `send` frame is queued for the next write
batch, one transaction for everything sent meanwhile. When the store hands
sids out itself (SQLite, one node), the recipient's connections get the
envelope at once, before the commit; if the recipient acknowledges it before
the commit, it is never written. Otherwise (PostgreSQL, several nodes) the
connections are woken after the commit. The sender gets `accepted` only
after the commit: from then on the envelope is stored or acknowledged. A
connection sends its stored backlog page by page first, then live
envelopes, several per `deliver` frame when they pile up. Envelopes leave
the store only when the recipient acknowledges them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from securechat.errors import StorageFullError, StoreError
from securechat.protocol import frames as F
from securechat.protocol.codec import encode_str
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import MAX_DELIVER_BATCH, MAX_WATCH_USERS
from securechat.server.bus import Bus, LocalBus
from securechat.server.metrics import Metrics
from securechat.server.store import NewEnvelope, QueueStore, StoredEnvelope
from securechat.server.store.records import QueueLimits

log = logging.getLogger("securechat.relay")

ACK_DELAY = 0.05
"""Seconds an acknowledgement may wait to share a transaction with new envelopes."""

EARLY_DELIVERY_MAX_BATCH = 64
"""Past this many envelopes waiting for one commit the relay is saturated: later ones
wait for the commit and leave with its `accepted` frames, one write per connection
instead of two, where delivering early would gain no latency anyway."""


class Outlet(Protocol):
    """What the relay and revocation need of a connection: somewhere to put frames, and
    the session it acts for, which revocation can end.

    The connection implements it and the relay never imports the connection, so
    dependencies point one way (connection -> relay), as in websockets.
    """

    username: str | None
    token: str | None

    def push(self, frame: str | bytes) -> None: ...
    def wake_delivery(self, envelope: StoredEnvelope | None) -> None: ...
    def wake_backlog(self) -> None: ...
    def flush(self) -> None: ...
    def end_session(self, reason: str) -> None:
        """Stops acting for the user at once, then closes (its session was revoked)."""


@dataclass
class _Pending:
    envelope: NewEnvelope
    outlet: Outlet
    rid: int
    delivered_to: tuple[Outlet, ...] = ()
    """Connections that got it before the commit (stores with `reserve_sid`)."""
    acknowledged: bool = False
    """The recipient acknowledged it before the commit: it is not written."""


@dataclass
class _QueueUsage:
    count: int
    bytes: int


@dataclass
class Relay:
    store: QueueStore
    metrics: Metrics
    queue_max_count: int = 10_000
    queue_max_bytes: int = 256 * 1024 * 1024
    clock: Callable[[], float] = time.time
    bus: Bus = field(default_factory=LocalBus)
    commit_delay: float = 0.005
    online: dict[str, set[Outlet]] = field(default_factory=lambda: defaultdict(set))
    watchers: dict[str, set[Outlet]] = field(default_factory=lambda: defaultdict(set))
    waiting_watches: dict[Outlet, set[str]] = field(default_factory=dict)
    """Users a connection asked to watch who do not follow its user (yet): presence is
    shared only between users who follow each other. Their own watch starts it
    (`watches_started`): the recipient of a first envelope usually watches its sender
    before the sender's client watches back."""
    _batch: list[_Pending] = field(default_factory=list)
    _acks: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    batches_in_flight: int = 1
    """Write batches that may await the store at once. One where the store answers on the
    loop thread (SQLite); two across the network (PostgreSQL), where one batch's round
    trip left the loop idle while the next batch waited: the relay and the database then
    took turns instead of working together (bench/README.md)."""
    _flushes: set[asyncio.Task[None]] = field(default_factory=set)
    _batch_timer: asyncio.TimerHandle | None = None
    _usage: dict[str, _QueueUsage] = field(default_factory=dict)
    _unstored: dict[int, _Pending] = field(default_factory=dict)
    _batch_eids: set[tuple[str, str]] = field(default_factory=set)
    """(sender, eid) of the batch: a re-send within it is not delivered early twice."""
    _signals: set[asyncio.Task[None]] = field(default_factory=set)
    _ack_timer: asyncio.TimerHandle | None = None
    store_ok: bool = True
    """False from a failed commit until the next one succeeds (readiness, metrics)."""
    commits: int = 0
    """Write batches committed: while they grow, the store needs no readiness probe."""
    queue_limits: QueueLimits = field(init=False)
    """`queue_max_count` and `queue_max_bytes`, which a group's copies meet too (fanout.py)."""

    def __post_init__(self) -> None:
        self.queue_limits = QueueLimits(self.queue_max_count, self.queue_max_bytes)

    @property
    def awaiting_commit(self) -> int:
        """Envelopes received and not yet in a write batch (a gauge)."""
        return len(self._batch)

    # --- sending -------------------------------------------------------------------

    async def submit(self, outlet: Outlet, sender: str, frame: F.Send) -> None:
        """Queues an envelope for the next write batch; `accepted` follows it."""
        usage = await self._usage_of(frame.to)
        if usage is None:
            outlet.push(_error(frame.rid, ErrorCode.NOT_FOUND, f"no account named {frame.to!r}"))
            return
        if not self.queue_limits.admits(usage.count, usage.bytes, len(frame.body)):
            outlet.push(
                _error(
                    frame.rid,
                    ErrorCode.RATE_LIMITED,
                    f"{frame.to}'s queue is full; try again after they come online",
                )
            )
            return
        usage.count += 1
        usage.bytes += len(frame.body)
        sid = await self._early_sid(sender, frame.eid)
        envelope = NewEnvelope(frame.to, sender, frame.eid, frame.body, self.clock(), sid)
        pending = _Pending(envelope, outlet, frame.rid)
        self._batch.append(pending)
        if sid is not None:
            self._unstored[sid] = pending
            recipients = self.online.get(frame.to)
            if recipients:
                pending.delivered_to = tuple(recipients)
                delivery = _stored(envelope)
                for recipient in pending.delivered_to:
                    recipient.wake_delivery(delivery)
        self._schedule_flush()

    async def _early_sid(self, sender: str, eid: str) -> int | None:
        """A sid to deliver with before the commit, or None to deliver after it."""
        if (
            len(self._batch) >= EARLY_DELIVERY_MAX_BATCH
            or self.bus.shared
            or (sender, eid) in self._batch_eids
        ):
            return None
        self._batch_eids.add((sender, eid))
        try:
            return await self.store.reserve_sid(sender, eid)
        except StoreError:
            return None  # the commit answers it, and gives the queue count back if it fails

    def acknowledge(self, username: str, sids: list[int]) -> None:
        """Deletions wait for the next commit of new envelopes, or ACK_DELAY at most.

        Nothing depends on an ack being durable at once (a lost one means a
        redelivery the client drops), so at a moderate load acks ride along with
        sends instead of paying a transaction of their own.
        """
        stored = []
        for sid in sids:
            pending = self._unstored.get(sid)
            if pending is not None and pending.envelope.recipient == username:
                del self._unstored[sid]
                pending.acknowledged = True
            else:
                stored.append(sid)
        if not stored:
            return
        self._acks[username].extend(stored)
        if self._ack_timer is None:
            self._ack_timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._acks_due)

    def _acks_due(self) -> None:
        self._ack_timer = None
        if self._acks:
            self._schedule_flush()

    def _schedule_flush(self, delay: float | None = None) -> None:
        if len(self._flushes) >= self.batches_in_flight:
            return  # a running commit picks it up
        if delay is not None and self._batch_timer is not None:
            self._batch_timer.cancel()
            self._batch_timer = None
        if self._batch_timer is None:
            self._batch_timer = asyncio.get_running_loop().call_later(
                self.commit_delay if delay is None else delay, self._batch_due
            )

    def _batch_due(self) -> None:
        """A timer, not a task that sleeps: one task and no future per commit.

        It waits `commit_delay`, as PostgreSQL's commit_delay does: at a moderate
        rate that gathers several envelopes per transaction, and gives recipients
        that got an envelope early the time to acknowledge it, so it is never
        written; under a flood the batches are large anyway.
        """
        self._batch_timer = None
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        """One transaction for everything sent meanwhile (write batching).

        It leaves `_flushes` in its last step, not in a done callback a turn later: a
        send in between would find the batches in flight full and schedule nothing.
        """
        try:
            while self._batch or self._acks:
                batch, self._batch = self._batch, []
                self._batch_eids.clear()
                acks, self._acks = self._acks, defaultdict(list)
                await self._write_batch(batch, acks)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._flushes.discard(task)

    async def _write_batch(self, batch: list[_Pending], acks: dict[str, list[int]]) -> None:
        """Stores the batch, wakes whoever did not have it yet, then answers `accepted`.

        An envelope its recipient acknowledged before this write was delivered and
        is done with: it is accepted without being written.
        """
        woken: set[Outlet] = set()
        to_store = []
        for pending in batch:
            if pending.envelope.sid is not None:
                self._unstored.pop(pending.envelope.sid, None)
            if not pending.acknowledged:
                to_store.append(pending)
                continue
            woken.add(pending.outlet)
            self._give_back(pending.envelope)
            self.metrics.envelopes_accepted += 1
            pending.outlet.push(encode_str(F.Accepted(rid=pending.rid, eid=pending.envelope.eid)))
        try:
            stored, freed = await self.store.write_batch([p.envelope for p in to_store], acks)
        except Exception as exc:
            code = ErrorCode.UNAVAILABLE
            text = (
                str(exc)
                if isinstance(exc, StorageFullError)
                else "the relay could not store the message; send it again later"
            )
            for pending in to_store:
                self._usage.pop(pending.envelope.recipient, None)
                pending.outlet.push(_error(pending.rid, code, text))
            self.store_ok = False
            log.error("commit failed: %s", type(exc).__name__)
            # Unstored acknowledgements only mean a redelivery, which clients drop.
            return
        self.store_ok = True
        if to_store or acks:
            self.commits += 1  # a transaction (an empty batch writes none and proves nothing)
        now = self.clock()
        self.metrics.persist.observe_many([now - pending.envelope.ts for pending in to_store])
        for recipient, (count, size) in freed.items():
            usage = self._usage.get(recipient)
            if usage is not None:
                usage.count -= count
                usage.bytes -= size
        items: dict[str, list[int]] = defaultdict(list)
        answers: list[tuple[Outlet, str]] = []
        for pending, (sid, fresh) in zip(to_store, stored, strict=True):
            env = pending.envelope
            woken.add(pending.outlet)
            if fresh:
                self.metrics.envelopes_accepted += 1
            else:
                # A re-send: the first copy is counted and queued already.
                self._give_back(env)
                if sid == 0:
                    pending.outlet.push(
                        _error(
                            pending.rid,
                            ErrorCode.CONFLICT,
                            f"envelope id {env.eid} was already used for another recipient",
                        )
                    )
                    continue
                # Announced again: the node that stored the first copy may have died
                # before announcing it. Connections drop what they already sent.
            envelope = StoredEnvelope(sid, env.recipient, env.sender, env.eid, env.body, env.ts)
            for outlet in self.online.get(env.recipient, ()):
                if outlet not in pending.delivered_to:
                    outlet.wake_delivery(envelope)
                    woken.add(outlet)
            items[env.recipient].append(sid)
            answers.append((pending.outlet, encode_str(F.Accepted(rid=pending.rid, eid=env.eid))))
        for outlet in woken:
            outlet.flush()
        if items and self.bus.shared:
            # Other nodes may hold connections of these users (a second device, a
            # reconnect). Announced before `accepted`: a sender told "accepted" never
            # holds the only trace of an envelope that a killed node stored silently.
            await self.bus.wake(items)
        for outlet, frame in answers:
            outlet.push(frame)
        for outlet in {outlet for outlet, _ in answers}:
            outlet.flush()

    def _give_back(self, env: NewEnvelope) -> None:
        usage = self._usage.get(env.recipient)
        if usage is not None:
            usage.count -= 1
            usage.bytes -= len(env.body)

    async def _usage_of(self, recipient: str) -> _QueueUsage | None:
        """None for a name without an account: nothing is queued for it, and nothing kept
        here, so sending to made-up names fills neither the disk nor this cache."""
        usage = self._usage.get(recipient)
        if usage is None:
            queued = await self.store.queue_usage(recipient)
            if queued is None:
                return None
            usage = self._usage[recipient] = _QueueUsage(*queued)
        return usage

    def forget_usage(self, *users: str) -> None:
        """Queue sizes changed outside a write batch (expiry, deletions): count again."""
        if users:
            for user in users:
                self._usage.pop(user, None)
        else:
            self._usage.clear()

    async def drain(self) -> None:
        """Waits until everything submitted is stored (used on shutdown)."""
        while True:
            if self._flushes:
                await asyncio.wait(set(self._flushes))
            elif self._batch or self._acks:
                if self._batch_timer is not None:
                    self._batch_timer.cancel()
                self._batch_due()
            else:
                return

    # --- delivery ------------------------------------------------------------------

    async def backlog_page(self, username: str, after_sid: int) -> list[StoredEnvelope]:
        return await self.store.pending(username, after_sid, MAX_DELIVER_BATCH)

    # --- presence ------------------------------------------------------------------

    def connected(self, outlet: Outlet) -> None:
        assert outlet.username is not None
        first = not self.online[outlet.username]
        self.online[outlet.username].add(outlet)
        # Envelopes delivered early to the user's other connections are not in the
        # backlog yet: this connection gets them now, in sid order with what follows.
        for pending in self._unstored.values():
            if pending.envelope.recipient == outlet.username and not pending.acknowledged:
                pending.delivered_to += (outlet,)
                outlet.wake_delivery(_stored(pending.envelope))
        if first:
            self._announce(outlet.username, "online")
            self._signal(self.bus.presence(outlet.username, "online"))

    def disconnected(self, outlet: Outlet) -> None:
        if outlet.username is not None and outlet.username in self._acks:
            # Its acknowledgements must be stored before the user reconnects elsewhere.
            self._schedule_flush(delay=0)
        for watched in list(self.watchers):
            self.watchers[watched].discard(outlet)
            if not self.watchers[watched]:
                del self.watchers[watched]
        self.waiting_watches.pop(outlet, None)
        if outlet.username is None:
            return
        conns = self.online.get(outlet.username)
        if conns is None:
            return
        conns.discard(outlet)
        if not conns:
            del self.online[outlet.username]
            self._announce(outlet.username, "offline")
            self._signal(self.bus.presence(outlet.username, "offline"))

    async def watch(self, outlet: Outlet, users: list[str]) -> dict[str, str]:
        """Records that the connection's user follows `users`, and answers with the state
        of those who follow it back ("unknown" for the others).

        The users wait before the store is read, not after: a watch of theirs that
        lands while the read is under way then starts this one, where otherwise it
        would wait for a watch that already happened.
        """
        username = outlet.username
        assert username is not None
        waiting = self.waiting_watches.setdefault(outlet, set())
        for user in users:
            if len(waiting) < MAX_WATCH_USERS:
                waiting.add(user)
        try:
            started = await self.store.record_watches(username, users)
        except StoreError as exc:
            # A store that cannot write (full, read-only) still answers from what it
            # holds; the client watches again at its next connection.
            log.warning("could not record watches: %s", type(exc).__name__)
            started = []
        if started:
            await self.watches_started(username, started)
            if self.bus.shared:
                self._signal(self.bus.watch(username, started))
        followers = await self.store.watchers_of(username)
        if outlet not in self.online.get(username, ()):
            return dict.fromkeys(users, "unknown")  # gone meanwhile: nothing to follow
        waiting = self.waiting_watches.setdefault(outlet, set())
        states: dict[str, str] = {}
        for user in users:
            if user in followers or outlet in self.watchers.get(user, ()):
                waiting.discard(user)
                self.watchers[user].add(outlet)
                states[user] = "online" if await self._is_online(user) else "offline"
            else:
                states[user] = "unknown"
                if len(waiting) < MAX_WATCH_USERS:
                    waiting.add(user)  # room that the followers among `users` held during the read
        if not waiting:
            self.waiting_watches.pop(outlet, None)
        return states

    async def watches_started(self, watcher: str, users: list[str]) -> None:
        """`watcher` now follows `users`: their connections that waited to see it do now."""
        state: str | None = None
        for user in users:
            for outlet in list(self.online.get(user, ())):
                waiting = self.waiting_watches.get(outlet)
                if not waiting or watcher not in waiting:
                    continue
                waiting.discard(watcher)
                if not waiting:
                    del self.waiting_watches[outlet]
                self.watchers[watcher].add(outlet)
                if state is None:
                    state = "online" if await self._is_online(watcher) else "offline"
                outlet.push(encode_str(F.Presence(user=watcher, state=state)))

    async def _is_online(self, user: str) -> bool:
        return bool(self.online.get(user)) or await self.bus.online_elsewhere(user)

    def conversation_deleted(self, user: str, peer: str) -> None:
        """`user` no longer follows `peer`: its watches of `peer` end, and `peer`'s watches
        of `user` wait until `user` follows again (its client watches a peer once a new
        envelope opens the conversation anew)."""
        for outlet in self.online.get(user, ()):
            waiting = self.waiting_watches.get(outlet)
            if waiting is not None:
                waiting.discard(peer)
                if not waiting:
                    del self.waiting_watches[outlet]
        self._unwatch(peer, user, waiting=False)
        self._unwatch(user, peer, waiting=True)

    def _unwatch(self, watched: str, watcher: str, *, waiting: bool) -> None:
        outlets = self.watchers.get(watched)
        if outlets is None:
            return
        ended = [o for o in outlets if o.username == watcher]
        outlets.difference_update(ended)
        if waiting:
            for outlet in ended:
                self.waiting_watches.setdefault(outlet, set()).add(watched)
        if not outlets:
            del self.watchers[watched]

    def account_deleted(self, username: str, followers: set[str]) -> None:
        frame = encode_str(F.Presence(user=username, state="deleted"))
        for follower in followers:
            for outlet in self.online.get(follower, ()):
                outlet.push(frame)
        self.watchers.pop(username, None)
        # Whoever registers the name next is somebody else: no watch waits for them.
        for outlet, waiting in list(self.waiting_watches.items()):
            waiting.discard(username)
            if not waiting:
                del self.waiting_watches[outlet]
        self._signal(self.bus.presence(username, "deleted"))

    def remote_wake(self, username: str, sids: list[int]) -> None:
        """Another node stored these envelopes for `username`: hand them to its connections here.

        Without sids (the store-and-forward poll) the connections re-read the whole queue.
        """
        outlets = self.online.get(username)
        if not outlets:
            return
        if not sids:
            for outlet in outlets:
                outlet.wake_backlog()
            return
        self._signal(self._deliver_remote(username, sids))

    async def _deliver_remote(self, username: str, sids: list[int]) -> None:
        try:
            envelopes = await self.store.envelopes(username, sids)
        except StoreError:
            log.warning("could not read envelopes announced by another node; polling instead")
            envelopes = []
            for outlet in self.online.get(username, ()):
                outlet.wake_backlog()
        for envelope in envelopes:
            for outlet in self.online.get(username, ()):
                outlet.wake_delivery(envelope)

    def remote_watch(self, watcher: str, users: list[str]) -> None:
        """Another node says it recorded that `watcher` now follows `users`."""
        here = [user for user in users if user in self.online]
        if here:
            self._signal(self._remote_watches_started(watcher, here))

    async def _remote_watches_started(self, watcher: str, users: list[str]) -> None:
        """Only follows the store holds start watches: a bus message is no proof (anyone
        who reaches Redis could send one)."""
        confirmed = [user for user in users if watcher in await self.store.watchers_of(user)]
        if confirmed:
            await self.watches_started(watcher, confirmed)

    def remote_presence(self, username: str, state: str) -> None:
        if state == "offline" and self.online.get(username):
            return
        if state == "deleted":
            frame = encode_str(F.Presence(user=username, state="deleted"))
            for outlet in self.watchers.pop(username, set()):
                outlet.push(frame)
            return
        self._announce(username, state)

    def _signal(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    def _announce(self, username: str, state: str) -> None:
        watchers = self.watchers.get(username)
        if watchers:
            frame = encode_str(F.Presence(user=username, state=state))
            for outlet in watchers:
                outlet.push(frame)

    def connections_of(self, username: str) -> int:
        return len(self.online.get(username, ()))


def _stored(env: NewEnvelope) -> StoredEnvelope:
    """An envelope with a reserved sid, as its recipient sees it before the commit."""
    assert env.sid is not None
    return StoredEnvelope(env.sid, env.recipient, env.sender, env.eid, env.body, env.ts)


def _error(rid: int | None, code: ErrorCode, message: str) -> str:
    return encode_str(F.Error(rid=rid, code=code.value, message=message))


def pending_deliveries(
    live: deque[StoredEnvelope], already_sent: Callable[[int], bool]
) -> list[StoredEnvelope]:
    """Live envelopes not yet sent on this connection, oldest first."""
    unique = {env.sid: env for env in live if not already_sent(env.sid)}
    live.clear()
    return [unique[sid] for sid in sorted(unique)]


DELIVER_FRAME_BODY_BYTES = 640 * 1024
"""Raw body bytes per `deliver` frame: base64 makes it ~853 KiB, under the 1 MiB frame limit."""


def deliver_batches(envelopes: list[StoredEnvelope]) -> list[list[StoredEnvelope]]:
    """Splits envelopes into `deliver` frames that a client can read (count and size bounded).

    One envelope at the 512 KiB maximum always fits a frame on its own.
    """
    frames: list[list[StoredEnvelope]] = []
    current: list[StoredEnvelope] = []
    size = 0
    for env in envelopes:
        if current and (
            len(current) >= MAX_DELIVER_BATCH or size + len(env.body) > DELIVER_FRAME_BODY_BYTES
        ):
            frames.append(current)
            current, size = [], 0
        current.append(env)
        size += len(env.body)
    if current:
        frames.append(current)
    return frames
