"""Random group histories (suite 1): every member that processes the same Commits
agrees on the epoch authenticator and the roster; messages arrive in any order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securechat.crypto.mls import group as g
from securechat.crypto.mls.errors import WrongEpoch
from securechat.crypto.mls.group_state import GroupState
from tests.crypto.mls.group_helpers import POLICY, Group

OPS = st.sampled_from(["add", "remove", "update", "commit", "messages", "reload"])


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(OPS, min_size=3, max_size=7), st.data())
def test_random_histories_agree(ops: list[str], data: st.DataObject) -> None:
    names = (f"m{i}" for i in itertools.count())
    group = Group.create(1, next(names), next(names))
    for op in ops:
        members = sorted(group.states)

        def pick() -> str:
            return data.draw(st.sampled_from(sorted(group.states)))

        if op == "add":
            group.add(pick(), *(next(names) for _ in range(data.draw(st.integers(1, 2)))))
        elif op == "remove" and len(members) > 2:
            committer = pick()
            victim = data.draw(st.sampled_from([m for m in members if m != committer]))
            removed = group.states[victim]
            group.commit(committer, proposals=[g.Remove(group.leaf(victim))])
            sender = pick()
            group.states[sender], message = g.protect(group.states[sender], b"after")
            with pytest.raises(WrongEpoch):
                g.process(removed, message, POLICY)
            group.deliver(message, sender=sender)
        elif op == "update" and len(members) > 1:
            updater = pick()
            group.states[updater], proposal = g.propose_update(
                group.states[updater], private=data.draw(st.booleans())
            )
            group.deliver(proposal, sender=updater)
            committer = data.draw(st.sampled_from([m for m in members if m != updater]))
            assert group.commit(committer).output.updated == (group.leaf(updater),)
        elif op == "commit":
            group.commit(pick(), path=data.draw(st.booleans()), private=data.draw(st.booleans()))
        elif op == "messages":
            sender = pick()
            sent = []
            for i in range(data.draw(st.integers(1, 4))):
                group.states[sender], message = g.protect(group.states[sender], b"%d" % i)
                sent.append((b"%d" % i, message))
            for name in members:
                if name == sender:
                    continue
                for body, message in data.draw(st.permutations(sent)):
                    group.states[name], out = g.process(group.states[name], message, POLICY)
                    assert isinstance(out, g.ApplicationMessage)
                    assert (out.sender, out.data) == (group.leaf(sender), body)
        elif op == "reload":
            group.states = {n: GroupState.decode(s.encode()) for n, s in group.states.items()}
        group.assert_agree()
