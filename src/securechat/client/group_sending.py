"""Group messages going out: sealed for the epoch of the moment, sent, and kept in
the group outbox until the relay has stored them.

A message is stored (SENDING) with the session it advanced and its place in the
outbox, in one vault transaction. When the relay says our epoch is stale, the
Commits we missed are processed (`catch_up`) and the same content goes out
again, under the same eid, for the new epoch. Written while the relay is out of
reach, it waits and goes out after the next (re)connect, in order, as 1:1
messages do. It is kept as plaintext (in the vault, like the history) and
sealed when it goes: a sealed message belongs to an epoch the group may have
left by then. It keeps its eid, so if a send did reach the relay before its
answer was lost, the relay answers for the first copy.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from securechat.client import payloads as P
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import DeliveryChanged, DeliveryState, ErrorRaised
from securechat.client.group_store import Effects, GroupStore
from securechat.client.records import MessageRecord
from securechat.client.relay_client import Request, new_envelope_id
from securechat.client.trust import key_changed_advice
from securechat.errors import (
    ClientError,
    ClientErrorCode,
    ConnectionLost,
    SecureChatError,
    ServerRejected,
)
from securechat.groups import outputs as O
from securechat.groups.errors import GroupBusy, GroupError
from securechat.groups.session import GroupSession
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF

MAX_ROUNDS = 8
"""Answers fed back for one command (conflicts, fetches) before it gives up: the
relay moving on that often means others commit faster than we catch up."""
BUSY = "the group changed faster than this device could follow; try again"


class QueuedGroupMessage(msgspec.Struct, frozen=True, array_like=True):
    """A group message the relay has not stored yet."""

    group_id: str
    eid: str
    plaintext: bytes
    """`payloads.encode_inner` of the content: sealed anew for the epoch it goes in."""


_encode_queue = msgspec.msgpack.Encoder().encode
_decode_queue = msgspec.msgpack.Decoder(list[QueuedGroupMessage]).decode


def group_error(exc: GroupError) -> ClientError:
    code = ClientErrorCode.GROUP_BUSY if isinstance(exc, GroupBusy) else ClientErrorCode.NOT_ALLOWED
    return ClientError(str(exc), code)


def _group_send(group_id: str, message: O.SendMessage, eid: str) -> Callable[[int], F.ClientFrame]:
    def build(rid: int) -> F.ClientFrame:
        group = bytes.fromhex(group_id)
        return GF.GroupSend(rid=rid, group=group, epoch=message.epoch, eid=eid, body=message.body)

    return build


class GroupSending:
    retry_after = 4.0
    """Seconds before messages the relay was too busy for are sent again."""

    def __init__(
        self,
        ctx: ClientContext,
        store: GroupStore,
        request: Request,
        catch_up: Callable[[str, int], Awaitable[None]],
    ) -> None:
        """`catch_up(group_id, epoch)` fetches and processes the Commits from `epoch` on."""
        self._ctx = ctx
        self._store = store
        self._request = request
        self._catch_up = catch_up
        self._retry: asyncio.Task[None] | None = None

    def _retry_soon(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._send_later())

    async def _send_later(self) -> None:
        await asyncio.sleep(self.retry_after * random.uniform(0.8, 1.2))
        await self.send_queued(self.queued())

    def recipients(self, group_id: str) -> list[str]:
        """Everyone else in a group we may send to now (a file's readers)."""
        session = self._sendable(group_id, self._store.session(group_id))
        return sorted({m.username for m in session.members} - {session.own_user})

    async def send_text(self, group_id: str, text: str) -> str:
        P.check_text(text)
        return await self.send_inner(group_id, P.Text(text=text), kind="text", text=text)

    async def send_inner(
        self, group_id: str, content: P.Inner, *, kind: str, text: str, file_id: str = ""
    ) -> str:
        """Encrypts `content` once for every member and sends it; returns its eid.

        The message is stored (SENDING) with the session it advanced and a place in
        the group outbox; when the relay says our epoch is stale, the Commits we
        missed are processed and the same content goes out again, under the same
        eid, for the new epoch. Offline, it returns at once and the message goes
        out after reconnecting; refused for good, it raises.
        """
        _, _, me = self._ctx.need_identity()
        key = ConversationId.group(group_id).key
        sent_at = time.time()
        item = QueuedGroupMessage(group_id, new_envelope_id(), P.encode_inner(content, sent_at))
        record = MessageRecord(
            peer=key,
            conversation=key,
            sender=me,
            outgoing=True,
            text=text,
            ts=sent_at,
            eid=item.eid,
            state=DeliveryState.SENDING,
            kind=kind,
            file_id=file_id,
        )
        earlier = self.queued()
        message = self._seal(group_id, item.plaintext, record, queue=[*earlier, item])
        if earlier and not await self.send_queued(earlier):
            return item.eid  # offline again: the new one waits behind them
        await self._deliver(item, message)
        return item.eid

    async def _deliver(self, item: QueuedGroupMessage, message: O.SendMessage | None) -> bool:
        """Sends one queued message until the relay stores it; False if the connection
        went first (it stays queued). Refused for good, it is FAILED and raises."""
        for _ in range(MAX_ROUNDS):
            if message is None:
                message = self._seal(item.group_id, item.plaintext, None)
            try:
                answer = await self._request(_group_send(item.group_id, message, item.eid))
            except (ConnectionLost, TimeoutError):
                return False
            except ServerRejected as exc:
                if exc.transient:  # busy or rate-limited: tried again shortly
                    self._retry_soon()
                    return False
                self._finish(item, DeliveryState.FAILED)
                raise
            if isinstance(answer, F.Accepted):
                self._finish(item, DeliveryState.SENT)
                if answer.full:
                    # The relay kept no copy for them: they will never read this message.
                    queues = (
                        "queue on the relay is"
                        if len(answer.full) == 1
                        else "queues on the relay are"
                    )
                    self._ctx.emit(
                        ErrorRaised(
                            f"not delivered to {', '.join(answer.full)}: their {queues} full",
                            ClientErrorCode.QUEUE_FULL,
                        )
                    )
                return True
            if not isinstance(answer, GF.GroupConflict):
                raise ClientError(f"unexpected answer {type(answer).__name__} to group_send")
            await self._catch_up(item.group_id, message.epoch)
            message = None
        self._finish(item, DeliveryState.FAILED)
        raise ClientError(BUSY, ClientErrorCode.GROUP_BUSY)

    async def send_queued(self, items: Sequence[QueuedGroupMessage]) -> bool:
        """The queued messages in order; False once the connection is gone. One that can
        no longer go (we left, a key changed) is FAILED and reported, and the rest go on."""
        for item in items:
            try:
                if not await self._deliver(item, None):
                    return False
            except SecureChatError as exc:
                self._finish(item, DeliveryState.FAILED)
                code = exc.code if isinstance(exc, ClientError) else ClientErrorCode.E2E
                self._ctx.emit(ErrorRaised(f"a group message was not sent: {exc}", code))
        return True

    def queued(self) -> list[QueuedGroupMessage]:
        blob = self._ctx.need_vault().get(K.GROUP_OUTBOX)
        return _decode_queue(blob) if blob else []

    def _finish(self, item: QueuedGroupMessage, state: DeliveryState) -> None:
        """Out of the outbox, its line marked: the mark first, so a crash in between
        sends it again (the relay answers for the first copy) rather than losing it.
        Finished already (a failure reported on its way up), it is left alone."""
        queued = self.queued()
        if item not in queued:
            return
        vault = self._ctx.need_vault()
        vault.update_delivery(item.eid, state)
        remaining = [q for q in queued if q.eid != item.eid]
        vault.record_all([], {K.GROUP_OUTBOX: _encode_queue(remaining)})
        self._ctx.emit(DeliveryChanged(ConversationId.group(item.group_id).key, item.eid, state))

    def _seal(
        self,
        group_id: str,
        plaintext: bytes,
        record: MessageRecord | None,
        *,
        queue: list[QueuedGroupMessage] | None = None,
    ) -> O.SendMessage:
        """Protects `plaintext` for the current epoch and saves the session with the
        message's line and the outbox with it when given (one transaction)."""
        session = self._sendable(group_id, self._store.session(group_id))
        try:
            session, outputs = session.send(plaintext)
        except GroupError as exc:
            raise group_error(exc) from exc
        (message,) = outputs
        assert isinstance(message, O.SendMessage)
        effects = Effects(received=time.time())
        if record is not None:
            effects.records.append(record)
        if queue is not None:
            effects.state[K.GROUP_OUTBOX] = _encode_queue(queue)
        self._store.save(group_id, session, effects)
        return message

    def _sendable(self, group_id: str, session: GroupSession) -> GroupSession:
        """The session with key changes the user resolved since cleared; refused while any
        member's key change is unresolved (the 1:1 rule: nothing goes to a swapped key)."""
        session = self._store.rechecked(group_id, session)
        if session.blocked:
            user = sorted(session.blocked)[0]
            raise ClientError(key_changed_advice(user), ClientErrorCode.KEY_CHANGED)
        return session
