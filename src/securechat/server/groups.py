"""MLS's delivery service: who is in a group, and one Commit per epoch.

The relay reads no MLS: a Commit names its group, the epoch it was built on,
and the users it adds and removes. The checks that need no store are pure
functions here (`check_commit`), run on the group's state as read; the store
then orders the Commit (`GroupStore.commit_group`), where the epoch check and
increment are one statement, so a state read before a concurrent Commit only
ever leads to a `group_conflict`, never to a second Commit for one epoch.

An accepted Commit is delivered (kind `commit`) to every other member, the
removed ones included: it is their last delivery of the group. A full queue
(`queue_max_count`, `queue_max_bytes`) takes it all the same, and counts it: a
member who missed a Commit could not follow the group any more. Its Welcome
goes (kind `welcome`) to the added users. Both are in the members' inboxes,
woken here and on the other nodes, before the committer hears `group_accepted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from securechat.errors import ProtocolError
from securechat.protocol import group_frames as G
from securechat.protocol.codec import encode_str
from securechat.protocol.errors import ErrorCode
from securechat.server.fanout import NOT_A_MEMBER, Fanout
from securechat.server.files import FileService
from securechat.server.relay import DELIVER_FRAME_BODY_BYTES, Outlet
from securechat.server.store import GroupStore
from securechat.server.store.records import GroupKind, GroupState, NewCommit


@dataclass(frozen=True, slots=True)
class GroupLimits:
    """The relay's settings for groups (server/config.py)."""

    max_members: int = 1000
    max_per_user: int = 1000
    commits_kept: int = 1000
    welcome_max_bytes: int = G.MAX_WELCOME_BYTES


def check_shape(frame: G.GroupCommit, limits: GroupLimits) -> None:
    """What a Commit must be whatever the group's state: raises ProtocolError."""
    if frame.welcome is not None and len(frame.welcome) > limits.welcome_max_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"a Welcome may be at most {limits.welcome_max_bytes} bytes on this relay",
        )
    if frame.welcome is not None and frame.welcome_file is not None:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "a Commit carries its Welcome inline or as a file, not both"
        )
    if bool(frame.added) != (frame.welcome is not None or frame.welcome_file is not None):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            "a Commit carries a Welcome exactly when it adds users",
        )
    if len(set(frame.added)) != len(frame.added) or len(set(frame.removed)) != len(frame.removed):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a Commit names each added or removed user once")
    if set(frame.added) & set(frame.removed):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a Commit cannot add and remove the same user")


def check_commit(
    frame: G.GroupCommit,
    sender: str,
    state: GroupState | None,
    groups_of: Mapping[str, int],
    limits: GroupLimits,
) -> None:
    """A Commit against the group's state at its epoch: raises ProtocolError.

    `groups_of` counts the groups of the sender and of the added users that have an
    account (a name missing from it has none).
    """
    members = state.members if state is not None else frozenset()
    if state is None and groups_of.get(sender, 0) >= limits.max_per_user:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"you are in {limits.max_per_user} groups, the most this relay allows; leave one",
        )
    if sender in frame.added:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a Commit cannot add its own sender")
    for user in frame.added:
        if user in members:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{user} is a member already")
        if user not in groups_of:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no account named {user!r}")
        if groups_of[user] >= limits.max_per_user:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"{user} is in {limits.max_per_user} groups, the most this relay allows",
            )
    for user in frame.removed:
        if user not in members:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{user} is not a member of this group")
    size = len(members | {sender}) + len(frame.added) - len(frame.removed)
    if size > limits.max_members:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"a group has at most {limits.max_members} members on this relay",
        )


def _welcome(frame: G.GroupCommit) -> tuple[bytes | None, GroupKind]:
    """What the store keeps for the added users: the Welcome, or the id of its file."""
    if frame.welcome_file is not None:
        return frame.welcome_file.encode(), "welcome_file"
    return frame.welcome, "welcome"


@dataclass
class GroupService:
    store: GroupStore
    fanout: Fanout
    limits: GroupLimits
    files: FileService
    clock: Callable[[], float] = time.time

    async def commit(self, outlet: Outlet, sender: str, frame: G.GroupCommit) -> None:
        """Orders the Commit: `group_accepted` once it is delivered, else `group_conflict`."""
        check_shape(frame, self.limits)
        state = await self.store.group_state(frame.group)
        if state is None and frame.epoch != 0:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                "no group with this id: a group is created by a Commit at epoch 0",
            )
        if state is not None and sender not in state.members:
            raise ProtocolError(ErrorCode.FORBIDDEN, NOT_A_MEMBER)
        if state is None or state.epoch == frame.epoch:
            # A stale Commit is answered by the store (a conflict, or a re-send accepted
            # again); only one for the current epoch is checked against the members.
            counted = [*frame.added, sender] if state is None else list(frame.added)
            check_commit(frame, sender, state, await self.store.memberships(counted), self.limits)
            if frame.welcome_file is not None:
                await self.files.check_welcome(frame.welcome_file, sender, frame.added)
        welcome, welcome_kind = _welcome(frame)
        commit = NewCommit(
            group=frame.group,
            epoch=frame.epoch,
            sender=sender,
            eid=frame.eid,
            body=frame.commit,
            welcome=welcome,
            added=tuple(frame.added),
            removed=tuple(frame.removed),
            ts=self.clock(),
            create=state is None,
            welcome_kind=welcome_kind,
        )
        outcome = await self.store.commit_group(commit, self.limits.commits_kept)
        match outcome.status:
            case "accepted" | "resent":
                if outcome.status == "accepted":
                    self.fanout.relay.metrics.group_commits_accepted += 1
                bodies = {"commit": commit.commit_body(), welcome_kind: commit.welcome_body()}
                await self.fanout.deliver(
                    [(d, body) for d in outcome.deliveries if (body := bodies.get(d.kind))]
                )
                answer = encode_str(
                    G.GroupAccepted(
                        rid=frame.rid, group=frame.group, epoch=outcome.epoch, eid=frame.eid
                    )
                )
            case "conflict":
                answer = encode_str(
                    G.GroupConflict(rid=frame.rid, group=frame.group, epoch=outcome.epoch)
                )
            case "forbidden":
                raise ProtocolError(ErrorCode.FORBIDDEN, NOT_A_MEMBER)
            case _:
                raise ProtocolError(
                    ErrorCode.CONFLICT,
                    f"envelope id {frame.eid} was already used for another message",
                )
        outlet.push(answer)

    async def fetch(self, outlet: Outlet, user: str, frame: G.GroupFetch) -> None:
        """The Commits from `since` on, as many as fit one frame; the client asks again
        from the next epoch while the answer's epoch is ahead of the last one."""
        state = await self.store.group_state(frame.group)
        if state is None or user not in state.members:
            raise ProtocolError(ErrorCode.FORBIDDEN, NOT_A_MEMBER)
        commits = []
        if frame.since < state.epoch:
            commits = await self.store.group_commits(
                frame.group, frame.since, DELIVER_FRAME_BODY_BYTES
            )
            if not commits or commits[0].epoch != frame.since:
                raise ProtocolError(
                    ErrorCode.NOT_FOUND,
                    f"the relay no longer keeps this group's Commits from epoch {frame.since};"
                    " ask a member to add you again",
                )
        outlet.push(
            encode_str(
                G.GroupCommits(
                    rid=frame.rid,
                    group=frame.group,
                    epoch=state.epoch,
                    commits=[
                        G.CommitEntry(epoch=c.epoch, sender=c.sender, commit=c.body)
                        for c in commits
                    ],
                )
            )
        )
