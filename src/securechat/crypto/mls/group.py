"""The MLS group (RFC 9420 §10-§12): what a client drives without knowing MLS internals.

Every operation takes a GroupState and returns a new one; nothing is changed in
place, so processing works on a copy and a failure (any MLSError) leaves the
caller's state as it was. The committer adopts the state `commit` returns once
the delivery service has accepted its Commit; until then it keeps the old one.

    create_group / make_key_package / join_from_welcome / join_external
    propose_add / propose_update / propose_remove / propose_self_remove /
    propose_psk / propose_reinit / propose_group_context_extensions
    commit -> CommitResult (message, Welcome)
    protect (application data) / process (any handshake or application message)
    for_late_messages (an ended epoch's state, kept to open its late messages)
    group_info / export_secret / epoch_authenticator

This module is the API only: each operation lives in the module that owns its
idea (creation, proposing, committing, processing, joining, external_join,
application), and callers import them from here.
"""

from __future__ import annotations

from securechat.crypto.mls.application import (
    epoch_authenticator,
    export_secret,
    for_late_messages,
    protect,
    roster,
)
from securechat.crypto.mls.committing import commit
from securechat.crypto.mls.creation import (
    DEFAULT_LIFETIME,
    KeyPackagePrivate,
    create_group,
    default_capabilities,
    make_key_package,
)
from securechat.crypto.mls.external_join import join_external
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.group_info import group_info
from securechat.crypto.mls.group_state import GroupState, Member
from securechat.crypto.mls.joining import join_from_welcome
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.outputs import (
    ApplicationMessage,
    CommitApplied,
    CommitResult,
    Output,
    ProposalReceived,
    RemovedFromGroup,
)
from securechat.crypto.mls.processing import process
from securechat.crypto.mls.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    ProposalType,
    ReInit,
    Remove,
    Update,
)
from securechat.crypto.mls.proposing import (
    external_psk_id,
    propose,
    propose_add,
    propose_group_context_extensions,
    propose_psk,
    propose_reinit,
    propose_remove,
    propose_self_remove,
    propose_update,
)
from securechat.crypto.mls.validation import Policy

__all__ = [
    "DEFAULT_LIFETIME",
    "Add",
    "ApplicationMessage",
    "CommitApplied",
    "CommitResult",
    "ExternalInit",
    "GroupContextExtensions",
    "GroupState",
    "KeyPackage",
    "KeyPackagePrivate",
    "MLSMessage",
    "Member",
    "Output",
    "Policy",
    "PreSharedKey",
    "ProposalReceived",
    "ProposalType",
    "ReInit",
    "Remove",
    "RemovedFromGroup",
    "Update",
    "commit",
    "create_group",
    "default_capabilities",
    "epoch_authenticator",
    "export_secret",
    "external_psk_id",
    "for_late_messages",
    "group_info",
    "join_external",
    "join_from_welcome",
    "make_key_package",
    "process",
    "propose",
    "propose_add",
    "propose_group_context_extensions",
    "propose_psk",
    "propose_reinit",
    "propose_remove",
    "propose_self_remove",
    "propose_update",
    "protect",
    "roster",
]
