"""The GroupInfo (§12.4.3): signing one for joiners and checking a received one with its tree."""

from __future__ import annotations

from dataclasses import replace

from securechat.crypto.mls import key_schedule, labels
from securechat.crypto.mls.codec import opaque
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.group_context import Extension, GroupContext
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.suite import CipherSuite
from securechat.crypto.mls.validation import (
    EXTERNAL_PUB,
    RATCHET_TREE,
    Policy,
    find_extension,
    validate_tree,
)
from securechat.crypto.mls.welcome import GroupInfo


def sign_group_info(
    suite: CipherSuite,
    context: GroupContext,
    tree: RatchetTree,
    tag: bytes,
    signer: int,
    signature_private: bytes,
    external_secret: bytes | None,
) -> GroupInfo:
    extensions = [Extension(RATCHET_TREE, tree.encode())]
    if external_secret is not None:
        _, external_pub = key_schedule.external_key_pair(suite, external_secret)
        extensions.append(Extension(EXTERNAL_PUB, opaque(external_pub)))
    unsigned = GroupInfo(context, tuple(extensions), tag, signer, b"")
    signature = labels.sign_with_label(suite, signature_private, b"GroupInfoTBS", unsigned.tbs())
    return replace(unsigned, signature=signature)


def group_info(state: GroupState) -> bytes:
    """A signed GroupInfo with the ratchet tree and external_pub, for external joiners."""
    info = sign_group_info(
        state.suite,
        state.context,
        state.tree,
        state.confirmation_tag,
        state.own_leaf,
        state.signature_private,
        state.external_secret,
    )
    return MLSMessage(info).encode()


def tree_from(suite: CipherSuite, info: GroupInfo, ratchet_tree: bytes | None) -> RatchetTree:
    data = (
        ratchet_tree if ratchet_tree is not None else find_extension(info.extensions, RATCHET_TREE)
    )
    if data is None:
        raise InvalidMessage("Neither the GroupInfo nor the caller supplied the ratchet tree.")
    return RatchetTree.decode(suite, data)


def check_group_info(
    suite: CipherSuite, info: GroupInfo, tree: RatchetTree, policy: Policy
) -> None:
    context = info.group_context
    validate_tree(tree, context.group_id, context.tree_hash, policy, context.extensions)
    signer = tree.leaf(info.signer) if info.signer < tree.n_leaves else None
    if signer is None:
        raise InvalidMessage("The GroupInfo's signer is not a member.")
    info.verify(suite, signer.signature_key)
