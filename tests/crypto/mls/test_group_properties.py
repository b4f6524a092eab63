"""Random group histories (suite 1): every member that processes the same Commits
agrees on the epoch authenticator and the roster; messages arrive in any order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securechat.crypto.mls import group as g
from securechat.crypto.mls.errors import MLSError, WrongEpoch
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


_FIXED: dict[str, object] = {}


def _fixed_group() -> tuple[GroupState, list[bytes]]:
    """One group and three messages to Bob (a Commit with a path, a private Commit,
    application data), built once for all examples."""
    if not _FIXED:
        group = Group.create(1, "alice", "bob", "carol")
        alice = group.states["alice"]
        messages = [
            g.commit(alice, POLICY, proposals=[g.Remove(2)]).message,
            g.commit(alice, POLICY, private=True).message,
            g.protect(alice, b"data")[1],
        ]
        _FIXED.update(bob=group.states["bob"], messages=messages)
    return _FIXED["bob"], _FIXED["messages"]  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2), st.integers(0, 10_000), st.integers(1, 255))
def test_any_tampered_byte_is_an_mls_error_and_changes_nothing(
    which: int, position: int, mask: int
) -> None:
    """Whatever byte of a message is altered, processing raises one of the package's
    errors (never another exception), and Bob's state is unchanged."""
    bob, messages = _fixed_group()
    data = messages[which]
    position %= len(data)
    tampered = data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]
    before = bob.encode()
    with pytest.raises(MLSError):
        g.process(bob, tampered, POLICY)
    assert bob.encode() == before
