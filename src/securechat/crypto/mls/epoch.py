"""The state of a new epoch from its secrets.

Shared by creating a group, committing, processing a Commit and joining, so that
every path builds the same GroupState (and drops the same stale private keys).
"""

from __future__ import annotations

from types import MappingProxyType

from securechat.crypto.mls import key_schedule, transcript
from securechat.crypto.mls.codec import opaque
from securechat.crypto.mls.framing import (
    AuthenticatedContent,
    FramedContent,
    FramedContentAuthData,
    WireFormat,
)
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.group_state import RESUMPTION_PSKS_KEPT, GroupState
from securechat.crypto.mls.proposals import ReInit
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.secret_tree import SecretTree
from securechat.crypto.mls.suite import CipherSuite


def epoch_state(
    *,
    context: GroupContext,
    tree: RatchetTree,
    own_leaf: int,
    signature_private: bytes,
    node_keys: dict[int, bytes],
    secrets: key_schedule.EpochSecrets,
    confirmation_tag: bytes,
    resumption_psks: dict[int, bytes],
    reinit: ReInit | None = None,
) -> GroupState:
    suite = tree.suite
    interim = suite.kdf.hash(context.confirmed_transcript_hash + opaque(confirmation_tag))
    kept = dict(sorted(resumption_psks.items())[-RESUMPTION_PSKS_KEPT:])
    return GroupState(
        context=context,
        tree=tree,
        own_leaf=own_leaf,
        signature_private=signature_private,
        node_keys=MappingProxyType(live_keys(tree, node_keys)),
        secret_tree=SecretTree.create(suite, secrets.encryption_secret, tree.n_leaves),
        sender_data_secret=secrets.sender_data_secret,
        exporter_secret=secrets.exporter_secret,
        external_secret=secrets.external_secret,
        membership_key=secrets.membership_key,
        resumption_psk=secrets.resumption_psk,
        epoch_authenticator=secrets.epoch_authenticator,
        init_secret=secrets.init_secret,
        confirmation_tag=confirmation_tag,
        interim_transcript_hash=interim,
        resumption_psks=MappingProxyType(kept),
        reinit=reinit,
    )


def live_keys(tree: RatchetTree, keys: dict[int, bytes]) -> dict[int, bytes]:
    """Drop private keys whose node was blanked or replaced (§7.5 deletion)."""
    suite = tree.suite
    out = {}
    for x, private in keys.items():
        node = tree.nodes[x] if x < len(tree.nodes) else None
        if node is not None and node.encryption_key == suite.dh.public_key(private):
            out[x] = private
    return out


def confirmed_hash(
    suite: CipherSuite, interim: bytes, wire_format: WireFormat, content: FramedContent, sig: bytes
) -> bytes:
    authenticated = AuthenticatedContent(wire_format, content, FramedContentAuthData(sig, b""))
    return transcript.update(suite, interim, authenticated).confirmed
