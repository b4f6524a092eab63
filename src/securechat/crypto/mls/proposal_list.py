"""A Commit's proposal list: validated (§12.2) and applied in order (§12.3).

One implementation for the committer and the receivers, so both sides agree on
what a Commit does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from securechat.crypto.mls import psk
from securechat.crypto.mls.errors import InvalidLeafNode, InvalidProposalList
from securechat.crypto.mls.group_context import Extension, GroupContext
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import KeyPackage, LeafNodeSource
from securechat.crypto.mls.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    Proposal,
    ProposalType,
    ReInit,
    Remove,
    Update,
)
from securechat.crypto.mls.psk import PreSharedKeyID, PSKType
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.validation import (
    LeafIndex,
    Policy,
    check_supports,
    validate_key_package,
    validate_leaf_node,
)

_NO_PATH_NEEDED = {ProposalType.ADD, ProposalType.PSK, ProposalType.REINIT}


@dataclass(frozen=True, repr=False)
class Applied:
    tree: RatchetTree
    extensions: tuple[Extension, ...]
    added: tuple[tuple[int, KeyPackage], ...]
    removed: tuple[int, ...]
    updated: tuple[int, ...]
    psk_ids: tuple[PreSharedKeyID, ...]
    psk_secret: bytes | None
    external_init: ExternalInit | None
    reinit: ReInit | None
    path_required: bool


def _psk_value(state: GroupState, psk_id: PreSharedKeyID, policy: Policy) -> bytes:
    if psk_id.psktype == PSKType.EXTERNAL:
        value = policy.external_psks.get(psk_id.psk_id)
    elif psk_id.psk_group_id != state.group_id:
        value = None
    elif psk_id.psk_epoch == state.epoch:
        value = state.resumption_psk
    else:
        value = state.resumption_psks.get(psk_id.psk_epoch)
    if value is None:
        raise InvalidProposalList("A PreSharedKey proposal names a PSK we do not hold.")
    return value


def _check_list(
    items: Sequence[tuple[Proposal, int | None]], committer: int | None, tree: RatchetTree
) -> None:
    """The structural rules of §12.2; `committer` None means an external Commit."""
    kinds = [p.proposal_type for p, _ in items]
    if committer is None:
        if kinds.count(ProposalType.EXTERNAL_INIT) != 1:
            raise InvalidProposalList("An external Commit needs exactly one ExternalInit.")
        if kinds.count(ProposalType.REMOVE) > 1:
            raise InvalidProposalList("An external Commit removes at most one leaf.")
        allowed = {ProposalType.EXTERNAL_INIT, ProposalType.REMOVE, ProposalType.PSK}
        if any(k not in allowed for k in kinds):
            raise InvalidProposalList("An external Commit carries only ExternalInit, Remove, PSK.")
    elif ProposalType.EXTERNAL_INIT in kinds:
        raise InvalidProposalList("Only an external Commit carries an ExternalInit.")
    if ProposalType.REINIT in kinds and len(kinds) > 1:
        raise InvalidProposalList("A ReInit must be the only proposal of its Commit.")
    if kinds.count(ProposalType.GROUP_CONTEXT_EXTENSIONS) > 1:
        raise InvalidProposalList("At most one GroupContextExtensions per Commit.")
    touched: set[int] = set()
    psk_ids: set[bytes] = set()
    for proposal, sender in items:
        if isinstance(proposal, Update):
            if sender is None or sender == committer:
                raise InvalidProposalList("A Commit may not carry the committer's own Update.")
            target = sender
        elif isinstance(proposal, Remove):
            if proposal.removed == committer:
                raise InvalidProposalList("A Commit may not remove the committer.")
            target = proposal.removed
            if target >= tree.n_leaves or tree.leaf(target) is None:
                raise InvalidProposalList(f"Remove names leaf {target}, which is blank.")
        elif isinstance(proposal, PreSharedKey):
            encoded = proposal.psk.encode()
            if encoded in psk_ids:
                raise InvalidProposalList("Two PreSharedKey proposals name the same PSK.")
            psk_ids.add(encoded)
            continue
        else:
            continue
        if target in touched:
            raise InvalidProposalList(f"Two Update/Remove proposals apply to leaf {target}.")
        touched.add(target)


def provisional_context(state: GroupState, applied: Applied) -> GroupContext:
    """The next epoch's context before its tree hash is known (§12.4.2, step "provisional")."""
    return GroupContext(
        state.suite.id,
        state.group_id,
        state.epoch + 1,
        b"",
        state.context.confirmed_transcript_hash,
        applied.extensions,
    )


def apply(
    state: GroupState,
    items: Sequence[tuple[Proposal, int | None]],
    committer: int | None,
    policy: Policy,
) -> Applied:
    """Validate, then apply in the order of §12.3, checking each new leaf (§7.3, §10.1)."""
    _check_list(items, committer, state.tree)
    suite, tree = state.suite, state.tree
    extensions = state.context.extensions
    for proposal, _ in items:
        if isinstance(proposal, GroupContextExtensions):
            extensions = proposal.extensions
            for member in state.roster:
                leaf = tree.leaf(member.leaf_index)
                assert leaf is not None
                try:
                    check_supports(leaf, suite, extensions)
                except InvalidLeafNode as exc:
                    raise InvalidProposalList(
                        f"Leaf {member.leaf_index} cannot meet the new extensions: {exc}"
                    ) from None
    updated, removed = [], []
    for proposal, sender in items:
        if isinstance(proposal, Update) and sender is not None:
            validate_leaf_node(
                suite,
                proposal.leaf_node,
                tree=tree,
                extensions=extensions,
                group_id=state.group_id,
                leaf_index=sender,
                source=LeafNodeSource.UPDATE,
                policy=policy,
                replacing=sender,
            )
            tree = tree.update_leaf(sender, proposal.leaf_node)
            updated.append(sender)
    for proposal, _ in items:
        if isinstance(proposal, Remove):
            tree = tree.remove_leaf(proposal.removed)
            removed.append(proposal.removed)
    added = []
    adds = [proposal for proposal, _ in items if isinstance(proposal, Add)]
    # The index is a pass over every member: only a Commit that adds pays for it here.
    known = LeafIndex.of(tree) if adds else None
    for add in adds:
        assert known is not None
        validate_key_package(
            suite, add.key_package, tree=tree, extensions=extensions, policy=policy, known=known
        )
        tree, index = tree.add_leaf(add.key_package.leaf_node)
        known.add(add.key_package.leaf_node, index)
        added.append((index, add.key_package))
    psk_ids = tuple(p.psk for p, _ in items if isinstance(p, PreSharedKey))
    psk_secret = None
    if psk_ids:
        values = [_psk_value(state, i, policy) for i in psk_ids]
        psk_secret = psk.psk_secret(suite, list(zip(psk_ids, values, strict=True)))
    kinds = {p.proposal_type for p, _ in items}
    return Applied(
        tree,
        extensions,
        tuple(added),
        tuple(removed),
        tuple(updated),
        psk_ids,
        psk_secret,
        next((p for p, _ in items if isinstance(p, ExternalInit)), None),
        next((p for p, _ in items if isinstance(p, ReInit)), None),
        not items or committer is None or not kinds <= _NO_PATH_NEEDED,
    )
