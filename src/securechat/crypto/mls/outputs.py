"""What the group operations return: the outputs of processing a message and of a Commit."""

from __future__ import annotations

from dataclasses import dataclass

from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.proposals import ProposalType, ReInit


@dataclass(frozen=True, repr=False)
class ApplicationMessage:
    sender: int
    data: bytes
    authenticated_data: bytes


@dataclass(frozen=True)
class ProposalReceived:
    sender: int
    ref: bytes
    proposal_type: ProposalType


@dataclass(frozen=True)
class CommitApplied:
    """The epoch a Commit started and how the roster changed (leaf indices)."""

    epoch: int
    committer: int
    added: tuple[int, ...]
    removed: tuple[int, ...]
    updated: tuple[int, ...]
    reinit: ReInit | None = None

    @property
    def roster_changed(self) -> bool:
        return bool(self.added or self.removed or self.updated)


@dataclass(frozen=True)
class RemovedFromGroup:
    """A Commit removed us; the state returned with it is the last one we had."""

    epoch: int
    committer: int


Output = ApplicationMessage | ProposalReceived | CommitApplied | RemovedFromGroup


@dataclass(frozen=True, repr=False)
class CommitResult:
    state: GroupState
    """The next epoch's state: adopt it once the DS confirms the Commit."""
    message: bytes
    welcome: bytes | None
    output: CommitApplied
    current: GroupState
    """The epoch the Commit was sent in, after sending it: a private Commit used a
    handshake key of our leaf, which this state records as used. Keep this one, not
    the state given to `commit`, until the DS confirms or refuses the Commit, so that
    a proposal or message sent meanwhile never uses that key again."""
