"""A relay and clients for group tests, in memory: the relay keeps the epoch
order (one Commit per epoch, `conflict` otherwise) and one inbox per user, and
each client runs a GroupSession and carries out the actions it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from securechat.crypto.identity import IdentityKeyPair, IdentityPublicKey
from securechat.crypto.mls import group as g
from securechat.groups import device as dev
from securechat.groups.outputs import (
    FetchCommits,
    IdentityFirstSeen,
    Output,
    SendCommit,
    SendHandshake,
    SendMessage,
)
from securechat.groups.session import GroupSession

NOW = 1_800_000_000
SUITE = 1


@dataclass
class Relay:
    """The delivery service's ordering, as issue 20 describes it."""

    epoch: int = 0
    members: set[str] = field(default_factory=set)
    log: list[tuple[int, str, bytes]] = field(default_factory=list)
    inboxes: dict[str, list[tuple[str, int, bytes]]] = field(default_factory=dict)
    key_packages: dict[str, list[g.KeyPackage]] = field(default_factory=dict)

    def commit(self, sender: str, action: SendCommit) -> int | None:
        """None when accepted, else the current epoch (a `conflict` answer)."""
        if action.epoch != self.epoch:
            return self.epoch
        if not self.members:
            self.members.add(sender)
        self.log.append((self.epoch, sender, action.commit))
        for member in self.members - {sender}:
            self.inboxes.setdefault(member, []).append(("commit", self.epoch, action.commit))
        self.epoch += 1
        if action.welcome is not None:
            for user in action.added:
                self.inboxes.setdefault(user, []).append(("welcome", self.epoch, action.welcome))
        self.members |= set(action.added)
        self.members -= set(action.removed)
        return None

    def send(self, sender: str, epoch: int, body: bytes) -> int | None:
        if epoch != self.epoch:
            return self.epoch
        for member in self.members - {sender}:
            self.inboxes.setdefault(member, []).append(("message", epoch, body))
        return None

    def fetch(self, since: int) -> list[tuple[int, str, bytes]]:
        return [entry for entry in self.log if entry[0] >= since]


@dataclass
class Client:
    name: str
    identity: IdentityKeyPair
    device: dev.Device
    pins: dict[str, IdentityPublicKey] = field(default_factory=dict)
    session: GroupSession | None = None
    events: list[Output] = field(default_factory=list)
    privates: dict[bytes, tuple[g.KeyPackage, g.KeyPackagePrivate]] = field(default_factory=dict)

    def pinned(self, user: str) -> IdentityPublicKey | None:
        return self.pins.get(user)

    @property
    def s(self) -> GroupSession:
        assert self.session is not None
        return self.session


@dataclass
class World:
    identities: dict[str, IdentityKeyPair]
    relay: Relay = field(default_factory=Relay)
    clients: dict[str, Client] = field(default_factory=dict)
    conflicts: int = 0

    def client(self, name: str) -> Client:
        if name not in self.clients:
            identity = self.identities[name]
            device = dev.new_device(identity, name, suite_id=SUITE)
            client = Client(name, identity, device)
            client.pins[name] = identity.public
            self.clients[name] = client
            self.publish(name)
        return self.clients[name]

    def publish(self, name: str) -> None:
        client = self.clients[name]
        package, private = dev.key_package(client.device, now=NOW)
        client.privates[package.encode()] = (package, private)
        self.relay.key_packages.setdefault(name, []).append(package)

    def fetch_key_package(self, user: str) -> g.KeyPackage:
        self.client(user)
        return self.relay.key_packages[user].pop(0)

    def run(self, name: str, outputs: tuple[Output, ...]) -> None:
        """Carry out a client's actions against the relay, recording its events."""
        client = self.clients[name]
        for output in outputs:
            if isinstance(output, SendCommit):
                current = self.relay.commit(name, output)
                if current is None:
                    client.session, more = client.s.accepted(output.epoch, now=NOW)
                else:
                    self.conflicts += 1
                    client.session, more = client.s.conflict(output.epoch, current, now=NOW)
                self.run(name, more)
            elif isinstance(output, SendHandshake):
                # A leave proposal of a past epoch is refused; the leaver proposes again
                # once it has processed the Commit that moved the epoch.
                self.relay.send(name, output.epoch, output.body)
            elif isinstance(output, SendMessage):
                assert self.relay.send(name, output.epoch, output.body) is None
            elif isinstance(output, FetchCommits):
                for epoch, _, body in self.relay.fetch(output.since):
                    if output.until is not None and epoch >= output.until:
                        break  # the rest comes in the inbox
                    client.session, more = client.s.receive_commit(
                        epoch, body, now=NOW, pins=client.pinned
                    )
                    self.run(name, more)
            else:
                if isinstance(output, IdentityFirstSeen):
                    client.pins[output.member.username] = output.member.identity
                client.events.append(output)

    def deliver(self) -> None:
        """Empty every inbox, in relay order per user, until nothing is left."""
        while any(self.relay.inboxes.values()):
            for name, inbox in list(self.relay.inboxes.items()):
                while inbox:
                    kind, epoch, body = inbox.pop(0)
                    self.receive(name, kind, epoch, body)

    def receive(self, name: str, kind: str, epoch: int, body: bytes) -> None:
        client = self.clients[name]
        if kind == "welcome":
            _, (package, private) = client.privates.popitem()
            client.session, outputs = GroupSession.join(
                body, package, private, epoch=epoch, now=NOW, pins=client.pinned
            )
            self.publish(name)
        elif kind == "commit":
            client.session, outputs = client.s.receive_commit(
                epoch, body, now=NOW, pins=client.pinned
            )
        else:
            client.session, outputs = client.s.receive_message(body, now=NOW)
        self.run(name, outputs)

    def current_members(self) -> list[str]:
        return [
            name
            for name, client in self.clients.items()
            if client.session is not None and not client.session.removed
        ]

    def members_agree(self, *names: str) -> None:
        sessions = [self.clients[n].s for n in names]
        assert len({s.mls.epoch_authenticator for s in sessions}) == 1
        assert len({s.epoch for s in sessions}) == 1
        assert {s.epoch for s in sessions} == {self.relay.epoch}
        assert len({tuple(m.username for m in s.members) for s in sessions}) == 1
