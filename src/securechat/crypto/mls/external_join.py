"""Joining by an external Commit (§12.4.3.2) from a published GroupInfo."""

from __future__ import annotations

from dataclasses import replace

from securechat.crypto.mls import hpke, key_schedule, protection, tree_math
from securechat.crypto.mls.codec import decode, opaque
from securechat.crypto.mls.creation import default_capabilities
from securechat.crypto.mls.epoch import confirmed_hash, epoch_state
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.framing import FramedContent, MLSMessage, Sender, SenderType, WireFormat
from securechat.crypto.mls.group_info import check_group_info, tree_from
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import Capabilities, Credential, LeafNode, LeafNodeSource
from securechat.crypto.mls.proposals import Commit, ExternalInit, Proposal, Remove
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.treekem import create_update_path
from securechat.crypto.mls.validation import EXTERNAL_PUB, Policy, find_extension
from securechat.crypto.mls.welcome import GroupInfo

EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"


def join_external(
    group_info_message: bytes,
    credential: Credential,
    signature_private: bytes,
    policy: Policy,
    *,
    ratchet_tree: bytes | None = None,
    remove_prior: int | None = None,
    capabilities: Capabilities | None = None,
    authenticated_data: bytes = b"",
) -> tuple[GroupState, bytes]:
    """Join by an external Commit (§12.4.3.2) from a published GroupInfo; returns our
    state and the Commit to send. `remove_prior` removes an old leaf of ours (resync)."""
    envelope = MLSMessage.decode(group_info_message)
    info = envelope.message
    if not isinstance(info, GroupInfo):
        raise InvalidMessage("The message is not a GroupInfo.")
    suite = get_suite(info.group_context.cipher_suite)
    tree = tree_from(suite, info, ratchet_tree)
    check_group_info(suite, info, tree, policy)
    external_pub_data = find_extension(info.extensions, EXTERNAL_PUB)
    if external_pub_data is None:
        raise InvalidMessage("The GroupInfo has no external_pub: external joins are closed.")
    external_pub = decode(external_pub_data, lambda r: r.opaque())
    kem_output, init_secret = hpke.send_export(
        suite, external_pub, b"", EXTERNAL_INIT_LABEL, suite.nh
    )
    old = info.group_context
    proposals: list[Proposal] = [ExternalInit(kem_output)]
    if remove_prior is not None:
        proposals.append(Remove(remove_prior))
        if tree.leaf(remove_prior) is None:
            raise InvalidMessage(f"Leaf {remove_prior} is not a member.")
        tree = tree.remove_leaf(remove_prior)
    signature_public = suite.signature.public_key(signature_private)
    placeholder = LeafNode(
        b"",
        signature_public,
        credential,
        capabilities or default_capabilities(suite),
        LeafNodeSource.COMMIT,
        None,
        b"",
        (),
        b"",
    )
    tree, own = tree.add_leaf(placeholder)
    provisional = replace(old, epoch=old.epoch + 1)
    created = create_update_path(tree, own, signature_private, provisional)
    content = FramedContent(
        old.group_id,
        old.epoch,
        Sender(SenderType.NEW_MEMBER_COMMIT),
        authenticated_data,
        Commit(tuple(proposals), created.update_path),
    )
    signature = protection.sign_content(
        suite, content, WireFormat.PUBLIC_MESSAGE, signature_private, old
    )
    interim = suite.kdf.hash(old.confirmed_transcript_hash + opaque(info.confirmation_tag))
    confirmed = confirmed_hash(suite, interim, WireFormat.PUBLIC_MESSAGE, content, signature)
    context = replace(
        provisional, tree_hash=created.tree.tree_hash(), confirmed_transcript_hash=confirmed
    )
    secrets = key_schedule.next_epoch(
        suite, init_secret, created.commit_secret, None, context.encode()
    )
    tag = key_schedule.confirmation_tag(suite, secrets.confirmation_key, confirmed)
    public = protection.protect_public(
        suite, content, signature_private, old, b"", tag, signature=signature
    )
    node_keys = dict(created.private_keys)
    node_keys[tree_math.leaf_to_node(own)] = created.leaf_private
    state = epoch_state(
        context=context,
        tree=created.tree,
        own_leaf=own,
        signature_private=signature_private,
        node_keys=node_keys,
        secrets=secrets,
        confirmation_tag=tag,
        resumption_psks={},
    )
    return state, MLSMessage(public).encode()
