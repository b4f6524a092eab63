"""Direct (1:1) sessions: starting one, its state, and sealing what we send in it.

A session starts from the peer's published bundle (PQXDH, `talk`) and then
runs a Double Ratchet; its state is stored in the same vault transaction as
the message it sealed and the outbox entry that carries it, so a crash can
never leave a message sent under a state the vault forgot.
"""

from __future__ import annotations

import time

from securechat.client import payloads as P
from securechat.client import sequence
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import ConversationChanged, ConversationState, DeliveryState
from securechat.client.records import MessageRecord
from securechat.client.relay_client import OutboxItem, new_envelope_id
from securechat.client.trust import Trust, key_changed_advice
from securechat.client.vault_store import Vault
from securechat.crypto import handshake, ratchet, sessions
from securechat.crypto.errors import CryptoError, IdentityKeyMismatch
from securechat.crypto.prekeys import PrekeyBundle
from securechat.crypto.ratchet import RatchetState
from securechat.crypto.sessions import SessionRecord
from securechat.errors import ClientErrorCode, ProtocolError, SessionError
from securechat.protocol import frames as F


class DirectSessions:
    def __init__(self, ctx: ClientContext, trust: Trust) -> None:
        self._ctx = ctx
        self._trust = trust

    def conversation_state(self, peer: str) -> ConversationState:
        vault = self._ctx.need_vault()
        if vault.get(K.offered_key(peer)) is not None:
            return ConversationState.KEY_CHANGED
        blob = vault.get(K.session(peer))
        if blob is None:
            return ConversationState.NONE
        state = RatchetState.from_bytes(blob)
        if vault.get(K.jammed(peer)) == state.session_id:
            return ConversationState.JAMMED
        return ConversationState.ACTIVE if state.confirmed else ConversationState.PENDING

    async def talk(self, peer: str) -> ConversationState:
        """Starts a session from the peer's published bundle; works while they are offline."""
        vault, identity, me = self._ctx.need_identity()
        if peer == me:
            raise SessionError("you cannot open a session with yourself", ClientErrorCode.SELF)
        if self._trust.key_change_pending(peer):
            raise SessionError(key_changed_advice(peer), ClientErrorCode.KEY_CHANGED)
        answer = await self._ctx.relay.request(lambda rid: F.FetchBundle(rid=rid, user=peer))
        assert isinstance(answer, F.Bundle)
        now_ms = int(time.time() * 1000)
        try:
            ident = P.decode_identity_blob(answer.identity)
            bundle = PrekeyBundle.from_blobs(
                ident.der,
                ident.identity_dh,
                answer.signed_prekey,
                # PQXDH: a one-time KEM prekey when the relay has one, the last-resort else.
                answer.one_time_kem_prekey or answer.kem_prekey,
                answer.one_time_prekey,
            )
            result = handshake.initiate(identity, me, peer, self._trust.pinned_key(peer), bundle)
        except IdentityKeyMismatch:
            pinned = vault.get(K.pin(peer)) or b""
            self._trust.key_changed(peer, pinned, ident.der)
            raise SessionError(
                f"the relay offered a different key for {peer}: possible interception. "
                f"Compare `verify {peer}` with them, then `reject {peer}` or `trust {peer}`",
                ClientErrorCode.KEY_CHANGED,
            ) from None
        except (CryptoError, ProtocolError) as exc:
            raise SessionError(
                f"{peer}'s published keys are invalid: {exc}", ClientErrorCode.INVALID_KEYS
            ) from exc
        if result.newly_pinned:
            vault.put(K.pin(peer), result.peer_identity.der)
        state, message = ratchet.encrypt(
            result.state, P.encode(P.Hello(created_at_ms=now_ms)), me, peer
        )
        body = P.encode(
            P.PrekeyEnvelope(initial=result.initial.to_bytes(), message=message.to_bytes())
        )
        item = OutboxItem(new_envelope_id(), peer, body)
        new = vault.ensure_conversation(peer)
        record = sessions.own_start(
            self.session_record(peer), self.current_session(peer), result.state, now_ms
        )
        vault.record_outgoing(
            None, {K.session(peer): state.to_bytes(), K.sessions(peer): record.to_bytes()}, item
        )
        await self._ctx.relay.transmit(item)
        if new:
            await self._ctx.watch([peer])
        self._ctx.emit(
            ConversationChanged(
                peer, ConversationState.PENDING, result.peer_identity.fingerprint_hex()
            )
        )
        return ConversationState.PENDING

    async def send_text(self, peer: str, text: str) -> str:
        """Encrypts and queues a message; never sends anything in clear."""
        P.check_text(text)
        _, _, me = self._ctx.need_identity()
        eid = new_envelope_id()
        record = MessageRecord(
            peer=peer,
            conversation=ConversationId.direct(peer).key,
            sender=me,
            outgoing=True,
            text=text,
            ts=time.time(),
            eid=eid,
            state=DeliveryState.SENDING,
        )
        await self.send_inner(peer, P.Text(text=text), record, eid)
        return eid

    async def send_inner(
        self, peer: str, inner: P.Inner, record: MessageRecord | None, eid: str | None = None
    ) -> int | None:
        """Seals `inner` in format 2: numbered if a user would miss it, padded, untagged."""
        vault, _, me = self._ctx.need_identity()
        state = self.usable_session(peer)
        changes: dict[str, bytes] = {}
        number = 0
        if P.counted(inner):
            counter = sequence.next_number(
                sequence.decode_counter(vault.get(K.sent_count(peer))), state.session_id
            )
            changes[K.sent_count(peer)] = sequence.encode(counter)
            number = counter.last
        sent_at = record.ts if record is not None else time.time()
        plaintext = P.encode_inner(inner, sent_at, number)
        state, message = ratchet.encrypt(state, plaintext, me, peer)
        item = OutboxItem(eid or new_envelope_id(), peer, P.encode_message(message.to_bytes()))
        changes[K.session(peer)] = state.to_bytes()
        confirm = state.session_id if number else None
        message_id = vault.record_outgoing(record, changes, item, confirm=confirm)
        await self._ctx.relay.transmit(item)
        return message_id

    def usable_session(self, peer: str) -> RatchetState:
        vault = self._ctx.need_vault()
        if vault.get(K.offered_key(peer)) is not None:
            raise SessionError(key_changed_advice(peer), ClientErrorCode.KEY_CHANGED)
        blob = vault.get(K.session(peer))
        if blob is None:
            raise SessionError(
                f"no secure session with {peer}: type `sharekey {peer}` and `talk {peer}` first",
                ClientErrorCode.NO_SESSION,
            )
        state = RatchetState.from_bytes(blob)
        if state.send_chain is None:
            raise SessionError(
                f"waiting for {peer} to answer the session set-up", ClientErrorCode.SESSION_PENDING
            )
        return state

    def session_id(self, peer: str) -> bytes | None:
        blob = self._ctx.need_vault().get(K.session(peer))
        return RatchetState.from_bytes(blob).session_id if blob else None

    def session_record(self, peer: str) -> SessionRecord:
        blob = self._ctx.need_vault().get(K.sessions(peer))
        return SessionRecord.from_bytes(blob) if blob else SessionRecord()

    def current_session(self, peer: str) -> RatchetState | None:
        blob = self._ctx.need_vault().get(K.session(peer))
        return RatchetState.from_bytes(blob) if blob else None

    def jam(self, vault: Vault, peer: str, current: RatchetState) -> None:
        """Every later message of this session lies past the limit too: say so once.

        The skip limit is checked before a message authenticates, so a relay could also
        forge this; starting a new session (`talk`) is the cure either way and harmless.
        """
        if vault.get(K.jammed(peer)) != current.session_id:
            vault.put(K.jammed(peer), current.session_id)
            self._ctx.emit(ConversationChanged(peer, ConversationState.JAMMED))

    def unjam(self, peer: str) -> dict[str, bytes]:
        """A message that opens shows the session was not stuck after all (a forged header)."""
        return {K.jammed(peer): b""} if self._ctx.need_vault().get(K.jammed(peer)) else {}
