"""The relay's part in groups, in memory: what client/groups.py is tested against
until the relay serves the group frames (branch groups-relay).

It keeps the contract of protocol/group_frames.py and docs/protocol.md: one
Commit per epoch (the first wins, a stale one is answered `group_conflict`),
one body fanned out to every other member, each member's queue holding a
group's Commits before the messages of the epoch they start, the Welcome to
the added, the removing Commit as a removed member's last delivery, and
deliveries acknowledged (removed from the queue) only when the client's
handler returned. Everything it stores is kept in `stored`, for the test that
the relay never holds a group's name or a message.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from securechat.client.context import ClientContext
from securechat.client.events import ConversationState, Event
from securechat.client.groups import Groups
from securechat.client.trust import Trust
from securechat.client.vault_store import Vault
from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.vault import generate_recovery_code
from securechat.errors import ConnectionLost
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF


@dataclass
class _Group:
    epoch: int = 0
    members: set[str] = field(default_factory=set)
    commits: list[GF.CommitEntry] = field(default_factory=list)


Handler = Callable[[str, F.ClientFrame], F.ServerFrame]
Intercept = Callable[[Handler, str, F.ClientFrame], F.ServerFrame]


def unreachable(handle: Handler, user: str, frame: F.ClientFrame) -> F.ServerFrame:
    raise ConnectionLost("not connected to the relay")


def answer_lost(handle: Handler, user: str, frame: F.ClientFrame) -> F.ServerFrame:
    """The relay handles the request; its answer never arrives."""
    handle(user, frame)
    raise ConnectionLost("the connection dropped")


class DeliveryService:
    def __init__(self) -> None:
        self.packages: dict[str, list[bytes]] = {}
        self.last_resort: dict[str, bytes] = {}
        self.groups: dict[bytes, _Group] = {}
        self.queues: dict[str, list[GF.GroupEnvelope]] = {}
        self.stored: list[bytes] = []
        """Every byte string the relay keeps: bodies, commits, welcomes, key packages."""
        self.answered: dict[tuple[str, str], F.ServerFrame] = {}
        self.conflicts = 0
        self._sids = itertools.count(1)
        self._rids = itertools.count(1)

    @contextmanager
    def intercepted(self, intercept: Intercept) -> Iterator[None]:
        """Every request answered through `intercept`, which is given the real handler:
        a relay out of reach, an answer lost on the way, a refusal."""
        handle = self.handle
        self.handle = lambda user, frame: intercept(handle, user, frame)  # type: ignore[method-assign]
        try:
            yield
        finally:
            self.handle = handle  # type: ignore[method-assign]

    def requester(self, user: str) -> Callable[..., object]:
        async def request(build: Callable[[int], F.ClientFrame]) -> F.ServerFrame:
            return self.handle(user, build(next(self._rids)))

        return request

    def handle(self, user: str, frame: F.ClientFrame) -> F.ServerFrame:
        match frame:
            case GF.PublishKeyPackages():
                if frame.replace:
                    self.packages[user] = []
                self.packages.setdefault(user, []).extend(frame.key_packages)
                if frame.last_resort is not None:
                    self.last_resort[user] = frame.last_resort
                self.stored.extend(frame.key_packages)
                return F.Done(rid=frame.rid)
            case GF.FetchKeyPackages():
                found, missing = [], []
                for name in frame.users:
                    queue = self.packages.get(name)
                    if queue:
                        found.append(
                            GF.KeyPackageEntry(user=name, device="d1", key_package=queue.pop(0))
                        )
                    elif name in self.last_resort:
                        package = self.last_resort[name]
                        found.append(
                            GF.KeyPackageEntry(
                                user=name, device="d1", key_package=package, last_resort=True
                            )
                        )
                    else:
                        missing.append(name)
                return GF.KeyPackages(rid=frame.rid, packages=found, missing=missing)
            case GF.GroupCommit():
                return self._commit(user, frame)
            case GF.GroupSend():
                if (user, frame.eid) in self.answered:
                    return F.Accepted(rid=frame.rid, eid=frame.eid)  # as the relay: stored once
                group = self.groups[frame.group]
                if frame.epoch != group.epoch:
                    self.conflicts += 1
                    return GF.GroupConflict(rid=frame.rid, group=frame.group, epoch=group.epoch)
                self.stored.append(frame.body)
                for member in sorted(group.members - {user}):
                    self._enqueue(
                        member, frame.group, "message", frame.epoch, user, frame.eid, frame.body
                    )
                self.answered[(user, frame.eid)] = F.Accepted(rid=frame.rid, eid=frame.eid)
                return F.Accepted(rid=frame.rid, eid=frame.eid)
            case GF.GroupFetch():
                group = self.groups[frame.group]
                commits = [c for c in group.commits if c.epoch >= frame.since]
                return GF.GroupCommits(
                    rid=frame.rid, group=frame.group, epoch=group.epoch, commits=commits
                )
        raise AssertionError(f"unexpected frame {frame!r}")

    def _commit(self, user: str, frame: GF.GroupCommit) -> F.ServerFrame:
        previous = self.answered.get((user, frame.eid))
        if previous is not None:
            return previous
        group = self.groups.get(frame.group)
        if group is None and frame.epoch == 0:
            group = self.groups[frame.group] = _Group(members={user})
        if group is None or frame.epoch != group.epoch:
            current = group.epoch if group is not None else 0
            self.conflicts += 1
            return GF.GroupConflict(rid=frame.rid, group=frame.group, epoch=current)
        self.stored.append(frame.commit)
        group.commits.append(GF.CommitEntry(epoch=frame.epoch, sender=user, commit=frame.commit))
        for member in sorted(group.members - {user}):
            self._enqueue(member, frame.group, "commit", frame.epoch, user, frame.eid, frame.commit)
        group.epoch += 1
        group.members = (group.members | set(frame.added)) - set(frame.removed)
        if frame.welcome is not None:
            self.stored.append(frame.welcome)
            for added in frame.added:
                self._enqueue(
                    added, frame.group, "welcome", group.epoch, user, frame.eid, frame.welcome
                )
        answer = GF.GroupAccepted(
            rid=frame.rid, group=frame.group, epoch=frame.epoch, eid=frame.eid
        )
        self.answered[(user, frame.eid)] = answer
        return answer

    def _enqueue(
        self, user: str, group: bytes, kind: str, epoch: int, sender: str, eid: str, body: bytes
    ) -> None:
        envelope = GF.GroupEnvelope(
            sid=next(self._sids),
            group=group,
            kind=kind,  # type: ignore[arg-type]
            epoch=epoch,
            sender=sender,
            eid=eid,
            body=body,
            ts=1_800_000_000.0,
        )
        self.queues.setdefault(user, []).append(envelope)


class Member:
    """One user's device: a vault, an identity, and its `Groups` on the delivery service."""

    def __init__(self, directory: Path, name: str, identity: IdentityKeyPair, ds: DeliveryService):
        self.name = name
        self.ds = ds
        self.ctx = ClientContext(
            "ws://unused",
            directory,
            pin_sha256=None,
            reconnect=False,
            on_envelope=_unused,
            on_push=_unused,
            on_event=lambda event: None,
        )
        self.path = directory / name
        self.ctx.vault = Vault.create(
            self.path, "a long enough password", generate_recovery_code(), name
        )
        self.ctx.identity, self.ctx.username = identity, name
        self.password = "a long enough password"
        self.trust = Trust(self.ctx, lambda peer: ConversationState.NONE)
        self.groups = Groups(self.ctx, self.trust, request=ds.requester(name))  # type: ignore[arg-type]

    def restart(self) -> None:
        """The process ends and starts again: only the vault on disk survives."""
        assert self.ctx.vault is not None
        self.ctx.vault.close()
        self.ctx.vault = Vault.unlock(self.path, self.password, self.name)
        self.ctx.events = type(self.ctx.events)()
        self.groups = Groups(self.ctx, self.trust, request=self.ds.requester(self.name))  # type: ignore[arg-type]

    async def receive(self) -> None:
        """Handles the queue in order, acknowledging each delivery, then what it calls for."""
        queue = self.ds.queues.setdefault(self.name, [])
        while queue:
            envelope = queue[0]
            actions = self.groups.on_envelope(envelope)
            queue.pop(0)
            if actions:
                await self.groups._carry_out(envelope.group.hex(), actions)

    def events(self) -> list[Event]:
        found = []
        while not self.ctx.events.empty():
            found.append(self.ctx.events.get_nowait())
        return found

    def texts(self, group_id: str) -> list[tuple[str, str]]:
        assert self.ctx.vault is not None
        page = self.ctx.vault.messages("#" + group_id, limit=500)
        return [(m.record.sender, m.record.text) for m in page]


async def _unused(*args: object) -> None:
    raise AssertionError("no relay connection in these tests")
