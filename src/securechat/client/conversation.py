"""`ConversationId`: which conversation a message, an event or a history page belongs to.

Until groups, a conversation was a peer's username everywhere. A conversation
is now either direct (one peer) or a group (a group id), and the id says
which, so that a group can never be mistaken for a user of the same name.

The `key` is the one string form, used where a conversation is stored or
indexed: a direct conversation's key is the peer's username itself, exactly
what the vault has always stored, so every existing record and index stays
valid; a group's key starts with `#`, a character no username may hold
(`protocol.limits.USERNAME_PATTERN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GROUP_PREFIX = "#"


class ConversationKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class ConversationId:
    kind: ConversationKind
    name: str
    """The peer's username for a direct conversation, the group id for a group."""

    @classmethod
    def direct(cls, peer: str) -> ConversationId:
        return cls(ConversationKind.DIRECT, peer)

    @classmethod
    def group(cls, group_id: str) -> ConversationId:
        return cls(ConversationKind.GROUP, group_id)

    @classmethod
    def parse(cls, key: str) -> ConversationId:
        """The id a `key` stands for; the inverse of `key`."""
        if key.startswith(GROUP_PREFIX):
            return cls.group(key[len(GROUP_PREFIX) :])
        return cls.direct(key)

    @property
    def key(self) -> str:
        if self.kind == ConversationKind.GROUP:
            return GROUP_PREFIX + self.name
        return self.name

    @property
    def is_direct(self) -> bool:
        return self.kind == ConversationKind.DIRECT

    def __str__(self) -> str:
        return self.key
