"""The relay session: login, resume, reconnect, the outbox and delivery.

`RelayClient` keeps one logical session alive over many websockets: it
reconnects with exponential back-off and jitter, resumes with the session
token, re-sends what the relay has not acknowledged, and hands every
envelope to `on_envelope` before acknowledging it, so an envelope is never
dropped between the relay and the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from securechat.client.connection import CertificatePinMismatch, RelayConnection
from securechat.client.events import ConnectionChanged, ConnectionState, Event
from securechat.errors import ConnectionLost, ServerRejected
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.group_frames import GroupDeliver, GroupEnvelope

log = logging.getLogger("securechat.client")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    eid: str
    to: str
    body: bytes


class Outbox(Protocol):
    """Where unacknowledged envelopes survive a restart of the client."""

    def outbox_add(self, item: OutboxItem) -> None: ...
    def outbox_remove(self, eid: str) -> None: ...
    def outbox_items(self) -> list[OutboxItem]: ...


EnvelopeHandler = Callable[[F.Envelope | GroupEnvelope], Awaitable[None]]
"""Both kinds of delivery (1:1 `deliver`, `group_deliver`) are acknowledged alike."""
PushListener = Callable[[F.ServerFrame], Awaitable[None]]
Request = Callable[[Callable[[int], F.ClientFrame]], Awaitable[F.ServerFrame]]
"""`RelayClient.request`, as the parts that only make requests take it (tests pass a fake)."""


def new_envelope_id() -> str:
    return secrets.token_urlsafe(16)


class RelayClient:
    def __init__(
        self,
        url: str,
        outbox: Outbox,
        *,
        pin_sha256: str | None = None,
        on_envelope: EnvelopeHandler | None = None,
        on_push: PushListener | None = None,
        on_event: Callable[[Event], None] | None = None,
        reconnect: bool = True,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.url = url
        self.outbox = outbox
        self.pin_sha256 = pin_sha256
        self.on_envelope = on_envelope
        self.on_push = on_push
        self.on_event = on_event or (lambda event: None)
        self.reconnect = reconnect
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.username: str | None = None
        self.token: str | None = None
        self.one_time_prekeys = 0
        self._conn: RelayConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._closing = False
        self.state = ConnectionState.CLOSED

    # --- connection ----------------------------------------------------------------

    async def connect(self) -> None:
        """Opens the first connection; errors here are reported, not retried.

        Also after `logout`, for the next login on the same client.
        """
        self._closing = False
        self._set_state(ConnectionState.CONNECTING)
        self._conn = await RelayConnection.open(
            self.url, self._dispatch, pin_sha256=self.pin_sha256
        )
        self._set_state(ConnectionState.CONNECTED)

    async def close(self) -> None:
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
        if self._supervisor:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._conn:
            await self._conn.close()
        self._set_state(ConnectionState.CLOSED)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    # --- accounts ------------------------------------------------------------------

    async def register(self, username: str, password: str, recovery_token: bytes) -> str:
        answer = await self.request(
            lambda rid: F.Register(
                rid=rid, username=username, password=password, recovery_token=recovery_token
            )
        )
        assert isinstance(answer, F.Registered)
        return answer.username

    async def login(self, username: str, password: str, replaces: str | None = None) -> F.Session:
        """`replaces`: this device's previous session token, which the relay then ends."""
        try:
            answer = await self.request(
                lambda rid: F.Login(
                    rid=rid, username=username, password=password, replaces=replaces
                )
            )
        except ServerRejected as exc:
            if replaces is None or exc.code != "bad_request" or "replaces" not in exc.message:
                raise
            # A relay from before `replaces`: the old session then just expires.
            answer = await self.request(
                lambda rid: F.Login(rid=rid, username=username, password=password)
            )
        assert isinstance(answer, F.Session)
        self._session_started(answer)
        return answer

    async def resume(self, token: str) -> F.Session:
        answer = await self.request(lambda rid: F.Resume(rid=rid, token=token))
        assert isinstance(answer, F.Session)
        self._session_started(answer)
        return answer

    async def reset_password(
        self, username: str, token: str, new_password: str, new_recovery_token: bytes | None
    ) -> None:
        await self.request(
            lambda rid: F.ResetPassword(
                rid=rid,
                username=username,
                token=token,
                new_password=new_password,
                new_recovery_token=new_recovery_token,
            )
        )

    async def sign_in_again(self, username: str, password: str) -> F.Session:
        """A new session on a new socket after the relay ended ours (expiry, a reset).

        The supervisor that found the old session dead has stopped; the new
        session starts a new one, and the outbox drains as after any login.
        """
        await self.stop_supervising()
        await self._drop_connection()
        self._ready.clear()
        self._closing = False
        self._set_state(ConnectionState.CONNECTING)
        self._conn = await RelayConnection.open(
            self.url, self._dispatch, pin_sha256=self.pin_sha256
        )
        session = await self.login(username, password)
        self._set_state(ConnectionState.CONNECTED)
        return session

    async def stop_supervising(self) -> None:
        """No reconnect until the next login: the caller is about to end the session itself."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None

    def supervise(self) -> None:
        """Reconnects again after `stop_supervising`, when the session was not ended after all."""
        if self._supervisor is None and self.reconnect and not self._closing and self.token:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def logout(self) -> None:
        with contextlib.suppress(ConnectionLost):
            await self.request(lambda rid: F.Logout(rid=rid))
        self.token = None
        await self.close()

    def _session_started(self, session: F.Session) -> None:
        if self._conn is not None:
            self._conn.binary_files = session.binary_files
        self.username = session.username
        self.token = session.token
        self.one_time_prekeys = session.one_time_prekeys
        self._ready.set()
        if self._supervisor is None and self.reconnect:
            self._supervisor = asyncio.create_task(self._supervise())
        asyncio.get_running_loop().create_task(self._drain_outbox())

    @property
    def binary_files(self) -> bool:
        """Whether file bytes may travel raw on the current connection."""
        return self._conn is not None and self._conn.binary_files

    # --- requests ------------------------------------------------------------------

    async def request(
        self, build: Callable[[int], F.ClientFrame], timeout: float = 30.0
    ) -> F.ServerFrame:
        conn = self._conn
        if conn is None or conn.closed.is_set():
            raise ConnectionLost("not connected to the relay; it will retry on its own")
        return await conn.request(build(conn.next_rid()), timeout)

    async def pipeline(
        self, builds: Iterable[Callable[[int], F.ClientFrame]], window: int = 8
    ) -> AsyncIterator[F.ServerFrame]:
        """Answers to many requests in order, with up to `window` in flight.

        `builds` is consumed lazily, so a file transfer holds `window` chunks at most.
        """
        conn = self._conn
        if conn is None or conn.closed.is_set():
            raise ConnectionLost("not connected to the relay; try again once reconnected")
        pending: deque[tuple[int, asyncio.Future[F.ServerFrame]]] = deque()
        try:
            for build in builds:
                frame = build(conn.next_rid())
                pending.append((frame.rid, await conn.start_request(frame)))
                if len(pending) >= window:
                    rid, future = pending.popleft()
                    yield await conn.answer(future, rid)
            while pending:
                rid, future = pending.popleft()
                yield await conn.answer(future, rid)
        finally:
            for _, future in pending:
                future.cancel()

    async def send_envelope(self, to: str, body: bytes, eid: str | None = None) -> str:
        """Keeps the envelope in the outbox until the relay has stored it.

        Returns at once when offline; the envelope goes out after reconnecting.
        Raises ServerRejected when the relay refuses it for good (e.g. too large).
        """
        item = OutboxItem(eid or new_envelope_id(), to, body)
        self.outbox.outbox_add(item)
        await self.transmit(item)
        return item.eid

    async def transmit(self, item: OutboxItem) -> None:
        """Sends an envelope the caller already put in the outbox (with its session state).

        Older envelopes still in the outbox go first: a ratchet message must not
        overtake the handshake that opens its session.
        """
        if self.connected:
            await self._drain_outbox()

    async def _send_one(self, item: OutboxItem) -> None:
        try:
            await self.request(
                lambda rid: F.Send(rid=rid, to=item.to, eid=item.eid, body=item.body)
            )
        except ServerRejected as exc:
            if exc.transient:
                # Keep it and try again shortly.
                self._retry_outbox_later()
                raise ConnectionLost(exc.message) from exc
            self.outbox.outbox_remove(item.eid)
            raise
        self.outbox.outbox_remove(item.eid)

    def _retry_outbox_later(self) -> None:
        if self._retry is None or self._retry.done():
            delay = min(self.backoff_max, max(1.0, self.backoff_base * 4))
            self._retry = asyncio.get_running_loop().create_task(self._drain_after(delay))

    async def _drain_after(self, delay: float) -> None:
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        if self.connected:
            await self._drain_outbox()

    async def _drain_outbox(self) -> None:
        async with self._send_lock:
            for item in self.outbox.outbox_items():
                try:
                    await self._send_one(item)
                except ServerRejected as exc:
                    self.on_event(_rejected_event(item, exc))
                except (ConnectionLost, TimeoutError):
                    return

    # --- pushes --------------------------------------------------------------------

    async def _dispatch(self, frame: F.ServerFrame) -> None:
        if isinstance(frame, F.Deliver | GroupDeliver):
            acked: list[int] = []
            for envelope in frame.envelopes:
                if self.on_envelope is not None:
                    try:
                        await self.on_envelope(envelope)
                    except Exception:
                        log.exception("envelope handler failed; the envelope stays on the relay")
                        continue
                acked.append(envelope.sid)
            if acked and self._conn is not None:
                with contextlib.suppress(ConnectionLost):
                    await self._conn.send(F.Ack(rid=0, sids=acked))
        elif self.on_push is not None:
            await self.on_push(frame)

    # --- reconnecting --------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            conn = self._conn
            if conn is not None:
                await conn.closed.wait()
            if self._closing:
                return
            self._ready.clear()
            self._set_state(ConnectionState.RECONNECTING, "connection lost; retrying")
            delay = min(self.backoff_max, self.backoff_base * 2**attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            attempt = min(attempt + 1, 16)
            try:
                self._conn = await RelayConnection.open(
                    self.url, self._dispatch, pin_sha256=self.pin_sha256
                )
                if self.token is None:
                    raise ConnectionLost("no session to resume")
                await self.resume(self.token)
            except CertificatePinMismatch as exc:
                self._set_state(ConnectionState.CLOSED, str(exc))
                return
            except ServerRejected as exc:
                if exc.code == ErrorCode.UNAUTHORIZED:
                    self.state = ConnectionState.CLOSED
                    self.on_event(
                        ConnectionChanged(
                            ConnectionState.CLOSED,
                            "session expired; sign in again",
                            session_ended=True,
                        )
                    )
                    return
                # Refused for now (e.g. too many connections): drop this socket and retry.
                await self._drop_connection()
                continue
            except Exception:
                # Timed out, refused or garbled: a half-open socket must not be waited on.
                await self._drop_connection()
                continue
            attempt = 0
            self._set_state(ConnectionState.CONNECTED)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    def _set_state(self, state: ConnectionState, detail: str = "") -> None:
        self.state = state
        self.on_event(ConnectionChanged(state, detail))


def _rejected_event(item: OutboxItem, exc: ServerRejected) -> Event:
    from securechat.client.events import DeliveryChanged, DeliveryState

    return DeliveryChanged(item.to, item.eid, DeliveryState.FAILED, exc.message, exc.code)
