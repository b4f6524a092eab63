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
    group_info / export_secret / epoch_authenticator
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from securechat.crypto.mls import hpke, key_schedule, labels, protection, psk, transcript, tree_math
from securechat.crypto.mls.codec import decode, opaque
from securechat.crypto.mls.errors import (
    InvalidLeafNode,
    InvalidMessage,
    InvalidProposalList,
    NotAMember,
)
from securechat.crypto.mls.framing import (
    AuthenticatedContent,
    Content,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderType,
    WireFormat,
)
from securechat.crypto.mls.group_context import MLS10, Extension, GroupContext
from securechat.crypto.mls.group_state import (
    RESUMPTION_PSKS_KEPT,
    CachedProposal,
    GroupState,
    Member,
    PendingUpdate,
)
from securechat.crypto.mls.leaf_node import (
    BASIC,
    Capabilities,
    Credential,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
)
from securechat.crypto.mls.proposals import (
    Add,
    Commit,
    ExternalInit,
    GroupContextExtensions,
    HPKECiphertext,
    PreSharedKey,
    Proposal,
    ProposalOrRef,
    ProposalRef,
    ProposalType,
    ReInit,
    Remove,
    Update,
    UpdatePath,
)
from securechat.crypto.mls.psk import PreSharedKeyID, PSKType
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.secret_tree import SecretTree
from securechat.crypto.mls.suite import DEFAULT_SUITE, CipherSuite, get_suite, random_bytes
from securechat.crypto.mls.treekem import (
    create_update_path,
    decrypt_update_path,
    filtered_direct_path,
    merge_update_path,
    next_path_secret,
    node_key_pair,
)
from securechat.crypto.mls.validation import (
    EXTERNAL_PUB,
    RATCHET_TREE,
    LeafIndex,
    Policy,
    check_supports,
    find_extension,
    validate_key_package,
    validate_leaf_node,
    validate_tree,
)
from securechat.crypto.mls.welcome import (
    EncryptedGroupSecrets,
    GroupInfo,
    GroupSecrets,
    Welcome,
    open_group_info,
    open_group_secrets,
)

__all__ = [
    "Add",
    "ApplicationMessage",
    "CommitApplied",
    "CommitResult",
    "ExternalInit",
    "GroupContextExtensions",
    "GroupState",
    "KeyPackage",
    "KeyPackagePrivate",
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

DEFAULT_LIFETIME = 90 * 24 * 3600
_EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"
_NO_PATH_NEEDED = {ProposalType.ADD, ProposalType.PSK, ProposalType.REINIT}

# --- outputs -----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ApplicationMessage:
    sender: int
    data: bytes
    authenticated_data: bytes


@dataclass(frozen=True)
class ProposalReceived:
    sender: int
    ref: bytes
    proposal_type: ProposalType


@dataclass(frozen=True)
class CommitApplied:
    """The epoch a Commit started and how the roster changed (leaf indices)."""

    epoch: int
    committer: int
    added: tuple[int, ...]
    removed: tuple[int, ...]
    updated: tuple[int, ...]
    reinit: ReInit | None = None

    @property
    def roster_changed(self) -> bool:
        return bool(self.added or self.removed or self.updated)


@dataclass(frozen=True)
class RemovedFromGroup:
    """A Commit removed us; the state returned with it is the last one we had."""

    epoch: int
    committer: int


Output = ApplicationMessage | ProposalReceived | CommitApplied | RemovedFromGroup


@dataclass(frozen=True, repr=False)
class KeyPackagePrivate:
    init_private: bytes
    encryption_private: bytes
    signature_private: bytes


@dataclass(frozen=True, repr=False)
class CommitResult:
    state: GroupState
    message: bytes
    welcome: bytes | None
    output: CommitApplied


# --- key packages and group creation ----------------------------------------


def default_capabilities(suite: CipherSuite) -> Capabilities:
    return Capabilities((MLS10,), (suite.id,), (), (), (BASIC,))


def _sign_leaf(
    suite: CipherSuite, leaf: LeafNode, signature_private: bytes, group_id: bytes, index: int
) -> LeafNode:
    tbs = leaf.tbs(group_id, index)
    return replace(
        leaf, signature=labels.sign_with_label(suite, signature_private, b"LeafNodeTBS", tbs)
    )


def make_key_package(
    credential: Credential,
    signature_private: bytes,
    *,
    now: int,
    suite_id: int = DEFAULT_SUITE,
    lifetime: int = DEFAULT_LIFETIME,
    capabilities: Capabilities | None = None,
    leaf_extensions: tuple[Extension, ...] = (),
) -> tuple[KeyPackage, KeyPackagePrivate]:
    """A signed KeyPackage (§10) valid from an hour before `now` for `lifetime` seconds."""
    suite = get_suite(suite_id)
    init_private, init_public = hpke.generate_key_pair(suite.dh)
    enc_private, enc_public = hpke.generate_key_pair(suite.dh)
    leaf = LeafNode(
        enc_public,
        suite.signature.public_key(signature_private),
        credential,
        capabilities or default_capabilities(suite),
        LeafNodeSource.KEY_PACKAGE,
        (max(0, now - 3600), now + lifetime),
        b"",
        leaf_extensions,
        b"",
    )
    leaf = _sign_leaf(suite, leaf, signature_private, b"", 0)
    unsigned = KeyPackage(suite.id, init_public, leaf, (), b"")
    signature = labels.sign_with_label(suite, signature_private, b"KeyPackageTBS", unsigned.tbs())
    return replace(unsigned, signature=signature), KeyPackagePrivate(
        init_private, enc_private, signature_private
    )


def _epoch_state(
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
        node_keys=MappingProxyType(_live_keys(tree, node_keys)),
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


def _live_keys(tree: RatchetTree, keys: dict[int, bytes]) -> dict[int, bytes]:
    """Drop private keys whose node was blanked or replaced (§7.5 deletion)."""
    suite = tree.suite
    out = {}
    for x, private in keys.items():
        node = tree.nodes[x] if x < len(tree.nodes) else None
        if node is not None and node.encryption_key == suite.dh.public_key(private):
            out[x] = private
    return out


def create_group(
    credential: Credential,
    signature_private: bytes,
    *,
    now: int,
    suite_id: int = DEFAULT_SUITE,
    group_id: bytes | None = None,
    extensions: tuple[Extension, ...] = (),
    capabilities: Capabilities | None = None,
) -> GroupState:
    """A one-member group at epoch 0 (§11), by default on the X-Wing hybrid suite.
    The epoch secret comes from a fresh random joiner secret, which is as random as
    the fresh epoch secret §11 asks for."""
    suite = get_suite(suite_id)
    key_package, private = make_key_package(
        credential, signature_private, now=now, suite_id=suite_id, capabilities=capabilities
    )
    tree = RatchetTree(suite, (key_package.leaf_node,))
    context = GroupContext(
        suite.id, group_id or random_bytes(suite.nh), 0, tree.tree_hash(), b"", extensions
    )
    secrets = key_schedule.from_joiner(suite, random_bytes(suite.nh), None, context.encode())
    tag = key_schedule.confirmation_tag(suite, secrets.confirmation_key, b"")
    return _epoch_state(
        context=context,
        tree=tree,
        own_leaf=0,
        signature_private=signature_private,
        node_keys={0: private.encryption_private},
        secrets=secrets,
        confirmation_tag=tag,
        resumption_psks={},
    )


# --- proposals ---------------------------------------------------------------


def _check_active(state: GroupState) -> None:
    if state.reinit is not None:
        raise InvalidMessage("The group was reinitialised; it takes no new messages.")


def _proposal_ref(suite: CipherSuite, authenticated: AuthenticatedContent) -> bytes:
    return labels.ref_hash(suite, b"MLS 1.0 Proposal Reference", authenticated.encode())


def _sign(state: GroupState, content: FramedContent, private: bool) -> tuple[WireFormat, bytes]:
    wire_format = WireFormat.PRIVATE_MESSAGE if private else WireFormat.PUBLIC_MESSAGE
    signature = protection.sign_content(
        state.suite, content, wire_format, state.signature_private, state.context
    )
    return wire_format, signature


def _send(
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


def _own_content(state: GroupState, authenticated_data: bytes, body: Content) -> FramedContent:
    """Content this member sends in the current epoch (a proposal or application data)."""
    return FramedContent(
        state.group_id,
        state.epoch,
        Sender(SenderType.MEMBER, state.own_leaf),
        authenticated_data,
        body,
    )


def _propose(
    state: GroupState, proposal: Proposal, private: bool, authenticated_data: bytes
) -> tuple[GroupState, bytes, bytes]:
    _check_active(state)
    content = _own_content(state, authenticated_data, proposal)
    wire_format, signature = _sign(state, content, private)
    authenticated = AuthenticatedContent(wire_format, content, FramedContentAuthData(signature))
    ref = _proposal_ref(state.suite, authenticated)
    state, message = _send(state, content, signature, private)
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
    leaf = _sign_leaf(suite, leaf, state.signature_private, state.group_id, state.own_leaf)
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


# --- proposal lists (§12.2, §12.3) --------------------------------------------


@dataclass(frozen=True, repr=False)
class _Applied:
    tree: RatchetTree
    extensions: tuple[Extension, ...]
    added: tuple[tuple[int, KeyPackage], ...]
    removed: tuple[int, ...]
    updated: tuple[int, ...]
    psk_ids: tuple[PreSharedKeyID, ...]
    psk_secret: bytes | None
    external_init: ExternalInit | None
    reinit: ReInit | None
    path_required: bool


def _psk_value(state: GroupState, psk_id: PreSharedKeyID, policy: Policy) -> bytes:
    if psk_id.psktype == PSKType.EXTERNAL:
        value = policy.external_psks.get(psk_id.psk_id)
    elif psk_id.psk_group_id != state.group_id:
        value = None
    elif psk_id.psk_epoch == state.epoch:
        value = state.resumption_psk
    else:
        value = state.resumption_psks.get(psk_id.psk_epoch)
    if value is None:
        raise InvalidProposalList("A PreSharedKey proposal names a PSK we do not hold.")
    return value


def _check_list(
    items: Sequence[tuple[Proposal, int | None]], committer: int | None, tree: RatchetTree
) -> None:
    """The structural rules of §12.2; `committer` None means an external Commit."""
    kinds = [p.proposal_type for p, _ in items]
    if committer is None:
        if kinds.count(ProposalType.EXTERNAL_INIT) != 1:
            raise InvalidProposalList("An external Commit needs exactly one ExternalInit.")
        if kinds.count(ProposalType.REMOVE) > 1:
            raise InvalidProposalList("An external Commit removes at most one leaf.")
        allowed = {ProposalType.EXTERNAL_INIT, ProposalType.REMOVE, ProposalType.PSK}
        if any(k not in allowed for k in kinds):
            raise InvalidProposalList("An external Commit carries only ExternalInit, Remove, PSK.")
    elif ProposalType.EXTERNAL_INIT in kinds:
        raise InvalidProposalList("Only an external Commit carries an ExternalInit.")
    if ProposalType.REINIT in kinds and len(kinds) > 1:
        raise InvalidProposalList("A ReInit must be the only proposal of its Commit.")
    if kinds.count(ProposalType.GROUP_CONTEXT_EXTENSIONS) > 1:
        raise InvalidProposalList("At most one GroupContextExtensions per Commit.")
    touched: set[int] = set()
    psk_ids: set[bytes] = set()
    for proposal, sender in items:
        if isinstance(proposal, Update):
            if sender is None or sender == committer:
                raise InvalidProposalList("A Commit may not carry the committer's own Update.")
            target = sender
        elif isinstance(proposal, Remove):
            if proposal.removed == committer:
                raise InvalidProposalList("A Commit may not remove the committer.")
            target = proposal.removed
            if target >= tree.n_leaves or tree.leaf(target) is None:
                raise InvalidProposalList(f"Remove names leaf {target}, which is blank.")
        elif isinstance(proposal, PreSharedKey):
            encoded = proposal.psk.encode()
            if encoded in psk_ids:
                raise InvalidProposalList("Two PreSharedKey proposals name the same PSK.")
            psk_ids.add(encoded)
            continue
        else:
            continue
        if target in touched:
            raise InvalidProposalList(f"Two Update/Remove proposals apply to leaf {target}.")
        touched.add(target)


def _provisional_context(state: GroupState, applied: _Applied) -> GroupContext:
    """The next epoch's context before its tree hash is known (§12.4.2, step "provisional")."""
    return GroupContext(
        state.suite.id,
        state.group_id,
        state.epoch + 1,
        b"",
        state.context.confirmed_transcript_hash,
        applied.extensions,
    )


def _apply(
    state: GroupState,
    items: Sequence[tuple[Proposal, int | None]],
    committer: int | None,
    policy: Policy,
) -> _Applied:
    """Validate, then apply in the order of §12.3, checking each new leaf (§7.3, §10.1)."""
    _check_list(items, committer, state.tree)
    suite, tree = state.suite, state.tree
    extensions = state.context.extensions
    for proposal, _ in items:
        if isinstance(proposal, GroupContextExtensions):
            extensions = proposal.extensions
            for member in state.roster:
                leaf = tree.leaf(member.leaf_index)
                assert leaf is not None
                try:
                    check_supports(leaf, suite, extensions)
                except InvalidLeafNode as exc:
                    raise InvalidProposalList(
                        f"Leaf {member.leaf_index} cannot meet the new extensions: {exc}"
                    ) from None
    updated, removed = [], []
    for proposal, sender in items:
        if isinstance(proposal, Update) and sender is not None:
            validate_leaf_node(
                suite,
                proposal.leaf_node,
                tree=tree,
                extensions=extensions,
                group_id=state.group_id,
                leaf_index=sender,
                source=LeafNodeSource.UPDATE,
                policy=policy,
                replacing=sender,
            )
            tree = tree.update_leaf(sender, proposal.leaf_node)
            updated.append(sender)
    for proposal, _ in items:
        if isinstance(proposal, Remove):
            tree = tree.remove_leaf(proposal.removed)
            removed.append(proposal.removed)
    added = []
    adds = [proposal for proposal, _ in items if isinstance(proposal, Add)]
    # The index is a pass over every member: only a Commit that adds pays for it here.
    known = LeafIndex.of(tree) if adds else None
    for add in adds:
        assert known is not None
        validate_key_package(
            suite, add.key_package, tree=tree, extensions=extensions, policy=policy, known=known
        )
        tree, index = tree.add_leaf(add.key_package.leaf_node)
        known.add(add.key_package.leaf_node, index)
        added.append((index, add.key_package))
    psk_ids = tuple(p.psk for p, _ in items if isinstance(p, PreSharedKey))
    psk_secret = None
    if psk_ids:
        values = [_psk_value(state, i, policy) for i in psk_ids]
        psk_secret = psk.psk_secret(suite, list(zip(psk_ids, values, strict=True)))
    kinds = {p.proposal_type for p, _ in items}
    return _Applied(
        tree,
        extensions,
        tuple(added),
        tuple(removed),
        tuple(updated),
        psk_ids,
        psk_secret,
        next((p for p, _ in items if isinstance(p, ExternalInit)), None),
        next((p for p, _ in items if isinstance(p, ReInit)), None),
        not items or committer is None or not kinds <= _NO_PATH_NEEDED,
    )


# --- commits -------------------------------------------------------------------


def _confirmed_hash(
    suite: CipherSuite, interim: bytes, wire_format: WireFormat, content: FramedContent, sig: bytes
) -> bytes:
    authenticated = AuthenticatedContent(wire_format, content, FramedContentAuthData(sig, b""))
    return transcript.update(suite, interim, authenticated).confirmed


def _group_info(
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
    info = _group_info(
        state.suite,
        state.context,
        state.tree,
        state.confirmation_tag,
        state.own_leaf,
        state.signature_private,
        state.external_secret,
    )
    return MLSMessage(info).encode()


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
        common = next((p for p in path if x in _subtree(p)), None)
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


def _subtree(x: int) -> range:
    span = (1 << tree_math.level(x)) - 1
    return range(x - span, x + span + 1)


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
    _check_active(state)
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
    applied = _apply(state, items, own, policy)
    use_path = path or applied.path_required
    provisional = _provisional_context(state, applied)
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
    wire_format, signature = _sign(state, content, private)
    confirmed = _confirmed_hash(
        suite, state.interim_transcript_hash, wire_format, content, signature
    )
    context = replace(provisional, tree_hash=tree.tree_hash(), confirmed_transcript_hash=confirmed)
    secrets = key_schedule.next_epoch(
        suite, state.init_secret, commit_secret, applied.psk_secret, context.encode()
    )
    tag = key_schedule.confirmation_tag(suite, secrets.confirmation_key, confirmed)
    _, message = _send(state, content, signature, private, tag)
    new_state = _epoch_state(
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
        info = _group_info(suite, context, tree, tag, own, state.signature_private, None)
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
    return CommitResult(new_state, message, welcome, output)


# --- processing -----------------------------------------------------------------


class _SignatureKeys(Mapping[int, bytes]):
    """Leaf index -> signature key, looked up in the tree only for the sender named,
    so decrypting a message does not cost a pass over every member."""

    def __init__(self, tree: RatchetTree) -> None:
        self._tree = tree

    def __getitem__(self, leaf_index: int) -> bytes:
        leaf = self._tree.leaf(leaf_index) if 0 <= leaf_index < self._tree.n_leaves else None
        if leaf is None:
            raise KeyError(leaf_index)
        return leaf.signature_key

    def __iter__(self) -> Iterator[int]:
        return (i for i in range(self._tree.n_leaves) if self._tree.leaf(i) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _authenticate(
    state: GroupState, message: PublicMessage | PrivateMessage
) -> tuple[GroupState, AuthenticatedContent]:
    suite = state.suite
    if isinstance(message, PrivateMessage):
        tree, authenticated = protection.unprotect_private(
            suite,
            message,
            state.context,
            state.secret_tree,
            state.sender_data_secret,
            _SignatureKeys(state.tree),
        )
        return replace(state, secret_tree=tree), authenticated
    content = message.content
    protection.check_epoch(content.group_id, content.epoch, state.context)
    sender = content.sender
    if sender.sender_type == SenderType.MEMBER:
        leaf = state.tree.leaf(sender.index) if sender.index < state.tree.n_leaves else None
        if leaf is None:
            raise InvalidMessage(f"Leaf {sender.index} is not a member of the group.")
        key = leaf.signature_key
    elif sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
        commit_content = content.content
        if not isinstance(commit_content, Commit) or commit_content.path is None:
            raise InvalidMessage("An external Commit must carry a path.")
        key = commit_content.path.leaf_node.signature_key
    else:
        raise InvalidMessage("Proposals from external senders are not supported.")
    authenticated = protection.unprotect_public(
        suite, message, key, state.context, state.membership_key
    )
    return state, authenticated


def process(state: GroupState, data: bytes, policy: Policy) -> tuple[GroupState, Output]:
    """Process one MLSMessage (PublicMessage or PrivateMessage) of this group.

    Returns the state to keep and what happened; raises an MLSError (and the
    caller's state stays valid) when the message is malformed, forged, replayed,
    for another epoch, or breaks a rule of the protocol.
    """
    envelope = MLSMessage.decode(data)
    message = envelope.message
    if not isinstance(message, PublicMessage | PrivateMessage):
        raise InvalidMessage(f"A {envelope.wire_format.name} is not processed by a group.")
    state, authenticated = _authenticate(state, message)
    content = authenticated.content
    if content.sender.sender_type == SenderType.MEMBER and content.sender.index == state.own_leaf:
        raise InvalidMessage("The message is our own; adopt the state that sending returned.")
    body = content.content
    if isinstance(body, bytes):
        return state, ApplicationMessage(content.sender.index, body, content.authenticated_data)
    if isinstance(body, Commit):
        return _process_commit(state, authenticated, body, policy)
    _check_active(state)
    if isinstance(body, ExternalInit):
        raise InvalidMessage("An ExternalInit is never sent as a proposal of its own.")
    ref = _proposal_ref(state.suite, authenticated)
    cached = CachedProposal(ref, content.sender, body)
    state = replace(state, proposals=(*state.proposals, cached))
    return state, ProposalReceived(content.sender.index, ref, body.proposal_type)


def _resolve(
    state: GroupState, body: Commit, committer: int | None
) -> list[tuple[Proposal, int | None]]:
    cache = {c.ref: c for c in state.proposals}
    items: list[tuple[Proposal, int | None]] = []
    for item in body.proposals:
        if isinstance(item, ProposalRef):
            cached = cache.get(item.reference)
            if cached is None:
                raise InvalidProposalList("The Commit names a proposal we never received.")
            items.append((cached.proposal, cached.sender.index))
        else:
            if isinstance(item, Update):
                raise InvalidProposalList("An Update may not be committed by value.")
            items.append((item, committer))
    return items


def _process_commit(
    state: GroupState, authenticated: AuthenticatedContent, body: Commit, policy: Policy
) -> tuple[GroupState, Output]:
    _check_active(state)
    suite = state.suite
    sender = authenticated.content.sender
    external = sender.sender_type == SenderType.NEW_MEMBER_COMMIT
    committer = None if external else sender.index
    items = _resolve(state, body, committer)
    applied = _apply(state, items, committer, policy)
    if applied.path_required and body.path is None:
        raise InvalidProposalList("This Commit's proposals require a path.")
    tree = applied.tree
    if external:
        assert body.path is not None
        tree, committer_index = tree.add_leaf(body.path.leaf_node)
    else:
        assert committer is not None
        committer_index = committer
    if state.own_leaf in applied.removed:
        return state, RemovedFromGroup(state.epoch + 1, committer_index)
    provisional = _provisional_context(state, applied)
    node_keys = dict(state.node_keys)
    own_update = next(
        (
            u
            for u in state.pending_updates
            if any(isinstance(i, ProposalRef) and i.reference == u.ref for i in body.proposals)
        ),
        None,
    )
    if own_update is not None:
        node_keys[tree_math.leaf_to_node(state.own_leaf)] = own_update.encryption_private
    commit_secret = None
    if body.path is not None:
        validate_leaf_node(
            suite,
            body.path.leaf_node,
            tree=tree if not external else _without_leaf(tree, committer_index),
            extensions=applied.extensions,
            group_id=state.group_id,
            leaf_index=committer_index,
            source=LeafNodeSource.COMMIT,
            policy=policy,
            replacing=committer_index,
        )
        merged = merge_update_path(tree, committer_index, body.path)
        context_for_path = replace(provisional, tree_hash=merged.tree_hash())
        result = decrypt_update_path(
            merged,
            committer_index,
            body.path,
            state.own_leaf,
            _live_keys(merged, node_keys),
            context_for_path,
            [i for i, _ in applied.added],
        )
        node_keys.update(result.private_keys)
        commit_secret = result.commit_secret
        tree = merged
    hashes = transcript.update(suite, state.interim_transcript_hash, authenticated)
    context = replace(
        provisional, tree_hash=tree.tree_hash(), confirmed_transcript_hash=hashes.confirmed
    )
    init_secret = state.init_secret
    if applied.external_init is not None:
        external_private, _ = key_schedule.external_key_pair(suite, state.external_secret)
        init_secret = hpke.receive_export(
            suite,
            external_private,
            applied.external_init.kem_output,
            b"",
            _EXTERNAL_INIT_LABEL,
            suite.nh,
        )
    secrets = key_schedule.next_epoch(
        suite, init_secret, commit_secret, applied.psk_secret, context.encode()
    )
    tag = authenticated.auth.confirmation_tag
    assert tag is not None
    suite.kdf.verify_mac(secrets.confirmation_key, hashes.confirmed, tag)
    new_state = _epoch_state(
        context=context,
        tree=tree,
        own_leaf=state.own_leaf,
        signature_private=state.signature_private,
        node_keys=node_keys,
        secrets=secrets,
        confirmation_tag=tag,
        resumption_psks={**state.resumption_psks, state.epoch: state.resumption_psk},
        reinit=applied.reinit,
    )
    added = tuple(i for i, _ in applied.added)
    if external:
        added = (*added, committer_index)
    output = CommitApplied(
        context.epoch, committer_index, added, applied.removed, applied.updated, applied.reinit
    )
    return new_state, output


def _without_leaf(tree: RatchetTree, leaf_index: int) -> RatchetTree:
    nodes = list(tree.nodes)
    nodes[tree_math.leaf_to_node(leaf_index)] = None
    return tree.derive(tuple(nodes))


# --- joining -----------------------------------------------------------------------


def _tree_from(suite: CipherSuite, info: GroupInfo, ratchet_tree: bytes | None) -> RatchetTree:
    data = (
        ratchet_tree if ratchet_tree is not None else find_extension(info.extensions, RATCHET_TREE)
    )
    if data is None:
        raise InvalidMessage("Neither the GroupInfo nor the caller supplied the ratchet tree.")
    return RatchetTree.decode(suite, data)


def _check_group_info(
    suite: CipherSuite, info: GroupInfo, tree: RatchetTree, policy: Policy
) -> None:
    context = info.group_context
    validate_tree(tree, context.group_id, context.tree_hash, policy, context.extensions)
    signer = tree.leaf(info.signer) if info.signer < tree.n_leaves else None
    if signer is None:
        raise InvalidMessage("The GroupInfo's signer is not a member.")
    info.verify(suite, signer.signature_key)


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
    tree = _tree_from(suite, info, ratchet_tree)
    _check_group_info(suite, info, tree, policy)
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
    return _epoch_state(
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
    start = next((k for k, p in enumerate(path) if own_node in _subtree(p)), None)
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
    tree = _tree_from(suite, info, ratchet_tree)
    _check_group_info(suite, info, tree, policy)
    external_pub_data = find_extension(info.extensions, EXTERNAL_PUB)
    if external_pub_data is None:
        raise InvalidMessage("The GroupInfo has no external_pub: external joins are closed.")
    external_pub = decode(external_pub_data, lambda r: r.opaque())
    kem_output, init_secret = hpke.send_export(
        suite, external_pub, b"", _EXTERNAL_INIT_LABEL, suite.nh
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
    confirmed = _confirmed_hash(suite, interim, WireFormat.PUBLIC_MESSAGE, content, signature)
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
    state = _epoch_state(
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


# --- application data and exports -----------------------------------------------------


def protect(
    state: GroupState, data: bytes, *, authenticated_data: bytes = b"", padding: int = 0
) -> tuple[GroupState, bytes]:
    """Encrypt application data as a PrivateMessage of this epoch."""
    _check_active(state)
    content = _own_content(state, authenticated_data, data)
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
