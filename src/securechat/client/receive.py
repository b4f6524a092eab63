"""The envelope router: what arrives from the relay, opened, stored once, and reported.

Every delivered envelope passes through `on_envelope` before the relay is
acknowledged: it is opened, stored with the session state it advanced in one
vault transaction, and turned into events. An envelope that cannot be opened
is still marked seen, so a poison envelope is not redelivered forever.
"""

from __future__ import annotations

import contextlib
import logging
import time

from securechat.client import payloads as P
from securechat.client import sequence, transfers
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.direct import DirectSessions
from securechat.client.directory import KeyDirectory
from securechat.client.events import (
    ConversationChanged,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    FileOffered,
    MessageReceived,
)
from securechat.client.records import MessageRecord
from securechat.client.trust import Trust
from securechat.client.vault_store import Vault
from securechat.crypto import handshake, sessions
from securechat.crypto.errors import CryptoError, IdentityKeyMismatch, TooManySkippedMessages
from securechat.crypto.filestream import FileManifest
from securechat.crypto.prekeys import PrekeySecrets
from securechat.crypto.ratchet import RatchetMessage, RatchetState
from securechat.errors import ClientErrorCode, SecureChatError, SessionError
from securechat.protocol import frames as F

log = logging.getLogger("securechat.client")


class Receiver:
    def __init__(
        self, ctx: ClientContext, trust: Trust, direct: DirectSessions, keys: KeyDirectory
    ) -> None:
        self._ctx = ctx
        self._trust = trust
        self._direct = direct
        self._keys = keys

    async def on_envelope(self, envelope: F.Envelope) -> None:
        """Runs for each delivered envelope before it is acknowledged. Never makes requests."""
        ctx = self._ctx
        vault = ctx.vault
        if vault is None or ctx.identity is None or ctx.username is None:
            raise SessionError(
                "envelope arrived before the vault was open", ClientErrorCode.NOT_SIGNED_IN
            )
        if vault.seen(envelope.sender, envelope.eid):
            self._confirm_again(vault, envelope)
            return
        peer = envelope.sender
        if vault.get(K.gone(peer)) is not None:
            # The name has an account again (a new one: its key is checked as any other),
            # which wrote to us: follow it again.
            vault.delete(K.gone(peer))
            self._ctx.spawn(self._ctx.watch([peer]))
        try:
            outer = P.decode_outer(envelope.body)
            match outer:
                case P.SharedKey():
                    self._trust.receive_key(vault, peer, outer, envelope.eid)
                case P.PrekeyEnvelope():
                    self._receive_prekey(vault, peer, outer, envelope)
                case P.RatchetEnvelope():
                    state_blob = vault.get(K.session(peer))
                    if state_blob is None:
                        raise SessionError(f"a message from {peer} arrived without a session")
                    if vault.get(K.offered_key(peer)) is not None:
                        raise SessionError(
                            f"{peer}'s key changed; message held back", ClientErrorCode.KEY_CHANGED
                        )
                    current = RatchetState.from_bytes(state_blob)
                    try:
                        opened = sessions.open_message(
                            self._direct.session_record(peer),
                            current,
                            RatchetMessage.from_bytes(outer.message),
                            peer,
                            ctx.username,
                            int(time.time()),
                        )
                    except TooManySkippedMessages:
                        self._direct.jam(vault, peer, current)
                        raise
                    self._receive_ratchet(vault, peer, opened, envelope, self._direct.unjam(peer))
        except (CryptoError, SecureChatError) as exc:
            vault.record_incoming(peer, envelope.eid, None, {})
            ctx.emit(ErrorRaised(f"message from {peer} rejected: {exc}", ClientErrorCode.E2E))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # Anything else malformed is dropped too: a poison envelope must not be
            # redelivered on every connection.
            log.warning("dropped an unreadable envelope: %s", type(exc).__name__)
            vault.record_incoming(peer, envelope.eid, None, {})
            ctx.emit(
                ErrorRaised(f"an unreadable message from {peer} was dropped", ClientErrorCode.E2E)
            )

    async def on_push(self, frame: F.ServerFrame) -> None:
        match frame:
            case F.Presence():
                if frame.state == "deleted" and self._ctx.vault is not None:
                    self._ctx.vault.put(K.gone(frame.user), b"1")
                self._ctx.presence_pushed(frame.user, frame.state)
            case F.PrekeysLow():
                self._ctx.spawn(self._keys.maintain(frame.remaining, frame.kem_remaining))
            case F.Error():
                self._ctx.emit(ErrorRaised(frame.message, frame.code))
            case _:
                pass

    def _confirm_again(self, vault: Vault, envelope: F.Envelope) -> None:
        """A message we have, sent again: its sender did not get our receipt, so resend it."""
        stored = vault.message_by_eid(envelope.eid)
        if (
            stored is not None
            and not stored.record.outgoing
            and stored.record.peer == envelope.sender
            and stored.record.kind in ("text", "file")
        ):
            self._ctx.spawn(self._receipt(envelope.sender, envelope.eid))

    async def _receipt(self, peer: str, eid: str) -> None:
        with contextlib.suppress(SessionError):
            await self._direct.send_inner(peer, P.Receipt(eids=[eid]), None)

    def _numbered(
        self, vault: Vault, peer: str, opened: P.Opened, state: RatchetState
    ) -> dict[str, bytes]:
        """The window of what arrived from `peer`, with this message in it."""
        if opened.seq == 0:
            return {}
        window = sequence.window_for(
            sequence.decode_window(vault.get(K.received_window(peer))), state.session_id
        )
        window = sequence.arrive(window, opened.seq, time.time())
        return {K.received_window(peer): sequence.encode(window)}

    def _receive_prekey(
        self, vault: Vault, peer: str, outer: P.PrekeyEnvelope, envelope: F.Envelope
    ) -> None:
        _, identity, me = self._ctx.need_identity()
        initial = handshake.InitialMessage.from_bytes(outer.initial)
        secrets_blob = vault.get(K.PREKEYS)
        if secrets_blob is None:
            raise SessionError("no prekeys in the vault", ClientErrorCode.VAULT_DAMAGED)
        pinned = self._trust.pinned_key(peer)
        try:
            result = handshake.respond(
                identity, me, peer, pinned, PrekeySecrets.from_bytes(secrets_blob), initial
            )
        except IdentityKeyMismatch:
            vault.record_incoming(peer, envelope.eid, None, {})
            self._trust.key_changed(peer, pinned.der if pinned else b"", initial.identity_der)
            return
        record = self._direct.session_record(peer)
        current = self._direct.current_session(peer)
        first = sessions.open_start(
            record,
            current,
            result.state,
            RatchetMessage.from_bytes(outer.message),
            peer,
            me,
            int(time.time()),
        )
        opened = None
        if first is not None:
            hello = P.decode_inner(first.plaintext).content
            started_at = hello.created_at_ms if isinstance(hello, P.Hello) else None
            opened = sessions.accept_start(record, current, first, started_at)
        if opened is None:
            # A replayed session start: dropped like any other replay, the session untouched.
            vault.record_incoming(peer, envelope.eid, None, {})
            return
        extra = {K.PREKEYS: result.secrets.to_bytes()}
        if pinned is None:
            extra[K.pin(peer)] = result.peer_identity.der
        self._ctx.ensure_conversation(vault, peer)
        self._receive_ratchet(vault, peer, opened, envelope, extra)

    def _receive_ratchet(
        self,
        vault: Vault,
        peer: str,
        opened: sessions.Opened,
        envelope: F.Envelope,
        extra: dict[str, bytes],
    ) -> None:
        was_confirmed = opened.was_confirmed
        conversation = ConversationId.direct(peer)
        payload = P.decode_inner(opened.plaintext)
        inner = payload.content
        sent_at = payload.sent_at if payload.sent_at is not None else envelope.ts
        changes = dict(extra)
        if opened.current is not None:
            changes[K.session(peer)] = opened.current.to_bytes()
            # Numbering belongs to the current session; a late message of a replaced one
            # does not disturb its window.
            changes.update(self._numbered(vault, peer, payload, opened.current))
        if opened.record is not None:
            changes[K.sessions(peer)] = opened.record.to_bytes()
        match inner:
            case P.Text():
                record = MessageRecord(
                    peer=peer,
                    conversation=conversation.key,
                    sender=peer,
                    outgoing=False,
                    text=inner.text,
                    ts=sent_at,
                    eid=envelope.eid,
                    received=envelope.ts,
                )
                message_id = vault.record_incoming(peer, envelope.eid, record, changes)
                assert message_id is not None
                self._ctx.emit(
                    MessageReceived(
                        conversation,
                        peer,
                        inner.text,
                        sent_at,
                        message_id,
                        envelope.ts,
                        P.clocks_disagree(sent_at, envelope.ts),
                    )
                )
                self._ctx.spawn(self._direct.send_inner(peer, P.Receipt(eids=[envelope.eid]), None))
            case P.Receipt():
                vault.record_incoming(peer, envelope.eid, None, changes)
                for eid in inner.eids:
                    vault.drop_unconfirmed(eid, peer)
                    if vault.update_delivery(eid, DeliveryState.DELIVERED):
                        self._ctx.emit(DeliveryChanged(peer, eid, DeliveryState.DELIVERED))
            case P.Hello():
                vault.record_incoming(peer, envelope.eid, None, changes)
                if not was_confirmed:
                    self._ctx.spawn(self._direct.send_inner(peer, P.Hello(), None))
            case P.FileOffer():
                manifest = FileManifest.from_bytes(inner.manifest)
                record = MessageRecord(
                    peer=peer,
                    conversation=conversation.key,
                    sender=peer,
                    outgoing=False,
                    kind="file",
                    file_id=inner.blob_id,
                    text=f"{manifest.name} ({transfers.human_size(manifest.size)})",
                    ts=sent_at,
                    eid=envelope.eid,
                    received=envelope.ts,
                )
                changes[K.offered_file(inner.blob_id)] = inner.manifest
                message_id = vault.record_incoming(peer, envelope.eid, record, changes)
                assert message_id is not None
                self._ctx.emit(
                    FileOffered(
                        conversation,
                        peer,
                        inner.blob_id,
                        manifest.name,
                        manifest.size,
                        message_id,
                    )
                )
                self._ctx.spawn(self._direct.send_inner(peer, P.Receipt(eids=[envelope.eid]), None))
        if opened.confirmed != was_confirmed or extra:
            self._ctx.emit(ConversationChanged(peer, self._direct.conversation_state(peer)))
