"""Framing what this member sends in the current epoch (§6): signed, then public or private."""

from __future__ import annotations

from dataclasses import replace

from securechat.crypto.mls import labels, protection
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.framing import (
    AuthenticatedContent,
    Content,
    FramedContent,
    MLSMessage,
    Sender,
    SenderType,
    WireFormat,
)
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.suite import CipherSuite


def check_active(state: GroupState) -> None:
    if state.reinit is not None:
        raise InvalidMessage("The group was reinitialised; it takes no new messages.")


def proposal_ref(suite: CipherSuite, authenticated: AuthenticatedContent) -> bytes:
    return labels.ref_hash(suite, b"MLS 1.0 Proposal Reference", authenticated.encode())


def sign(state: GroupState, content: FramedContent, private: bool) -> tuple[WireFormat, bytes]:
    wire_format = WireFormat.PRIVATE_MESSAGE if private else WireFormat.PUBLIC_MESSAGE
    signature = protection.sign_content(
        state.suite, content, wire_format, state.signature_private, state.context
    )
    return wire_format, signature


def send(
    state: GroupState,
    content: FramedContent,
    signature: bytes,
    private: bool,
    confirmation_tag: bytes | None = None,
) -> tuple[GroupState, bytes]:
    """Frame signed content as this epoch's PublicMessage or PrivateMessage."""
    suite = state.suite
    if private:
        tree, sealed = protection.protect_private(
            suite,
            content,
            state.signature_private,
            state.context,
            state.secret_tree,
            state.sender_data_secret,
            confirmation_tag=confirmation_tag,
            signature=signature,
        )
        return replace(state, secret_tree=tree), MLSMessage(sealed).encode()
    public = protection.protect_public(
        suite,
        content,
        state.signature_private,
        state.context,
        state.membership_key,
        confirmation_tag,
        signature=signature,
    )
    return state, MLSMessage(public).encode()


def own_content(state: GroupState, authenticated_data: bytes, body: Content) -> FramedContent:
    """Content this member sends in the current epoch (a proposal or application data)."""
    return FramedContent(
        state.group_id,
        state.epoch,
        Sender(SenderType.MEMBER, state.own_leaf),
        authenticated_data,
        body,
    )
