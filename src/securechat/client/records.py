"""What the vault stores: history entries, conversations, messages awaiting a receipt.

These are a stored format. Each is a versioned msgspec Struct encoded as a map,
so a field added with a default still reads every older record; a field is
never removed or renamed, and old versions are kept as fixed samples under
tests/client/samples. `Vault` (vault_store.py) seals and indexes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from securechat.client.conversation import ConversationId


class MessageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One history entry; versioned so that an old vault still reads.

    v2 names its conversation and its sender, which a group message needs (a
    group has many senders). v1 records have only `peer`: they are read as the
    direct conversation with that peer, from that peer when incoming: `Vault`
    fills both fields in as it opens them (see `explicit`), and a v1 record is
    written again, as v2, only when it changes anyway (its delivery state).
    v2 still writes `peer`, so a client from before v2 reads the history too.
    """

    v: int = 2
    peer: str
    """The other party of a direct conversation."""
    outgoing: bool
    text: str
    ts: float
    eid: str = ""
    state: str = ""
    kind: str = "text"
    """`text`, `file` (text holds the file manifest summary) or `system`."""
    file_id: str = ""
    received: float = 0.0
    """The relay's time for an incoming message (`ts` is the sender's); 0 in older records."""
    conversation: str = ""
    """The `ConversationId.key` it belongs to (v2)."""
    sender: str = ""
    """Who wrote it (v2): a username; empty for securechat's own `system` entries."""

    @property
    def conversation_id(self) -> ConversationId:
        return ConversationId.parse(self.conversation or self.peer)

    def explicit(self, owner: str) -> MessageRecord:
        """This record with its conversation and sender filled in; `owner` wrote outgoing ones.

        Records of v1 (and any written without them) name neither: the direct
        conversation with `peer` is theirs, and the peer or the owner their sender.
        """
        if self.conversation and (self.sender or self.kind == "system"):
            return self
        sender = "" if self.kind == "system" else owner if self.outgoing else self.peer
        return msgspec.structs.replace(
            self,
            v=max(self.v, 2),
            conversation=self.conversation or self.peer,
            sender=self.sender or sender,
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    record: MessageRecord


class ConversationRecord(msgspec.Struct, frozen=True, kw_only=True):
    v: int = 1
    peer: str
    last_ts: float = 0.0
    unread: int = 0


class Unconfirmed(msgspec.Struct, frozen=True, kw_only=True):
    """A sent message the peer has not confirmed yet: the exact body, to send again."""

    v: int = 1
    eid: str
    peer: str
    body: bytes
    sent_at: float
    attempts: int = 0
    last_try: float = 0.0
    session_id: bytes = b""
    """The session that sealed it: after a new session the peer could not open it."""
