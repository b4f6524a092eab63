"""Processing a received message (§6, §12.4.2): application data, a proposal or a Commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from securechat.crypto.mls import hpke, key_schedule, protection, transcript, tree_math
from securechat.crypto.mls.epoch import epoch_state, live_keys
from securechat.crypto.mls.errors import InvalidMessage, InvalidProposalList
from securechat.crypto.mls.external_join import EXTERNAL_INIT_LABEL
from securechat.crypto.mls.framing import (
    AuthenticatedContent,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    SenderType,
)
from securechat.crypto.mls.group_state import CachedProposal, GroupState
from securechat.crypto.mls.leaf_node import LeafNodeSource
from securechat.crypto.mls.outputs import (
    ApplicationMessage,
    CommitApplied,
    Output,
    ProposalReceived,
    RemovedFromGroup,
)
from securechat.crypto.mls.proposal_list import apply, provisional_context
from securechat.crypto.mls.proposals import Commit, ExternalInit, Proposal, ProposalRef, Update
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.sending import check_active, proposal_ref
from securechat.crypto.mls.treekem import decrypt_update_path, merge_update_path
from securechat.crypto.mls.validation import Policy, validate_leaf_node


class _SignatureKeys(Mapping[int, bytes]):
    """Leaf index -> signature key, looked up in the tree only for the sender named,
    so decrypting a message does not cost a pass over every member."""

    def __init__(self, tree: RatchetTree) -> None:
        self._tree = tree

    def __getitem__(self, leaf_index: int) -> bytes:
        leaf = self._tree.leaf(leaf_index) if 0 <= leaf_index < self._tree.n_leaves else None
        if leaf is None:
            raise KeyError(leaf_index)
        return leaf.signature_key

    def __iter__(self) -> Iterator[int]:
        return (i for i in range(self._tree.n_leaves) if self._tree.leaf(i) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _authenticate(
    state: GroupState, message: PublicMessage | PrivateMessage
) -> tuple[GroupState, AuthenticatedContent]:
    suite = state.suite
    if isinstance(message, PrivateMessage):
        tree, authenticated = protection.unprotect_private(
            suite,
            message,
            state.context,
            state.secret_tree,
            state.sender_data_secret,
            _SignatureKeys(state.tree),
        )
        return replace(state, secret_tree=tree), authenticated
    content = message.content
    protection.check_epoch(content.group_id, content.epoch, state.context)
    sender = content.sender
    if sender.sender_type == SenderType.MEMBER:
        leaf = state.tree.leaf(sender.index) if sender.index < state.tree.n_leaves else None
        if leaf is None:
            raise InvalidMessage(f"Leaf {sender.index} is not a member of the group.")
        key = leaf.signature_key
    elif sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
        commit_content = content.content
        if not isinstance(commit_content, Commit) or commit_content.path is None:
            raise InvalidMessage("An external Commit must carry a path.")
        key = commit_content.path.leaf_node.signature_key
    else:
        raise InvalidMessage("Proposals from external senders are not supported.")
    authenticated = protection.unprotect_public(
        suite, message, key, state.context, state.membership_key
    )
    return state, authenticated


def process(state: GroupState, data: bytes, policy: Policy) -> tuple[GroupState, Output]:
    """Process one MLSMessage (PublicMessage or PrivateMessage) of this group.

    Returns the state to keep and what happened; raises an MLSError (and the
    caller's state stays valid) when the message is malformed, forged, replayed,
    for another epoch, or breaks a rule of the protocol.
    """
    envelope = MLSMessage.decode(data)
    message = envelope.message
    if not isinstance(message, PublicMessage | PrivateMessage):
        raise InvalidMessage(f"A {envelope.wire_format.name} is not processed by a group.")
    state, authenticated = _authenticate(state, message)
    content = authenticated.content
    if content.sender.sender_type == SenderType.MEMBER and content.sender.index == state.own_leaf:
        raise InvalidMessage("The message is our own; adopt the state that sending returned.")
    body = content.content
    if isinstance(body, bytes):
        return state, ApplicationMessage(content.sender.index, body, content.authenticated_data)
    if isinstance(body, Commit):
        return _process_commit(state, authenticated, body, policy)
    check_active(state)
    if isinstance(body, ExternalInit):
        raise InvalidMessage("An ExternalInit is never sent as a proposal of its own.")
    ref = proposal_ref(state.suite, authenticated)
    cached = CachedProposal(ref, content.sender, body)
    state = replace(state, proposals=(*state.proposals, cached))
    return state, ProposalReceived(content.sender.index, ref, body.proposal_type)


def resolve(
    state: GroupState, body: Commit, committer: int | None
) -> list[tuple[Proposal, int | None]]:
    cache = {c.ref: c for c in state.proposals}
    items: list[tuple[Proposal, int | None]] = []
    for item in body.proposals:
        if isinstance(item, ProposalRef):
            cached = cache.get(item.reference)
            if cached is None:
                raise InvalidProposalList("The Commit names a proposal we never received.")
            items.append((cached.proposal, cached.sender.index))
        else:
            if isinstance(item, Update):
                raise InvalidProposalList("An Update may not be committed by value.")
            items.append((item, committer))
    return items


def _process_commit(
    state: GroupState, authenticated: AuthenticatedContent, body: Commit, policy: Policy
) -> tuple[GroupState, Output]:
    check_active(state)
    suite = state.suite
    sender = authenticated.content.sender
    external = sender.sender_type == SenderType.NEW_MEMBER_COMMIT
    committer = None if external else sender.index
    items = resolve(state, body, committer)
    applied = apply(state, items, committer, policy)
    if applied.path_required and body.path is None:
        raise InvalidProposalList("This Commit's proposals require a path.")
    tree = applied.tree
    if external:
        assert body.path is not None
        tree, committer_index = tree.add_leaf(body.path.leaf_node)
    else:
        assert committer is not None
        committer_index = committer
    if state.own_leaf in applied.removed:
        return state, RemovedFromGroup(state.epoch + 1, committer_index)
    provisional = provisional_context(state, applied)
    node_keys = dict(state.node_keys)
    own_update = next(
        (
            u
            for u in state.pending_updates
            if any(isinstance(i, ProposalRef) and i.reference == u.ref for i in body.proposals)
        ),
        None,
    )
    if own_update is not None:
        node_keys[tree_math.leaf_to_node(state.own_leaf)] = own_update.encryption_private
    commit_secret = None
    if body.path is not None:
        validate_leaf_node(
            suite,
            body.path.leaf_node,
            tree=tree if not external else _without_leaf(tree, committer_index),
            extensions=applied.extensions,
            group_id=state.group_id,
            leaf_index=committer_index,
            source=LeafNodeSource.COMMIT,
            policy=policy,
            replacing=committer_index,
        )
        merged = merge_update_path(tree, committer_index, body.path)
        context_for_path = replace(provisional, tree_hash=merged.tree_hash())
        result = decrypt_update_path(
            merged,
            committer_index,
            body.path,
            state.own_leaf,
            live_keys(merged, node_keys),
            context_for_path,
            [i for i, _ in applied.added],
        )
        node_keys.update(result.private_keys)
        commit_secret = result.commit_secret
        tree = merged
    hashes = transcript.update(suite, state.interim_transcript_hash, authenticated)
    context = replace(
        provisional, tree_hash=tree.tree_hash(), confirmed_transcript_hash=hashes.confirmed
    )
    init_secret = state.init_secret
    if applied.external_init is not None:
        external_private, _ = key_schedule.external_key_pair(suite, state.external_secret)
        init_secret = hpke.receive_export(
            suite,
            external_private,
            applied.external_init.kem_output,
            b"",
            EXTERNAL_INIT_LABEL,
            suite.nh,
        )
    secrets = key_schedule.next_epoch(
        suite, init_secret, commit_secret, applied.psk_secret, context.encode()
    )
    tag = authenticated.auth.confirmation_tag
    assert tag is not None
    suite.kdf.verify_mac(secrets.confirmation_key, hashes.confirmed, tag)
    new_state = epoch_state(
        context=context,
        tree=tree,
        own_leaf=state.own_leaf,
        signature_private=state.signature_private,
        node_keys=node_keys,
        secrets=secrets,
        confirmation_tag=tag,
        resumption_psks={**state.resumption_psks, state.epoch: state.resumption_psk},
        reinit=applied.reinit,
    )
    added = tuple(i for i, _ in applied.added)
    if external:
        added = (*added, committer_index)
    output = CommitApplied(
        context.epoch, committer_index, added, applied.removed, applied.updated, applied.reinit
    )
    return new_state, output


def _without_leaf(tree: RatchetTree, leaf_index: int) -> RatchetTree:
    nodes = list(tree.nodes)
    nodes[tree_math.leaf_to_node(leaf_index)] = None
    return tree.derive(tuple(nodes))
