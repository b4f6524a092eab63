"""Application data (§6.3) and what an epoch exports to the application (§8.5)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from securechat.crypto.mls import key_schedule, protection, tree_math
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.group_state import GroupState, Member
from securechat.crypto.mls.sending import check_active, own_content


def protect(
    state: GroupState, data: bytes, *, authenticated_data: bytes = b"", padding: int = 0
) -> tuple[GroupState, bytes]:
    """Encrypt application data as a PrivateMessage of this epoch."""
    check_active(state)
    content = own_content(state, authenticated_data, data)
    tree, message = protection.protect_private(
        state.suite,
        content,
        state.signature_private,
        state.context,
        state.secret_tree,
        state.sender_data_secret,
        padding=padding,
    )
    return replace(state, secret_tree=tree), MLSMessage(message).encode()


def for_late_messages(state: GroupState) -> GroupState:
    """What of an epoch's state is kept once the epoch has ended, so its late
    application messages still open (`process`): the secret tree, the sender data
    secret and the public tree. The rest goes: with this epoch's init secret and
    node keys, the next epoch's Commit would give its whole key schedule, and so
    its messages already read. Our leaf's private key stays (decoding needs it;
    a Commit by another member leaves it as the next epoch has it). A Commit or
    a PublicMessage fails on the result; it is not for sending."""
    own = tree_math.leaf_to_node(state.own_leaf)
    return replace(
        state,
        signature_private=b"",
        node_keys=MappingProxyType({own: state.node_keys[own]}),
        exporter_secret=b"",
        external_secret=b"",
        membership_key=b"",
        resumption_psk=b"",
        init_secret=b"",
        proposals=(),
        pending_updates=(),
        resumption_psks=MappingProxyType({}),
    )


def export_secret(state: GroupState, label: bytes, context: bytes, length: int) -> bytes:
    """MLS-Exporter (§8.5) of the current epoch."""
    return key_schedule.export(state.suite, state.exporter_secret, label, context, length)


def epoch_authenticator(state: GroupState) -> bytes:
    """Equal for every member of the same epoch; compare out of band to detect a split."""
    return state.epoch_authenticator


def roster(state: GroupState) -> tuple[Member, ...]:
    return state.roster
