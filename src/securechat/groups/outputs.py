"""What a group session is asked (intents), what it asks the I/O shell to do
(actions) and what it tells the user (events). Plain values: the client core
turns actions into frames and events into conversation lines and notifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.groups.credentials import MemberIdentity

# --- what the user asks for (needs a Commit) -----------------------------------


@dataclass(frozen=True)
class AddMembers:
    """Key packages fetched from the relay, each for the user it was asked for."""

    key_packages: tuple[tuple[str, KeyPackage], ...]


@dataclass(frozen=True)
class RemoveMember:
    user: str


@dataclass(frozen=True)
class Rename:
    name: str


@dataclass(frozen=True)
class SetTopic:
    topic: str


@dataclass(frozen=True)
class MakeAdmin:
    user: str


@dataclass(frozen=True)
class CommitProposals:
    """Commit what members proposed (a leave), with nothing of our own."""


Intent = AddMembers | RemoveMember | Rename | SetTopic | MakeAdmin | CommitProposals

# --- actions for the I/O shell ----------------------------------------------------


@dataclass(frozen=True, repr=False)
class SendCommit:
    """`group_commit`: for relay epoch `epoch`; the Welcome goes to `added`, and
    `removed` users no longer receive the group's messages."""

    epoch: int
    commit: bytes
    welcome: bytes | None
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, repr=False)
class SendHandshake:
    """A proposal (our leave), fanned out like a message of epoch `epoch`."""

    epoch: int
    body: bytes


@dataclass(frozen=True, repr=False)
class SendMessage:
    epoch: int
    body: bytes


@dataclass(frozen=True)
class FetchCommits:
    """We missed Commits: ask the relay for those from relay epoch `since` on.

    `until`: process them up to the relay epoch before it only (a delivery that
    overtook its Commit needs no more); later ones still reach us in our queue,
    and catching up past them would leave messages on their way to us more than
    the one kept epoch behind (docs/security.md). None: as far as the relay is
    (before sending, which must be in the relay's epoch)."""

    since: int
    until: int | None = None


Action = SendCommit | SendHandshake | SendMessage | FetchCommits

# --- events for the user ----------------------------------------------------------


@dataclass(frozen=True, repr=False)
class MessageReceived:
    sender: str
    device: str
    data: bytes


@dataclass(frozen=True)
class Invited:
    """Shown before the group opens: who invited us, what it is called, who is in it."""

    by: str
    name: str
    topic: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class MemberAdded:
    by: str
    user: str
    device: str


@dataclass(frozen=True)
class MemberRemoved:
    by: str
    user: str


@dataclass(frozen=True)
class MemberLeft:
    user: str


@dataclass(frozen=True)
class Renamed:
    by: str
    name: str


@dataclass(frozen=True)
class TopicChanged:
    by: str
    topic: str


@dataclass(frozen=True)
class AdminsChanged:
    by: str
    granted: tuple[str, ...]
    revoked: tuple[str, ...]


@dataclass(frozen=True)
class IdentityFirstSeen:
    """No key was pinned for `user`: pin this one (trust on first use)."""

    member: MemberIdentity


@dataclass(frozen=True)
class IdentityKeyChanged:
    """A member's leaf names another identity key than the pinned one: the group
    stops sending until the user keeps or trusts a key and calls `recheck`."""

    member: MemberIdentity
    pinned_fingerprint: str


@dataclass(frozen=True)
class RemovedFromGroup:
    by: str


@dataclass(frozen=True)
class CommitRefused:
    """A Commit the relay accepted but MLS or the policy refused; every member
    refuses it alike, so the group stays in step without it."""

    reason: str


@dataclass(frozen=True)
class ProposalDropped:
    reason: str


@dataclass(frozen=True)
class MessageUnreadable:
    reason: str


Event = (
    MessageReceived
    | Invited
    | MemberAdded
    | MemberRemoved
    | MemberLeft
    | Renamed
    | TopicChanged
    | AdminsChanged
    | IdentityFirstSeen
    | IdentityKeyChanged
    | RemovedFromGroup
    | CommitRefused
    | ProposalDropped
    | MessageUnreadable
)
Output = Action | Event
