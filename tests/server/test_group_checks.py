"""The delivery service's pure checks of a Commit, without a relay: each refusal names
what is wrong, and the limits count the members after the change."""

from __future__ import annotations

import pytest

from securechat.errors import ProtocolError
from securechat.protocol import group_frames as G
from securechat.server.groups import GroupLimits, check_commit, check_shape
from securechat.server.store.records import GroupState

LIMITS = GroupLimits(max_members=3, max_per_user=2, welcome_max_bytes=1024)
STATE = GroupState(4, frozenset({"alice", "bob"}))
GROUPS_OF = {"alice": 1, "bob": 1, "carol": 0, "dave": 0, "erin": 2}


def commit(**fields: object) -> G.GroupCommit:
    values: dict[str, object] = {"rid": 1, "group": bytes(16), "epoch": 4, "eid": "e"}
    values["commit"] = b"c"
    values.update(fields)
    return G.GroupCommit(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "code", "sentence"),
    [
        (commit(welcome=b"w" * 1025, added=["carol"]), "too_large", "at most 1024 bytes"),
        (commit(added=["carol"]), "bad_request", "Welcome exactly when it adds"),
        (commit(welcome=b"w"), "bad_request", "Welcome exactly when it adds"),
        (commit(welcome=b"w", added=["carol", "carol"]), "bad_request", "each added"),
        (commit(welcome=b"w", added=["bob"], removed=["bob"]), "bad_request", "add and remove"),
    ],
)
def test_malformed_commits_are_refused_before_the_store(
    frame: G.GroupCommit, code: str, sentence: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        check_shape(frame, LIMITS)
    assert refused.value.code == code and sentence in refused.value.message


@pytest.mark.parametrize(
    ("frame", "code", "sentence"),
    [
        (commit(welcome=b"w", added=["bob"]), "bad_request", "bob is a member already"),
        (commit(welcome=b"w", added=["alice"]), "bad_request", "its own sender"),
        (commit(welcome=b"w", added=["zed"]), "not_found", "no account named 'zed'"),
        (commit(welcome=b"w", added=["erin"]), "too_large", "erin is in 2 groups"),
        (commit(removed=["carol"]), "bad_request", "carol is not a member"),
        (commit(welcome=b"w", added=["carol", "dave"]), "too_large", "at most 3 members"),
    ],
)
def test_a_commit_is_checked_against_the_members(
    frame: G.GroupCommit, code: str, sentence: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        check_commit(frame, "alice", STATE, GROUPS_OF, LIMITS)
    assert refused.value.code == code and sentence in refused.value.message


def test_a_full_group_may_swap_a_member_and_a_creator_needs_room() -> None:
    """The size is counted after the change; a creator at its group limit is refused."""
    full = GroupState(4, frozenset({"alice", "bob", "carol"}))
    check_commit(
        commit(welcome=b"w", added=["dave"], removed=["bob"]), "alice", full, GROUPS_OF, LIMITS
    )
    with pytest.raises(ProtocolError, match="you are in 2 groups"):
        check_commit(commit(epoch=0), "erin", None, GROUPS_OF, LIMITS)
