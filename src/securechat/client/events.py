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
    | ErrorRaised
)
