"""Who may change a group: the rules every member enforces on every Commit.

The creator is the first admin. Admins add and remove members and change the
admin list; any member may update its own leaf, rename the group, change its
topic, and leave. Leaving is a Remove proposal of one's own leaf (§12.1.3),
which the next committer, admin or not, includes.

Members send only two kinds of proposal: an Update of their own leaf and the
Remove of themselves. Everything else is committed directly by an admin, so a
proposal of any other kind is dropped on receipt (`check_proposal`). A Commit
is then judged by its committer and the cached proposals it could include
(`check_commit`), after MLS has checked it: the two states before and after are
compared, so nothing here reads MLS internals.

The rules are deterministic functions of the group state, which every member
shares: all members accept or all refuse the same Commit. (Whether a new
member's identity key is the pinned one is not a rule here: pins differ between
members; see groups/credentials.py.)

A Commit that removes an admin's last device must also drop them from the
admin list; anyone may commit that pruning, and nothing else, to the list. A
group whose last admin left keeps talking, but nobody can add or remove
members; `session.GroupSession.leave` asks the last admin to promote someone
first.
"""

from __future__ import annotations

from collections.abc import Iterable

from securechat.crypto.mls.group import CommitApplied
from securechat.crypto.mls.group_state import CachedProposal, GroupState
from securechat.crypto.mls.proposals import Remove, Update
from securechat.groups.credentials import username_of
from securechat.groups.errors import PolicyViolation
from securechat.groups.extensions import GROUP_METADATA, GROUP_POLICY, metadata_of, policy_of


def usernames(state: GroupState) -> frozenset[str]:
    """Every user with at least one device in the group."""
    return frozenset(username_of(m.credential) for m in state.roster)


def leaf_user(state: GroupState, leaf_index: int) -> str:
    leaf = state.tree.leaf(leaf_index) if 0 <= leaf_index < state.tree.n_leaves else None
    if leaf is None:
        raise PolicyViolation(f"Leaf {leaf_index} is not a member of the group.")
    return username_of(leaf.credential)


def check_proposal(state: GroupState, cached: CachedProposal) -> None:
    """A proposal a member may send by reference: an Update, or its own Remove."""
    proposal = cached.proposal
    if isinstance(proposal, Update):
        return
    if isinstance(proposal, Remove) and proposal.removed == cached.sender.index:
        return
    sender = leaf_user(state, cached.sender.index)
    raise PolicyViolation(
        f"{sender} sent a {proposal.proposal_type.name} proposal; members propose only "
        "updates and leaving, admins commit the rest."
    )


def _other_extensions(state: GroupState) -> Iterable[tuple[int, bytes]]:
    return sorted(
        (e.extension_type, e.extension_data)
        for e in state.context.extensions
        if e.extension_type not in (GROUP_POLICY, GROUP_METADATA)
    )


def check_commit(before: GroupState, after: GroupState, applied: CommitApplied) -> None:
    """Refuse (PolicyViolation) a Commit that MLS accepted but the policy does not."""
    if applied.reinit is not None:
        raise PolicyViolation("Reinitialising a group is not supported.")
    if applied.committer in applied.added:
        raise PolicyViolation("The group takes no external joins; members are added by admins.")
    policy = policy_of(before.context.extensions)
    committer = leaf_user(before, applied.committer)
    admin = committer in policy.admins
    if applied.added and not admin:
        added = leaf_user(after, applied.added[0])
        raise PolicyViolation(f"{committer} added {added}, but only admins add members.")
    for leaf_index in applied.removed:
        if admin or _left(before.proposals, leaf_index):
            continue
        removed = leaf_user(before, leaf_index)
        raise PolicyViolation(
            f"{committer} removed {removed}, but only admins remove others; members only leave."
        )
    if list(_other_extensions(before)) != list(_other_extensions(after)):
        raise PolicyViolation("Only the group's policy, name and topic may change.")
    metadata_of(after.context.extensions)
    new_policy = policy_of(after.context.extensions)
    remaining = usernames(after)
    if new_policy != policy and not admin and new_policy.admins != policy.admins & remaining:
        raise PolicyViolation(f"{committer} changed who administers the group, but is no admin.")
    outside = new_policy.admins - remaining
    if outside:
        raise PolicyViolation(
            f"The admin list names {sorted(outside)[0]}, who is not a member of the group."
        )


def check_removal(before: GroupState, committer_leaf: int) -> None:
    """A Commit that removes us: MLS does not build the state after it for us, but the
    committer may still be judged, so we refuse exactly what the others refuse."""
    committer = leaf_user(before, committer_leaf)
    if committer in policy_of(before.context.extensions).admins:
        return
    if not _left(before.proposals, before.own_leaf):
        raise PolicyViolation(
            f"{committer} removed you, but only admins remove others; members only leave."
        )


def _left(proposals: Iterable[CachedProposal], leaf_index: int) -> bool:
    """The member at `leaf_index` asked to leave this epoch."""
    return any(
        isinstance(c.proposal, Remove)
        and c.proposal.removed == leaf_index
        and c.sender.index == leaf_index
        for c in proposals
    )
