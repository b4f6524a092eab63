"""Joining from a Welcome (§12.4.3.1)."""

from __future__ import annotations

from securechat.crypto.mls import key_schedule, psk, tree_math
from securechat.crypto.mls.creation import KeyPackagePrivate
from securechat.crypto.mls.epoch import epoch_state
from securechat.crypto.mls.errors import InvalidMessage, InvalidProposalList, NotAMember
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.group_info import check_group_info, tree_from
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.psk import PSKType
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.tree_math import subtree
from securechat.crypto.mls.treekem import filtered_direct_path, next_path_secret, node_key_pair
from securechat.crypto.mls.validation import Policy
from securechat.crypto.mls.welcome import Welcome, open_group_info, open_group_secrets


def join_from_welcome(
    welcome: bytes,
    key_package: KeyPackage,
    private: KeyPackagePrivate,
    policy: Policy,
    *,
    ratchet_tree: bytes | None = None,
) -> GroupState:
    """Join from a Welcome (§12.4.3.1): every check of the tree, the GroupInfo signature
    and the confirmation tag; our path secrets from the committer's filtered path."""
    envelope = MLSMessage.decode(welcome)
    message = envelope.message
    if not isinstance(message, Welcome):
        raise InvalidMessage("The message is not a Welcome.")
    suite = get_suite(message.cipher_suite)
    group_secrets = open_group_secrets(suite, message, key_package, private.init_private)
    psk_secret = None
    if group_secrets.psks:
        values = []
        for psk_id in group_secrets.psks:
            value = (
                policy.external_psks.get(psk_id.psk_id)
                if psk_id.psktype == PSKType.EXTERNAL
                else None
            )
            if value is None:
                raise InvalidProposalList("The Welcome needs a PSK we do not hold.")
            values.append(value)
        psk_secret = psk.psk_secret(suite, list(zip(group_secrets.psks, values, strict=True)))
    info = open_group_info(suite, message, group_secrets.joiner_secret, psk_secret)
    context = info.group_context
    if context.cipher_suite != suite.id:
        raise InvalidMessage("The GroupInfo names another cipher suite than the Welcome.")
    tree = tree_from(suite, info, ratchet_tree)
    check_group_info(suite, info, tree, policy)
    own = next((i for i in range(tree.n_leaves) if tree.leaf(i) == key_package.leaf_node), None)
    if own is None:
        raise NotAMember("Our key package's leaf is not in the group's tree.")
    secrets = key_schedule.from_joiner(
        suite, group_secrets.joiner_secret, psk_secret, context.encode()
    )
    suite.kdf.verify_mac(
        secrets.confirmation_key, context.confirmed_transcript_hash, info.confirmation_tag
    )
    node_keys = {tree_math.leaf_to_node(own): private.encryption_private}
    if group_secrets.path_secret is not None:
        node_keys.update(_path_keys(tree, info.signer, own, group_secrets.path_secret))
    return epoch_state(
        context=context,
        tree=tree,
        own_leaf=own,
        signature_private=private.signature_private,
        node_keys=node_keys,
        secrets=secrets,
        confirmation_tag=info.confirmation_tag,
        resumption_psks={},
    )


def _path_keys(tree: RatchetTree, committer: int, own: int, path_secret: bytes) -> dict[int, bytes]:
    """The private keys from our common ancestor with the committer up (§12.4.3.1)."""
    suite = tree.suite
    own_node = tree_math.leaf_to_node(own)
    path = [p for p, _ in filtered_direct_path(tree, committer)]
    start = next((k for k, p in enumerate(path) if own_node in subtree(p)), None)
    if start is None:
        raise InvalidMessage("The Welcome's path secret has no node above us.")
    keys, secret = {}, path_secret
    for p in path[start:]:
        private, public = node_key_pair(suite, secret)
        if public != tree.encryption_key(p):
            raise InvalidMessage(f"The path secret does not match the key of node {p}.")
        keys[p] = private
        secret = next_path_secret(suite, secret)
    return keys
