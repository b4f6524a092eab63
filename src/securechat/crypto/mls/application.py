"""Application data (§6.3) and what an epoch exports to the application (§8.5)."""

from __future__ import annotations

from dataclasses import replace

from securechat.crypto.mls import key_schedule, protection
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


def export_secret(state: GroupState, label: bytes, context: bytes, length: int) -> bytes:
    """MLS-Exporter (§8.5) of the current epoch."""
    return key_schedule.export(state.suite, state.exporter_secret, label, context, length)


def epoch_authenticator(state: GroupState) -> bytes:
    """Equal for every member of the same epoch; compare out of band to detect a split."""
    return state.epoch_authenticator


def roster(state: GroupState) -> tuple[Member, ...]:
    return state.roster
