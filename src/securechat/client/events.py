"""The one stream of typed events the client core gives a UI.

A UI (the TUI, the CLI's `receive`, a bot) reads `ChatClient.events` and
never looks inside the client's state to learn what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from securechat.client.conversation import ConversationId


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class ConversationState(StrEnum):
    NONE = "none"
    PENDING = "pending"
    ACTIVE = "active"
    KEY_CHANGED = "key_changed"
    JAMMED = "jammed"
    """The peer sent past the skip limit: nothing more of theirs opens until a new `talk`."""


class DeliveryState(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    """Stored by the relay: it will reach the peer even if the relay crashes."""
    DELIVERED = "delivered"
    """The peer's client confirmed, end to end, that it opened the message."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    state: ConnectionState
    detail: str = ""
    session_ended: bool = False
    """CLOSED because the relay no longer takes the session (expired, password reset):
    only a new sign-in (`ChatClient.sign_in_again`) brings the connection back."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    conversation: ConversationId
    sender: str
    """Who wrote it: in a direct conversation, the peer."""
    text: str
    ts: float
    """When the sender says it sent the message: authenticated end to end."""
    message_id: int
    received_ts: float = 0.0
    """When the relay says it received it: not authenticated; 0 when unknown."""
    clocks_disagree: bool = False
    """The two times differ by more than `payloads.CLOCK_DISAGREEMENT` seconds."""

    @property
    def peer(self) -> str:
        """The conversation's name: the peer of a direct conversation."""
        return self.conversation.name


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    peer: str
    """The conversation's key: the peer's username, or `#` and the group id for a group."""
    eid: str
    state: DeliveryState
    detail: str = ""
    code: str = ""
    """The relay's error code when FAILED (`not_found`: the peer's account is gone)."""


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    user: str
    state: str


@dataclass(frozen=True, slots=True)
class ConversationChanged:
    peer: str
    state: ConversationState
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class KeyChanged:
    """The directory or a `sharekey` offered a key other than the pinned one."""

    peer: str
    pinned_fingerprint: str
    offered_fingerprint: str


@dataclass(frozen=True, slots=True)
class KeyKept:
    """A pending key change ended with the pinned key kept; `message_id` is the stored warning.

    `by_peer`: the peer shared the pinned key again, rather than the user rejecting the offer.
    """

    peer: str
    pinned_fingerprint: str
    rejected_fingerprint: str
    message_id: int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class KeyShared:
    """A peer's identity key arrived by `sharekey` and was pinned (trust on first use)."""

    peer: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class FileOffered:
    conversation: ConversationId
    sender: str
    file_id: str
    name: str
    size: int
    message_id: int

    @property
    def peer(self) -> str:
        """The conversation's name: the peer of a direct conversation."""
        return self.conversation.name


@dataclass(frozen=True, slots=True)
class TransferProgress:
    file_id: str
    done: int
    total: int
    direction: str


@dataclass(frozen=True, slots=True)
class MessagesMissing:
    """Numbered messages from `peer` that did not arrive in time: perhaps dropped by the relay."""

    peer: str
    count: int

    @property
    def text(self) -> str:
        noun = "message" if self.count == 1 else "messages"
        verb = "is" if self.count == 1 else "are"
        return f"{self.count} {noun} from {self.peer} {verb} missing"


class GroupChange(StrEnum):
    CREATED = "created"
    ADDED = "added"
    REMOVED = "removed"
    LEFT = "left"
    RENAMED = "renamed"
    TOPIC = "topic"
    ADMINS = "admins"
    """`subject` names the members made admins, comma-separated."""


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """A change to a group's members or metadata, also stored in its history as a system line.

    `subject` is the user added, removed or who left, or the new name or topic.
    When `subject` is the signed-in user and `change` is REMOVED, this device
    is no longer in the group: it keeps the history and can send no more.
    """

    conversation: ConversationId
    change: GroupChange
    by: str
    subject: str
    message_id: int

    @property
    def text(self) -> str:
        match self.change:
            case GroupChange.CREATED:
                return f"{self.by} created the group {self.subject}"
            case GroupChange.ADDED:
                return f"{self.by} added {self.subject}"
            case GroupChange.REMOVED:
                return f"{self.by} removed {self.subject}"
            case GroupChange.LEFT:
                return f"{self.subject} left"
            case GroupChange.RENAMED:
                return f"{self.by} renamed the group to {self.subject}"
            case GroupChange.TOPIC:
                return f"{self.by} set the topic to {self.subject}"
            case GroupChange.ADMINS:
                return f"{self.by} made {self.subject} an admin"


@dataclass(frozen=True, slots=True)
class GroupInvited:
    """We were added to a group: who did it, and who is in it, shown before it opens.

    `pinned` is False when the inviter's key was not pinned before: it is pinned
    now (trust on first use, as `sharekey`), and the UI shows `fingerprint` to compare.
    """

    conversation: ConversationId
    by: str
    fingerprint: str
    pinned: bool
    name: str
    topic: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GroupKeyChanged:
    """A member of a group presents another identity key than the pinned one.

    The group sends nothing until the user compares keys (`verify user`) and
    keeps (`reject user`) or accepts (`trust user`) one, as in 1:1 conversations.
    """

    conversation: ConversationId
    user: str
    pinned_fingerprint: str
    offered_fingerprint: str


@dataclass(frozen=True, slots=True)
class ErrorRaised:
    message: str
    code: str = ""


Event = (
    ConnectionChanged
    | MessageReceived
    | DeliveryChanged
    | PresenceChanged
    | ConversationChanged
    | KeyChanged
    | KeyKept
    | KeyShared
    | FileOffered
    | MessagesMissing
    | TransferProgress
    | GroupChanged
    | GroupInvited
    | GroupKeyChanged
    | ErrorRaised
)
