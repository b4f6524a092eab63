"""Creating a Commit (§12.4) and the Welcome for the members it adds (§12.4.3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from securechat.crypto.mls import key_schedule, labels, tree_math
from securechat.crypto.mls.epoch import confirmed_hash, epoch_state
from securechat.crypto.mls.errors import InvalidProposalList
from securechat.crypto.mls.framing import FramedContent, MLSMessage, Sender, SenderType
from securechat.crypto.mls.group_info import sign_group_info
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.outputs import CommitApplied, CommitResult
from securechat.crypto.mls.proposal_list import apply, provisional_context
from securechat.crypto.mls.proposals import (
    Commit,
    HPKECiphertext,
    Proposal,
    ProposalOrRef,
    ProposalRef,
    Remove,
    Update,
    UpdatePath,
)
from securechat.crypto.mls.psk import PreSharedKeyID
from securechat.crypto.mls.sending import check_active, send, sign
from securechat.crypto.mls.suite import CipherSuite
from securechat.crypto.mls.tree_math import subtree
from securechat.crypto.mls.treekem import create_update_path, filtered_direct_path
from securechat.crypto.mls.validation import Policy
from securechat.crypto.mls.welcome import EncryptedGroupSecrets, GroupInfo, GroupSecrets, Welcome


def _welcome(
    suite: CipherSuite,
    info: GroupInfo,
    secrets: key_schedule.EpochSecrets,
    psk_secret: bytes | None,
    added: tuple[tuple[int, KeyPackage], ...],
    path_secrets: dict[int, bytes],
    path: list[int],
    psk_ids: tuple[PreSharedKeyID, ...],
) -> Welcome:
    welcome_secret = key_schedule.welcome_secret(suite, secrets.joiner_secret, psk_secret)
    key = labels.expand_with_label(suite, welcome_secret, b"key", b"", suite.aead.nk)
    nonce = labels.expand_with_label(suite, welcome_secret, b"nonce", b"", suite.aead.nn)
    encrypted_info = suite.aead.seal(key, nonce, b"", info.encode())
    entries = []
    for index, key_package in added:
        x = tree_math.leaf_to_node(index)
        common = next((p for p in path if x in subtree(p)), None)
        secrets_for = GroupSecrets(
            secrets.joiner_secret, None if common is None else path_secrets[common], psk_ids
        )
        kem_output, ciphertext = labels.encrypt_with_label(
            suite, key_package.init_key, b"Welcome", encrypted_info, secrets_for.encode()
        )
        entries.append(
            EncryptedGroupSecrets(
                key_package.ref(suite),
                HPKECiphertext(kem_output, ciphertext),
            )
        )
    return Welcome(suite.id, tuple(entries), encrypted_info)


def commit(
    state: GroupState,
    policy: Policy,
    *,
    proposals: Sequence[Proposal] = (),
    path: bool = True,
    private: bool = False,
    authenticated_data: bytes = b"",
) -> CommitResult:
    """Commit every proposal cached this epoch (by reference) and `proposals` (by value).

    Our own Updates and Removes of ourselves are left out (§12.2). A path is sent
    when asked or when the proposals require one. The Welcome, if anyone is added,
    carries the ratchet tree in its GroupInfo.
    """
    check_active(state)
    suite = state.suite
    own = state.own_leaf
    refs: list[ProposalOrRef] = []
    items: list[tuple[Proposal, int | None]] = []
    for cached in state.proposals:
        if cached.sender.index == own and isinstance(cached.proposal, Update):
            continue
        if isinstance(cached.proposal, Remove) and cached.proposal.removed == own:
            continue
        refs.append(ProposalRef(cached.ref))
        items.append((cached.proposal, cached.sender.index))
    for proposal in proposals:
        if isinstance(proposal, Update):
            raise InvalidProposalList("A Commit may not carry the committer's own Update.")
        refs.append(proposal)
        items.append((proposal, own))
    applied = apply(state, items, own, policy)
    use_path = path or applied.path_required
    provisional = provisional_context(state, applied)
    node_keys = dict(state.node_keys)
    update_path: UpdatePath | None = None
    commit_secret: bytes | None = None
    path_secrets: dict[int, bytes] = {}
    tree = applied.tree
    exclude = [i for i, _ in applied.added]
    if use_path:
        created = create_update_path(tree, own, state.signature_private, provisional, exclude)
        tree, update_path, commit_secret = created.tree, created.update_path, created.commit_secret
        node_keys.update(created.private_keys)
        node_keys[tree_math.leaf_to_node(own)] = created.leaf_private
        path_secrets = dict(created.path_secrets)
    content = FramedContent(
        state.group_id,
        state.epoch,
        Sender(SenderType.MEMBER, own),
        authenticated_data,
        Commit(tuple(refs), update_path),
    )
    wire_format, signature = sign(state, content, private)
    confirmed = confirmed_hash(
        suite, state.interim_transcript_hash, wire_format, content, signature
    )
    context = replace(provisional, tree_hash=tree.tree_hash(), confirmed_transcript_hash=confirmed)
    secrets = key_schedule.next_epoch(
        suite, state.init_secret, commit_secret, applied.psk_secret, context.encode()
    )
    tag = key_schedule.confirmation_tag(suite, secrets.confirmation_key, confirmed)
    current, message = send(state, content, signature, private, tag)
    new_state = epoch_state(
        context=context,
        tree=tree,
        own_leaf=own,
        signature_private=state.signature_private,
        node_keys=node_keys,
        secrets=secrets,
        confirmation_tag=tag,
        resumption_psks={**state.resumption_psks, state.epoch: state.resumption_psk},
        reinit=applied.reinit,
    )
    welcome = None
    if applied.added:
        info = sign_group_info(suite, context, tree, tag, own, state.signature_private, None)
        fdp = [p for p, _ in filtered_direct_path(tree, own)] if use_path else []
        welcome = MLSMessage(
            _welcome(
                suite,
                info,
                secrets,
                applied.psk_secret,
                applied.added,
                path_secrets,
                fdp,
                applied.psk_ids,
            )
        ).encode()
    output = CommitApplied(
        context.epoch,
        own,
        tuple(i for i, _ in applied.added),
        applied.removed,
        applied.updated,
        applied.reinit,
    )
    return CommitResult(new_state, message, welcome, output, current)
