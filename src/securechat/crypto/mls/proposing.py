"""Sending proposals by reference (§12.1); a later Commit names them by ProposalRef."""

from __future__ import annotations

from dataclasses import replace

from securechat.crypto.mls import hpke
from securechat.crypto.mls.creation import sign_leaf
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.framing import AuthenticatedContent, FramedContentAuthData
from securechat.crypto.mls.group_context import Extension
from securechat.crypto.mls.group_state import CachedProposal, GroupState, PendingUpdate
from securechat.crypto.mls.leaf_node import KeyPackage, LeafNodeSource
from securechat.crypto.mls.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    Proposal,
    ReInit,
    Remove,
    Update,
)
from securechat.crypto.mls.psk import PreSharedKeyID, PSKType
from securechat.crypto.mls.sending import check_active, own_content, proposal_ref, send, sign
from securechat.crypto.mls.suite import random_bytes
from securechat.crypto.mls.validation import Policy, validate_key_package


def _propose(
    state: GroupState, proposal: Proposal, private: bool, authenticated_data: bytes
) -> tuple[GroupState, bytes, bytes]:
    check_active(state)
    content = own_content(state, authenticated_data, proposal)
    wire_format, signature = sign(state, content, private)
    authenticated = AuthenticatedContent(wire_format, content, FramedContentAuthData(signature))
    ref = proposal_ref(state.suite, authenticated)
    state, message = send(state, content, signature, private)
    cached = CachedProposal(ref, content.sender, proposal)
    return replace(state, proposals=(*state.proposals, cached)), ref, message


def propose(
    state: GroupState, proposal: Proposal, *, private: bool = False, authenticated_data: bytes = b""
) -> tuple[GroupState, bytes]:
    """Send any proposal by reference (a later Commit names it by its ProposalRef).
    Returns the state (with the proposal cached) and the MLSMessage to send."""
    if isinstance(proposal, Update):
        raise InvalidMessage("Use propose_update: an Update needs a fresh leaf key.")
    if isinstance(proposal, ExternalInit):
        raise InvalidMessage("ExternalInit is only sent inside an external Commit.")
    state, _, message = _propose(state, proposal, private, authenticated_data)
    return state, message


def propose_add(
    state: GroupState, key_package: KeyPackage, policy: Policy, *, private: bool = False
) -> tuple[GroupState, bytes]:
    validate_key_package(
        state.suite,
        key_package,
        tree=state.tree,
        extensions=state.context.extensions,
        policy=policy,
    )
    return propose(state, Add(key_package), private=private)


def propose_remove(
    state: GroupState, leaf_index: int, *, private: bool = False
) -> tuple[GroupState, bytes]:
    if not 0 <= leaf_index < state.tree.n_leaves or state.tree.leaf(leaf_index) is None:
        raise InvalidMessage(f"Leaf {leaf_index} is not a member.")
    return propose(state, Remove(leaf_index), private=private)


def propose_self_remove(state: GroupState, *, private: bool = False) -> tuple[GroupState, bytes]:
    """Ask to leave: a Remove of our own leaf (§12.1.3), which another member must commit,
    since no Commit may remove its committer (§12.2)."""
    return propose(state, Remove(state.own_leaf), private=private)


def propose_update(state: GroupState, *, private: bool = False) -> tuple[GroupState, bytes]:
    """A fresh leaf HPKE key for us; it takes effect when another member commits it."""
    suite = state.suite
    old = state.tree.leaf(state.own_leaf)
    assert old is not None
    enc_private, enc_public = hpke.generate_key_pair(suite.dh)
    leaf = replace(
        old,
        encryption_key=enc_public,
        leaf_node_source=LeafNodeSource.UPDATE,
        lifetime=None,
        parent_hash=b"",
    )
    leaf = sign_leaf(suite, leaf, state.signature_private, state.group_id, state.own_leaf)
    state, ref, message = _propose(state, Update(leaf), private, b"")
    pending = PendingUpdate(ref, leaf, enc_private)
    return replace(state, pending_updates=(*state.pending_updates, pending)), message


def propose_psk(
    state: GroupState, psk_id: PreSharedKeyID, *, private: bool = False
) -> tuple[GroupState, bytes]:
    return propose(state, PreSharedKey(psk_id), private=private)


def external_psk_id(psk_id: bytes) -> PreSharedKeyID:
    return PreSharedKeyID(PSKType.EXTERNAL, random_bytes(32), psk_id=psk_id)


def propose_reinit(
    state: GroupState,
    group_id: bytes,
    suite_id: int,
    extensions: tuple[Extension, ...] = (),
    *,
    private: bool = False,
) -> tuple[GroupState, bytes]:
    return propose(state, ReInit(group_id, suite_id, extensions), private=private)


def propose_group_context_extensions(
    state: GroupState, extensions: tuple[Extension, ...], *, private: bool = False
) -> tuple[GroupState, bytes]:
    return propose(state, GroupContextExtensions(extensions), private=private)
