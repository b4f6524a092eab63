"""What the relay keeps, as the stores hand it over: plain frozen records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

GroupKind = Literal["commit", "welcome", "welcome_file", "message"]
"""`welcome_file`: a Welcome sent as a file, its body the file id (delivered as a
`welcome` with `file`)."""
"""What a group delivery carries: a Commit, a Welcome, or a message (or proposal)."""


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password_hash: bytes
    recovery_hash: bytes | None
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    token_hash: bytes
    username: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class NewEnvelope:
    recipient: str
    sender: str
    eid: str
    body: bytes
    ts: float
    sid: int | None = None
    """Set when the relay took it from `QueueStore.reserve_sid` to deliver before the write."""


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    sid: int
    recipient: str
    sender: str
    eid: str
    body: bytes
    ts: float
    group: bytes | None = None
    """Set on a group's deliveries, which leave as `group_deliver` (with `kind`, `epoch`)."""
    kind: GroupKind | None = None
    epoch: int | None = None


WELCOME_EID_SUFFIX = "~w"
"""A Welcome is stored under its Commit's eid and this suffix, which no client eid can
carry (`ENVELOPE_ID_PATTERN`): (sender, eid) stays unique, and a re-sent Commit is
recognised by its own eid."""


@dataclass(frozen=True, slots=True)
class GroupState:
    epoch: int
    """Commits the relay accepted for the group."""
    members: frozenset[str]


@dataclass(frozen=True, slots=True)
class NewCommit:
    """A Commit checked by the delivery service, for the store to order and deliver."""

    group: bytes
    epoch: int
    sender: str
    eid: str
    body: bytes
    welcome: bytes | None
    added: tuple[str, ...]
    removed: tuple[str, ...]
    ts: float
    create: bool
    """The group is unknown and this Commit (at epoch 0) creates it."""
    welcome_kind: GroupKind = "welcome"
    """`welcome_file` when `welcome` is the id of a file holding the Welcome."""

    def commit_body(self) -> GroupBody:
        return GroupBody(self.group, self.sender, self.eid, self.body, self.ts)

    def welcome_body(self) -> GroupBody | None:
        """The Welcome, stored under the Commit's eid and `WELCOME_EID_SUFFIX`."""
        if self.welcome is None:
            return None
        return GroupBody(
            self.group, self.sender, self.eid + WELCOME_EID_SUFFIX, self.welcome, self.ts
        )


@dataclass(frozen=True, slots=True)
class GroupBody:
    """One body of a group as stored once for all its recipients: a Commit, a Welcome
    (under its Commit's eid and `WELCOME_EID_SUFFIX`) or a message."""

    group: bytes
    sender: str
    eid: str
    body: bytes
    ts: float


@dataclass(frozen=True, slots=True)
class Fanned:
    """One body stored once and delivered to `recipients`' inboxes under `sid`."""

    sid: int
    recipients: tuple[str, ...]
    kind: GroupKind
    epoch: int


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    status: str
    """`accepted`, `resent` (this (group, sender, eid) was accepted before, for `epoch`),
    `conflict` (`epoch` is the current one), `forbidden` (the sender is no member) or
    `eid_taken` (the eid names other data of the sender's still queued)."""
    epoch: int
    deliveries: tuple[Fanned, ...] = ()
    """The Commit to the other members, then the Welcome to the added ones."""


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """What one inbox holds at most (`queue_max_count`, `queue_max_bytes`): one rule for a
    one-to-one envelope (server/relay.py) and a group's copy (`GroupStore.group_send_batch`)."""

    max_count: int
    max_bytes: int

    def admits(self, count: int, size: int, body: int) -> bool:
        """Whether a queue of `count` deliveries and `size` bytes takes a body of `body` bytes."""
        return count < self.max_count and size + body <= self.max_bytes

    def share(
        self, members: Sequence[str], usage: Mapping[str, tuple[int, int]], send: NewGroupSend
    ) -> tuple[list[str], tuple[str, ...]]:
        """The members who get a copy of `send` and those whose queue is full (none for a
        handshake message), from each member's (count, bytes) read in the send's transaction.
        """
        body = len(send.body)
        room = [m for m in members if send.handshake or self.admits(*usage[m], body)]
        if len(room) == len(members):
            return room, ()
        taken = set(room)
        return room, tuple(m for m in members if m not in taken)


@dataclass(frozen=True, slots=True)
class NewGroupSend:
    group: bytes
    epoch: int
    sender: str
    eid: str
    body: bytes
    ts: float
    handshake: bool = False
    """A proposal (or Commit) in clear header (`group_frames.is_handshake`): it reaches every
    member, full queue or not, since a member who misses one loses the group."""

    def stored_body(self) -> GroupBody:
        return GroupBody(self.group, self.sender, self.eid, self.body, self.ts)


@dataclass(frozen=True, slots=True)
class GroupSendOutcome:
    status: str
    """`stored`, `resent` (the same (sender, eid) was stored before), `conflict` (the
    epoch is not current), `forbidden` (no member) or `eid_taken` (used for other data)."""
    epoch: int = 0
    """The group's current epoch."""
    fanned: Fanned | None = None
    """The copies to announce: those just stored; for a re-send, those of the first
    copy still waiting (a node may have died between storing and announcing them)."""
    full: tuple[str, ...] = ()
    """Members whose queue had no room (`QueueLimits`): they got no copy. Empty for a
    re-send, which stores nothing."""
    body: GroupBody | None = None
    """For a re-send, the first copy's body (the one its recipients get)."""


@dataclass(frozen=True, slots=True)
class StoredCommit:
    epoch: int
    sender: str
    body: bytes


@dataclass(frozen=True, slots=True)
class KeyBundle:
    identity: bytes
    signed_prekey: bytes
    kem_prekey: bytes
    one_time_prekey: bytes | None
    one_time_kem_prekey: bytes | None = None


@dataclass(frozen=True, slots=True)
class HandedKeyPackage:
    """A key package as `fetch_key_packages` hands it out."""

    user: str
    device: str
    key_package: bytes
    last_resort: bool
    remaining: int
    """One-time packages the device has left after this one (its owner is told when low)."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    owner: str
    size: int
    recipients: frozenset[str]
    fetched_by: frozenset[str]
    next_index: int
    complete: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Throttle:
    """Login or reset failures counted under one key (a name, an address, or both)."""

    count: int
    locked_until: float
    last: float
