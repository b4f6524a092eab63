"""A small driver for whole groups in tests: members by name, every commit fanned out."""

from __future__ import annotations

from dataclasses import dataclass, field

from securechat.crypto.mls import group as g
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import BASIC, Credential
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.validation import Policy

NOW = 1_800_000_000
POLICY = Policy(lambda credential, key: credential.identity != b"mallory", NOW)


def identity(suite_id: int, name: str) -> tuple[Credential, bytes]:
    return Credential(BASIC, identity=name.encode()), get_suite(suite_id).signature.generate()


def key_package(suite_id: int, name: str) -> tuple[g.KeyPackage, g.KeyPackagePrivate]:
    credential, signature_private = identity(suite_id, name)
    return g.make_key_package(credential, signature_private, now=NOW, suite_id=suite_id)


@dataclass
class Group:
    """Members' states by name; `commit` applies a Commit for everyone as the DS would."""

    suite_id: int
    states: dict[str, GroupState] = field(default_factory=dict)
    policy: Policy = POLICY

    @classmethod
    def create(cls, suite_id: int, *names: str) -> Group:
        credential, signature_private = identity(suite_id, names[0])
        group = cls(suite_id)
        group.states[names[0]] = g.create_group(
            credential, signature_private, now=NOW, suite_id=suite_id
        )
        if len(names) > 1:
            group.add(names[0], *names[1:])
        return group

    def leaf(self, name: str) -> int:
        return self.states[name].own_leaf

    def add(self, committer: str, *names: str, path: bool = True) -> g.CommitResult:
        packages = {n: key_package(self.suite_id, n) for n in names}
        result = self.commit(
            committer, proposals=[g.Add(kp) for kp, _ in packages.values()], path=path
        )
        assert result.welcome is not None
        for name, (kp, private) in packages.items():
            self.states[name] = g.join_from_welcome(result.welcome, kp, private, self.policy)
        return result

    def commit(self, committer: str, **kwargs: object) -> g.CommitResult:
        result = g.commit(self.states[committer], self.policy, **kwargs)  # type: ignore[arg-type]
        self.states[committer] = result.state
        self.deliver(result.message, sender=committer)
        return result

    def deliver(self, message: bytes, sender: str | None = None) -> dict[str, g.Output]:
        outputs = {}
        for name in list(self.states):
            if name == sender:
                continue
            self.states[name], outputs[name] = g.process(self.states[name], message, self.policy)
            if isinstance(outputs[name], g.RemovedFromGroup):
                del self.states[name]
        return outputs

    def authenticators(self) -> set[bytes]:
        return {s.epoch_authenticator for s in self.states.values()}

    def rosters(self) -> set[tuple[tuple[int, bytes], ...]]:
        return {
            tuple((m.leaf_index, m.credential.identity) for m in s.roster)
            for s in self.states.values()
        }

    def assert_agree(self) -> None:
        assert len(self.authenticators()) == 1
        assert len(self.rosters()) == 1
        assert len({s.epoch for s in self.states.values()}) == 1
