"""Which identity key we hold for each peer, and what a key change lets the user do.

Each peer has a *pinned* key (trusted on first use or accepted after
`verify`) and, while a change is pending, an *offered* key: what a bundle,
a session start or a `sharekey` presented instead. A change is an alarm with
two ways out, and neither is forced on the user:

- keep the pinned key (`reject`): the offer is dropped and the conversation
  records that somebody, most likely the relay, presented another key;
- accept the offered key (`trust`) after comparing safety numbers.

The peer re-sharing the pinned key also ends the alarm as a rejection: a relay
that swapped a bundle once cannot make the user choose between its key and
silence. Keeping the pinned key is never less safe than before the alarm; a
relay that forges the re-share can only delay a genuine change (the peer's
next session start raises it again), never get a key of its own accepted.

The decisions (`classify_shared_key`, the warnings) are pure; `Trust` applies
them to the vault and says what happened in events.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from securechat.client import payloads as P
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ConversationChanged,
    ConversationState,
    KeyChanged,
    KeyKept,
    KeyShared,
)
from securechat.client.records import MessageRecord
from securechat.client.vault_store import Vault
from securechat.crypto.identity import IdentityPublicKey
from securechat.crypto.safety import format_safety_number, safety_number
from securechat.errors import ClientErrorCode, SessionError


def short_fingerprint(fingerprint: str) -> str:
    """The first four groups of a spaced fingerprint: enough to recognise, not to verify."""
    return " ".join(fingerprint.split()[:4])


class SharedKeyOutcome(enum.Enum):
    """What a `sharekey` from the peer does to our trust in them."""

    PIN = "pin"
    """No key pinned yet: trust on first use."""
    SAME = "same"
    """The pinned key again, nothing pending: only confirms it."""
    CLEARS_CHANGE = "clears_change"
    """The pinned key again while another was offered: the offer was not theirs."""
    CHANGE = "change"
    """A key other than the pinned one: an alarm until the user decides."""


def classify_shared_key(
    pinned: bytes | None, offered: bytes | None, shared: bytes
) -> SharedKeyOutcome:
    """Decides from the DER encodings alone; `offered` is the pending change, if any."""
    if pinned is None:
        return SharedKeyOutcome.PIN
    if shared != pinned:
        return SharedKeyOutcome.CHANGE
    return SharedKeyOutcome.SAME if offered is None else SharedKeyOutcome.CLEARS_CHANGE


@dataclass(frozen=True, slots=True)
class SafetyNumbers:
    """What `verify` shows: the pinned key's number and, during a change, the offered key's.

    Both are shown, labelled, so the user compares the one the peer reads out
    with each and knows which choice the match supports.
    """

    peer: str
    pinned: str
    offered: str | None = None
    verified: bool = False
    """The user marked the pinned key as verified (after comparing these numbers)."""

    def describe(self) -> str:
        """The text the CLI prints; the TUI lays the same parts out in its dialog."""
        if self.offered is None:
            return f"safety number with {self.peer}:\n{self.pinned}"
        return (
            f"safety number with {self.peer}'s PINNED key (the one you trusted before):\n"
            f"{self.pinned}\n"
            f"safety number with the NEW key offered for {self.peer} (not trusted):\n"
            f"{self.offered}\n"
            f"If {self.peer} reads out the pinned number, `reject {self.peer}` keeps it; "
            f"only if they read out the new one, `trust {self.peer}` accepts it."
        )


def safety_numbers(
    me: str,
    my_key: IdentityPublicKey,
    peer: str,
    pinned: IdentityPublicKey,
    offered: IdentityPublicKey | None,
    verified: bool = False,
) -> SafetyNumbers:
    def number(key: IdentityPublicKey) -> str:
        return format_safety_number(safety_number(me, my_key, peer, key))

    return SafetyNumbers(peer, number(pinned), number(offered) if offered else None, verified)


def rejection_warning(peer: str, pinned: str, rejected: str, *, by_peer: bool) -> str:
    """The warning left in the conversation when an offered key is dropped.

    `pinned` and `rejected` are fingerprints; `by_peer` says whether the peer's
    re-share ended the alarm (rather than the user's `reject`).
    """
    if by_peer:
        return (
            f"⚠ {peer} shared the pinned key {short_fingerprint(pinned)} again, so the "
            f"different key {short_fingerprint(rejected)} offered for {peer} before was not "
            "theirs: the relay or the network may have forged it to intercept this "
            "conversation. It was rejected."
        )
    return (
        f"⚠ you kept {peer}'s pinned key {short_fingerprint(pinned)} and rejected the "
        f"different key {short_fingerprint(rejected)} offered for {peer}. Unless {peer} "
        "changed devices, the relay or the network forged it to intercept this conversation."
    )


def rejection_record(
    peer: str, pinned: str, rejected: str, ts: float, *, by_peer: bool
) -> MessageRecord:
    """The warning as a `system` history entry: securechat's words, never shown as the peer's."""
    text = rejection_warning(peer, pinned, rejected, by_peer=by_peer)
    return MessageRecord(
        peer=peer,
        conversation=ConversationId.direct(peer).key,
        outgoing=False,
        kind="system",
        text=text,
        ts=ts,
    )


def key_changed_advice(peer: str) -> str:
    """What to do about a key change, said the same way wherever it blocks a request."""
    return (
        f"{peer}'s key changed: compare `verify {peer}` with them, then `reject {peer}` "
        f"keeps the key you had or `trust {peer}` accepts the new one"
    )


class Trust:
    """The pinned and offered keys of every peer, and the user's decisions about them.

    `state` tells a peer's conversation state, which the events report with a
    decision; it belongs to the direct sessions, which depend on this class.
    """

    def __init__(self, ctx: ClientContext, state: Callable[[str], ConversationState]) -> None:
        self._ctx = ctx
        self._state = state

    def pinned_key(self, peer: str) -> IdentityPublicKey | None:
        der = self._ctx.need_vault().get(K.pin(peer))
        return IdentityPublicKey(der) if der else None

    def key_change_pending(self, peer: str) -> bool:
        return self._ctx.need_vault().get(K.offered_key(peer)) is not None

    async def sharekey(self, peer: str) -> str:
        """Sends our identity key to `peer`; returns our fingerprint to read out."""
        vault, identity, _ = self._ctx.need_identity()
        body = P.encode(
            P.SharedKey(
                identity=identity.public.der, identity_dh=identity.signed_dh_public().to_bytes()
            )
        )
        new = vault.ensure_conversation(peer)
        await self._ctx.relay.send_envelope(peer, body)
        if new:
            # The relay shares presence once the peer follows us back (its first watch).
            await self._ctx.watch([peer])
        return identity.public.fingerprint_hex()

    def _pinned(self, vault: Vault, peer: str) -> bytes:
        pinned = vault.get(K.pin(peer))
        if pinned is None:
            raise SessionError(
                f"no key known for {peer}: ask them to `sharekey {self._ctx.username}`",
                ClientErrorCode.NO_KEY,
            )
        return pinned

    def verify(self, peer: str) -> SafetyNumbers:
        """The numbers to read out: the pinned key's, and during a change the offered one's."""
        vault, identity, me = self._ctx.need_identity()
        pinned = self._pinned(vault, peer)
        offered = vault.get(K.offered_key(peer))
        return safety_numbers(
            me,
            identity.public,
            peer,
            IdentityPublicKey(pinned),
            IdentityPublicKey(offered) if offered else None,
            self.is_verified(peer),
        )

    def mark_verified(self, peer: str) -> str:
        """Records that the user compared the safety number of the pinned key; returns its
        fingerprint. A later key change clears the mark (see `is_verified`)."""
        vault = self._ctx.need_vault()
        pinned = self._pinned(vault, peer)
        if vault.get(K.offered_key(peer)) is not None:
            raise SessionError(
                f"{peer}'s key changed: keep the pinned key or accept the new one first",
                ClientErrorCode.KEY_CHANGED,
            )
        vault.put(K.verified(peer), pinned)
        fingerprint = IdentityPublicKey(pinned).fingerprint_hex()
        self._ctx.emit(ConversationChanged(peer, self._state(peer), fingerprint))
        return fingerprint

    def is_verified(self, peer: str) -> bool:
        """The user marked the pinned key, and no key change happened since."""
        vault = self._ctx.need_vault()
        marked = vault.get(K.verified(peer))
        return marked is not None and marked == vault.get(K.pin(peer))

    def reject(self, peer: str) -> str:
        """Keeps the pinned key and drops the offered one; returns the pinned fingerprint.

        The session under the pinned key, if any, carries on; the conversation keeps a
        warning that another key was presented.
        """
        vault = self._ctx.need_vault()
        offered, pinned = vault.get(K.offered_key(peer)), vault.get(K.pin(peer))
        if offered is None or pinned is None:
            raise SessionError(
                f"{peer}'s key has not changed: there is no new key to reject",
                ClientErrorCode.KEY_UNCHANGED,
            )
        self._keep_pinned(vault, peer, pinned, offered, by_peer=False, eid=None)
        return IdentityPublicKey(pinned).fingerprint_hex()

    def _keep_pinned(
        self,
        vault: Vault,
        peer: str,
        pinned: bytes,
        offered: bytes,
        *,
        by_peer: bool,
        eid: str | None,
    ) -> None:
        """Ends a change in favour of the pinned key; one transaction stores the warning."""
        pinned_fp = IdentityPublicKey(pinned).fingerprint_hex()
        offered_fp = IdentityPublicKey(offered).fingerprint_hex()
        record = rejection_record(peer, pinned_fp, offered_fp, time.time(), by_peer=by_peer)
        if eid is None:
            message_id = vault.add_message(record, drop=(K.offered_key(peer),))
        else:
            stored = vault.record_incoming(peer, eid, record, {}, drop=(K.offered_key(peer),))
            assert stored is not None
            message_id = stored
        self._ctx.emit(KeyKept(peer, pinned_fp, offered_fp, message_id, by_peer))
        self._ctx.emit(ConversationChanged(peer, self._state(peer), pinned_fp))

    def trust(self, peer: str) -> str:
        """Accepts the key `peer` now offers and drops the old session; returns the fingerprint."""
        vault = self._ctx.need_vault()
        offered = vault.get(K.offered_key(peer))
        if offered is None:
            pinned = vault.get(K.pin(peer))
            if pinned is None:
                raise SessionError(f"no key from {peer} to trust yet", ClientErrorCode.NO_KEY)
            return IdentityPublicKey(pinned).fingerprint_hex()
        vault.put(K.pin(peer), offered)
        vault.delete(K.offered_key(peer))
        vault.delete(K.session(peer))
        vault.delete(K.verified(peer))
        fingerprint = IdentityPublicKey(offered).fingerprint_hex()
        self._ctx.emit(ConversationChanged(peer, ConversationState.NONE, fingerprint))
        return fingerprint

    def key_changed(self, peer: str, pinned: bytes, offered: bytes) -> None:
        """A different key is on offer: the verified mark goes, whichever key is kept."""
        vault = self._ctx.need_vault()
        vault.put(K.offered_key(peer), offered)
        vault.delete(K.verified(peer))
        old_fp = IdentityPublicKey(pinned).fingerprint_hex()
        new_fp = IdentityPublicKey(offered).fingerprint_hex()
        self._ctx.emit(KeyChanged(peer, old_fp, new_fp))
        self._ctx.emit(ConversationChanged(peer, ConversationState.KEY_CHANGED, new_fp))

    def receive_key(self, vault: Vault, peer: str, key: P.SharedKey, eid: str) -> None:
        """A `sharekey` from `peer` arrived: pin it, confirm it, or raise or end an alarm."""
        shared = IdentityPublicKey.from_der(key.identity)
        pinned, pending = vault.get(K.pin(peer)), vault.get(K.offered_key(peer))
        self._ctx.ensure_conversation(vault, peer)
        match classify_shared_key(pinned, pending, shared.der):
            case SharedKeyOutcome.PIN:
                vault.record_incoming(peer, eid, None, {K.pin(peer): shared.der})
                self._ctx.emit(KeyShared(peer, shared.fingerprint_hex()))
                self._ctx.emit(
                    ConversationChanged(peer, self._state(peer), shared.fingerprint_hex())
                )
            case SharedKeyOutcome.CHANGE:
                assert pinned is not None
                vault.record_incoming(peer, eid, None, {})
                self.key_changed(peer, pinned, shared.der)
            case SharedKeyOutcome.CLEARS_CHANGE:
                assert pinned is not None and pending is not None
                self._keep_pinned(vault, peer, pinned, pending, by_peer=True, eid=eid)
            case SharedKeyOutcome.SAME:
                vault.record_incoming(peer, eid, None, {})
                self._ctx.emit(KeyShared(peer, shared.fingerprint_hex()))
