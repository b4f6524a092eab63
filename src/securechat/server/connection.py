"""One client connection: reads frames, dispatches them, writes them in order.

A connection is given only what it uses (the relay it registers with, a
dispatch callable, the turn writer, metrics, the clock and its limits), never
the server that built it: it depends on the relay, and nothing below it
depends on it (the relay and revocation see it as an `Outlet`).

Everything a connection sends (answers, pushes, deliveries) is queued on it
and leaves in queue order, so frames never interleave and a slow client only
slows itself. Two paths write: while the socket keeps up, whatever one loop
turn queued goes out at the end of that turn as one transport write (no task
switch, one syscall for an `accepted` and a `deliver` together); when the
socket pushes back, or the stored backlog must be read first, the writer task
takes over and waits for the socket to drain.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import Event, State

from securechat.errors import ProtocolError, StoreError
from securechat.protocol import frames as F
from securechat.protocol import group_frames as G
from securechat.protocol.codec import (
    encode_str,
    parse_client_bulk,
    parse_client_frame,
    recover_request_id,
)
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import MAX_DELIVER_BATCH
from securechat.server.fanout import group_envelope
from securechat.server.metrics import Metrics
from securechat.server.ratelimit import TokenBucket
from securechat.server.relay import Relay, deliver_batches, pending_deliveries
from securechat.server.store import StoredEnvelope

log = logging.getLogger("securechat.connection")

MAX_REJECTED_FRAMES = 1000
"""After this many refused frames the connection is closed (policy violation)."""

_FRAME_COST = {F.FileChunk: 0.25, F.FileGet: 0.25, F.Ack: 0.25}
"""A 25 MB file is 382 chunks: they must fit in the burst, and acks ride along messages."""

_CREDENTIALS = (F.Login, F.Register, F.Resume, F.ResetPassword)

RECENTLY_ACKED = 256
"""Acknowledged sids remembered per connection, to drop late live copies of them."""

MAX_OUTGOING_FRAMES = 10_000
"""A client that never reads is cut off instead of growing the relay's memory."""

EARLY_MESSAGES_HELD = 64
"""Messages held before a connection takes over its socket; reading pauses past this."""

INBOUND_HELD = 64
"""Messages held behind one that waits (a login's bcrypt); reading pauses past this and
resumes once they are handled."""


Receiver = Callable[[bytes, bool], None]
"""Takes one whole message: its bytes, and whether it came as text."""


class RelaySocket(ServerConnection):
    """A websocket that hands each message over in the callback that read it, and writes
    several frames (text or binary) with one transport write.

    websockets' `recv` queues a message, wakes the reading task and returns it
    through an async iterator: a future and a task step per frame, about a fifth
    of a relayed message's CPU, paid twice per message (the `send` and its
    `ack`). Its `send` writes each frame on its own; at 5,000 messages a second
    the syscall per frame is most of the cost of a delivery.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receiver: Receiver | None = None
        self._early: list[tuple[bytes, bool]] = []
        """Messages read before the connection took over (a client may send its login
        in the same packet as the end of the handshake)."""
        self._fragments: list[bytes] = []
        self._fragmented_text = False

    def receive_with(self, receiver: Receiver) -> None:
        """From now on every message goes to `receiver`, in order, as soon as it is read."""
        self._receiver = receiver
        early, self._early = self._early, []
        for data, text in early:
            receiver(data, text)
        self.transport.resume_reading()

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or event.opcode not in DATA_OPCODES:
            super().process_event(event)  # the handshake, pings, pongs, close
            return
        if event.opcode is not Opcode.CONT:
            self._fragments.clear()
            self._fragmented_text = event.opcode is Opcode.TEXT
        self._fragments.append(bytes(event.data))
        if not event.fin:
            return  # websockets bounds the whole message by max_size
        data = self._fragments[0] if len(self._fragments) == 1 else b"".join(self._fragments)
        self._fragments.clear()
        if self._receiver is None:
            self._early.append((data, self._fragmented_text))
            if len(self._early) >= EARLY_MESSAGES_HELD:
                self.transport.pause_reading()
            return
        self._receiver(data, self._fragmented_text)

    def writable(self) -> bool:
        """Open, and the kernel takes what we write (no flow-control pause)."""
        return self.protocol.state is State.OPEN and not self.paused

    def write_frames(self, frames: list[str | bytes]) -> bool:
        """Writes text (str) and binary (bytes) messages to the transport at once.

        False when the socket is no longer open.
        """
        if self.protocol.state is not State.OPEN:
            return False
        for frame in frames:
            if isinstance(frame, str):
                self.protocol.send_text(frame.encode())
            else:
                self.protocol.send_binary(frame)
        self.transport.write(b"".join(self.protocol.data_to_send()))
        return True


class TurnWriter:
    """Writes, from one loop callback, every connection that queued frames this turn.

    A callback per connection per turn was a measurable share of a relayed
    message's CPU; a busy turn or a write batch touches many connections.
    """

    def __init__(self) -> None:
        self._due: list[Connection] = []
        self._handle: asyncio.Handle | None = None

    def schedule(self, conn: Connection) -> None:
        self._due.append(conn)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._write_all)

    def _write_all(self) -> None:
        self._handle = None
        due, self._due = self._due, []
        for conn in due:
            try:
                conn.write_queued()
            except Exception:
                # One connection's failure must not leave the others unwritten.
                log.exception("write failed")


Dispatch = Callable[["Connection", F.ClientFrame], Coroutine[Any, Any, None]]
"""What a connection hands each parsed frame to (`server/dispatch.py: Dispatcher`)."""


class Connection:
    def __init__(
        self,
        ws: RelaySocket,
        *,
        relay: Relay,
        dispatch: Dispatch,
        turn_writer: TurnWriter,
        metrics: Metrics,
        clock: Callable[[], float],
        frame_rate: float,
        frame_burst: float,
        auth_timeout: float,
        inline: frozenset[type[F.ClientFrame]] = frozenset(),
    ) -> None:
        """`inline`: the frames whose handling never needs a current task (`_on_message`)."""
        self.ws = ws
        self._inline = inline
        self.address = _address(ws)
        self.username: str | None = None
        self.token: str | None = None
        self._relay = relay
        self._dispatch = dispatch
        self._turn_writer = turn_writer
        self._metrics = metrics
        self._clock = clock
        self.bucket = TokenBucket(frame_rate, frame_burst)
        self.rejected = 0
        self._rate_limit_logged = False
        self._frames: deque[str | bytes] = deque()
        self._live: deque[StoredEnvelope] = deque()
        self._backlog = False
        self._unacked: set[int] = set()
        self._recently_acked: dict[int, None] = {}
        self._wake = asyncio.Event()
        self._writer_idle = False
        self._write_due = False
        self._closing = False
        self._close_after: tuple[int, str] | None = None
        self._inbound: deque[tuple[bytes, bool]] | None = None
        """Messages waiting behind a frame that is still being handled, or None."""
        self._handling: asyncio.Task[None] | None = None
        self._refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done once the connection refused too much (frames or unread output)."""
        self._auth_deadline = asyncio.get_running_loop().call_later(
            auth_timeout, self._auth_timeout
        )

    # --- Outlet --------------------------------------------------------------------

    def push(self, frame: str | bytes) -> None:
        if len(self._frames) >= MAX_OUTGOING_FRAMES:
            # A client that does not read: stop queueing for it and hang up.
            if not self._closing:
                self._closing = True
                asyncio.get_running_loop().create_task(
                    self.ws.close(1008, "too much unread output")
                )
            return
        self._frames.append(frame)
        self._kick()

    def wake_delivery(self, envelope: StoredEnvelope | None) -> None:
        if envelope is not None:
            self._live.append(envelope)
        self._kick()

    def _kick(self) -> None:
        """Something was queued: write it at the end of this loop turn, or wake the writer."""
        if not self._writer_idle:
            self._wake.set()
        elif not self._write_due:
            self._write_due = True
            self._turn_writer.schedule(self)

    def flush(self) -> None:
        """Writes what is queued now rather than at the end of the loop turn.

        The relay calls it after a write batch, so `accepted` and `deliver`
        leave one loop iteration sooner.
        """
        self.write_queued()

    def write_queued(self) -> None:
        """The fast path: everything queued, in order, in one write."""
        if not self._write_due:
            return
        self._write_due = False
        ws = self.ws
        if (
            not self._writer_idle
            or self._backlog
            or self._close_after is not None
            or not ws.writable()
        ):
            self._wake.set()
            return
        frames = self._take_queued()
        if frames:
            ws.write_frames(frames)

    def close_after_flush(self, code: int, reason: str) -> None:
        """Closes once the frames already queued (e.g. the answer to `logout`) are sent."""
        self._close_after = (code, reason)
        self._wake.set()

    # --- lifecycle -----------------------------------------------------------------

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._writer())
        closed = loop.create_task(self.ws.wait_closed())
        self.ws.receive_with(self._on_message)
        try:
            await asyncio.wait((closed, self._refused), return_when=asyncio.FIRST_COMPLETED)
            if not closed.done():
                self.close_after_flush(1008, "too many refused frames or unread output")
                await asyncio.wait_for(asyncio.shield(writer), timeout=5)
        except TimeoutError:
            pass
        finally:
            closed.cancel()
            if self._handling is not None:
                # A frame still under way (a login's bcrypt) must end before the relay
                # forgets this connection, or it would sign in a connection that is gone.
                await asyncio.wait((self._handling,))
            self._auth_deadline.cancel()
            writer.cancel()
            self._relay.disconnected(self)

    def _auth_timeout(self) -> None:
        if self.username is None:
            asyncio.get_running_loop().create_task(
                self.ws.close(1008, "log in within the authentication timeout")
            )

    def _on_message(self, data: bytes, text: bool) -> None:
        """A message, in the loop callback that read it.

        The frames the relay answers without waiting (`inline`: `ack`, and `send`
        on a store on the loop thread) are handled right here, as far as they go
        without waiting; any other frame goes on in a task (a login's bcrypt, a
        store across the network, anything that needs a current task), and the
        messages behind it wait their turn, so frames are handled in order.
        """
        if self._refused.done():
            return
        if self._inbound is not None:
            self._inbound.append((data, text))
            if len(self._inbound) == INBOUND_HELD:
                self.ws.transport.pause_reading()
            return
        frame = self._parse(data, text)
        if frame is None:
            self._check_refused()
            return
        work = self._handle(frame)
        waited: object = _NOT_STARTED
        if type(frame) in self._inline:
            try:
                waited = work.send(None)
            except StopIteration:
                self._check_refused()
                return
        self._inbound = deque()
        self._handling = asyncio.get_running_loop().create_task(self._go_on(work, waited))

    async def _go_on(self, work: Coroutine[Any, Any, None], waited: object) -> None:
        """Finishes a frame that had to wait, then the messages that arrived meanwhile."""
        inbound = self._inbound
        assert inbound is not None
        try:
            if waited is _NOT_STARTED:
                await work
            else:
                await finish_started(work, waited)
            self._check_refused()
            while inbound and not self._refused.done():
                if len(inbound) == INBOUND_HELD:
                    self.ws.transport.resume_reading()
                frame = self._parse(*inbound.popleft())
                if frame is not None:
                    await self._handle(frame)
                self._check_refused()
        finally:
            self._inbound = None
            self._handling = None
            self.ws.transport.resume_reading()

    def _check_refused(self) -> None:
        if self._closing and not self._refused.done():
            self._refused.set_result(None)

    def _parse(self, data: bytes, text: bool) -> F.ClientFrame | None:
        """The frame, or None when it was refused (malformed, over the rate limit)."""
        metrics = self._metrics
        metrics.frames_received += 1
        try:
            frame = parse_client_frame(data) if text else parse_client_bulk(data)
        except ProtocolError as exc:
            self.bucket.take(self._clock())
            self._reject(recover_request_id(data.decode("utf-8", "replace") if text else data), exc)
            return None
        if not self.bucket.take(self._clock(), _FRAME_COST.get(type(frame), 1.0)):
            metrics.rate_limited += 1
            if not self._rate_limit_logged:
                # Once per connection: a flood must not become a flood of log lines.
                self._rate_limit_logged = True
                log.warning("rate limit: a connection from %s sends too many frames", self.address)
            self._reject(
                frame.rid,
                ProtocolError(ErrorCode.RATE_LIMITED, "slow down: too many frames a second"),
            )
            return None
        if self.username is None and isinstance(frame, _CREDENTIALS):
            # The credentials arrived in time; bcrypt queueing behind a login storm
            # must not cut the connection.
            self._auth_deadline.cancel()
        return frame

    async def _handle(self, frame: F.ClientFrame) -> None:
        try:
            await self._dispatch(self, frame)
        except ProtocolError as exc:
            self._reject(frame.rid, exc)
        except StoreError as exc:
            log.error("store failure on %s: %s", type(frame).__name__, type(exc).__name__)
            self._reject(frame.rid, ProtocolError(ErrorCode.UNAVAILABLE, str(exc)))
        except Exception:
            log.exception("internal error handling %s", type(frame).__name__)
            self._reject(
                frame.rid, ProtocolError(ErrorCode.INTERNAL, "the relay failed; try again")
            )

    def _reject(self, rid: int | None, exc: ProtocolError) -> None:
        self._metrics.frames_rejected += 1
        self.rejected += 1
        if self.rejected > MAX_REJECTED_FRAMES:
            self._closing = True
        retry_after = getattr(exc, "retry_after", None)
        self.push(
            encode_str(
                F.Error(rid=rid, code=exc.code, message=exc.message, retry_after=retry_after)
            )
        )

    def end_session(self, reason: str) -> None:
        """Its session was revoked: it stops acting for the user at once, then closes."""
        self._relay.disconnected(self)
        self.username = None
        self.token = None
        self.close_after_flush(1000, reason)

    def authenticated(self, username: str, token: str) -> None:
        self.username = username
        self.token = token
        self._relay.connected(self)
        self._backlog = True
        self._wake.set()

    # --- writing -------------------------------------------------------------------

    async def _writer(self) -> None:
        try:
            while True:
                self._writer_idle = True
                await self._wake.wait()
                self._writer_idle = False
                self._wake.clear()
                while self._frames:
                    frames = list(self._frames)
                    self._frames.clear()
                    await self._write(frames)
                if self._close_after is not None:
                    await self.ws.close(*self._close_after)
                    return
                if self.username is not None:
                    await self._deliver(self.username)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("delivery stopped")
            await self.ws.close(1011, "the relay failed to deliver; reconnect later")

    def wake_backlog(self) -> None:
        """Another node stored envelopes for this user: read the queue again."""
        self._backlog = True
        self._wake.set()

    def acknowledged(self, sids: list[int]) -> None:
        """Remembers the last acknowledged sids too: a live copy still queued must not go out."""
        for sid in sids:
            if sid in self._unacked:
                self._unacked.discard(sid)
                self._recently_acked[sid] = None
        while len(self._recently_acked) > RECENTLY_ACKED:
            del self._recently_acked[next(iter(self._recently_acked))]

    def _already_sent(self, sid: int) -> bool:
        return sid in self._unacked or sid in self._recently_acked

    async def _deliver(self, username: str) -> None:
        """Sends what this connection has not sent yet: the stored queue, then live envelopes.

        Tracking the unacknowledged sids (not a high-water mark) keeps delivery
        exactly-once per connection even when several nodes commit out of sid order.
        """
        while self._backlog:
            self._backlog = False
            cursor = 0
            while True:
                page = await self._relay.backlog_page(username, cursor)
                fresh = [env for env in page if not self._already_sent(env.sid)]
                for batch in deliver_batches(fresh):
                    await self._write(self._deliver_frames(batch))
                if len(page) < MAX_DELIVER_BATCH:
                    break
                cursor = page[-1].sid
        await self._write(self._take_queued())

    async def _write(self, frames: list[str | bytes]) -> None:
        """The slow path: write, then wait until the socket takes more."""
        if not frames:
            return
        if not self.ws.write_frames(frames):
            raise ConnectionClosed(None, None)
        try:
            await self.ws.drain()
        except OSError as exc:
            # The peer reset the connection while we waited: a hang-up, not a failure.
            raise ConnectionClosed(None, None) from exc

    def _take_queued(self) -> list[str | bytes]:
        """Queued answers, then live envelopes not yet sent here, as frames to write."""
        frames: list[str | bytes] = list(self._frames)
        self._frames.clear()
        live = self._live
        if self.username is None or not live:
            return frames
        now = self._clock()
        deliver = self._metrics.deliver
        if len(live) == 1:
            # The common case at a moderate load, without the sorting and splitting.
            envelope = live.popleft()
            if not self._already_sent(envelope.sid):
                deliver.observe(now - envelope.ts)
                frames.extend(self._deliver_frames([envelope]))
            return frames
        for batch in deliver_batches(pending_deliveries(live, self._already_sent)):
            for envelope in batch:
                deliver.observe(now - envelope.ts)
            frames.extend(self._deliver_frames(batch))
        return frames

    def _deliver_frames(self, envelopes: list[StoredEnvelope]) -> list[str | bytes]:
        """`deliver` frames, and `group_deliver` frames for a group's deliveries, in
        sid order: a run of either kind is one frame."""
        self._unacked.update(e.sid for e in envelopes)
        self._metrics.envelopes_delivered += len(envelopes)
        if all(e.group is None for e in envelopes):  # one-to-one only: nearly all traffic
            return [_deliver_frame(envelopes)]
        return [
            encode_str(G.GroupDeliver(envelopes=[group_envelope(e) for e in run]))
            if is_group
            else _deliver_frame(list(run))
            for is_group, run in itertools.groupby(envelopes, lambda e: e.group is not None)
        ]


def _deliver_frame(envelopes: list[StoredEnvelope]) -> str:
    return encode_str(
        F.Deliver(
            envelopes=[
                F.Envelope(sid=e.sid, sender=e.sender, eid=e.eid, body=e.body, ts=e.ts)
                for e in envelopes
            ]
        )
    )


_NOT_STARTED = object()


async def finish_started(work: Coroutine[Any, Any, None], waited: object) -> None:
    """Runs to its end, as a task would, a coroutine that `send(None)` started and that
    suspended on `waited` (a future, or None for a bare yield)."""
    while True:
        try:
            if isinstance(waited, asyncio.Future):
                waited._asyncio_future_blocking = False
                await asyncio.wait((waited,))
            else:
                await asyncio.sleep(0)
        except BaseException:
            work.close()
            raise
        try:
            waited = work.send(None)
        except StopIteration:
            return


def _address(ws: ServerConnection) -> str:
    peer = ws.remote_address
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "unknown"
