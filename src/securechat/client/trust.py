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

The decisions here are pure: the core stores what they say.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from securechat.client.conversation import ConversationId
from securechat.client.vault_store import MessageRecord
from securechat.crypto.identity import IdentityPublicKey
from securechat.crypto.safety import format_safety_number, safety_number


def pin_name(peer: str) -> str:
    """The vault entry of the key we trust for `peer`."""
    return f"pin:{peer}"


def offered_name(peer: str) -> str:
    """The vault entry of a different key presented for `peer`, until the user decides."""
    return f"offered:{peer}"


def verified_name(peer: str) -> str:
    """The vault entry of the key the user compared with `peer` and marked verified.

    Holding the key itself (not a flag) means any other pinned key reads as unverified.
    """
    return f"verified:{peer}"


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
