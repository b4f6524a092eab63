"""A GroupSession as bytes, for the vault: versioned, every field explicit.

The session must survive a restart at any point, a Commit in flight included
(the relay may accept it while we are down, and its answer or our Commit in a
fetch then finds the pending state). Events of a pending Commit are not stored:
they are derived again from the two states. The bytes hold private keys (the
MLS state's); the caller keeps them encrypted, as the vault does.

    struct {
        uint16 version = 3;            // 1, 2: below
        opaque tree_digest<V>;         // SHA-256 of the StoredTree of `mls`
        opaque mls<V>;                 // GroupState.encode_apart()
        uint64 epoch; uint64 relay_epoch;
        uint8 leaving; uint8 removed;
        opaque blocked<V>;             // usernames
        opaque early<V>;               // held messages
        Intent intents<V>; Intent lost<V>;
        optional<Pending> pending;
        optional<opaque previous<V>>;  // the previous epoch's state,
                                       // GroupState.encode_beside(mls)
    } StoredSession;

    struct { uint16 version = 1; opaque tree<V>; } StoredTree;   // RatchetTree.encode()

    struct {
        uint64 epoch;
        opaque state<V>;               // GroupState.encode_beside(mls)
        opaque message<V>; optional<opaque welcome<V>>;
        uint64 applied_epoch; uint32 committer;
        uint32 added<V>; uint32 removed<V>; uint32 updated<V>;
        Intent intents<V>;
    } Pending;

The tree is a record of its own because it is most of a session (about 2 MB at
1,000 members) and a message does not change it: sending or receiving one
rewrites the StoredSession only, whatever the group's size. The digest ties the
two records together, so a tree from another write is refused rather than used.
Versions 1 and 2 (still read) held the tree inside `mls` (GroupState.encode())
and the pending state whole (GroupState.encode()); version 1 had no `previous`.

    Intent: uint8 kind, then for add: (opaque user<V>, KeyPackage)<V>; for
    remove, rename, topic, admin: opaque text<V>; for commit-proposals: nothing.

This device's part (`Device`) and each key package it published with its
private keys are stored alike, so that a Welcome that arrives after a restart
still finds the key package it was made for:

    struct { uint16 version = 1; opaque username<V>; opaque device<V>;
             uint16 suite; opaque signature_private<V>; Credential credential; } StoredDevice;
    struct { uint16 version = 1; KeyPackage key_package;
             opaque init<V>; opaque encryption<V>; opaque signature<V>; } StoredKeyPackage;
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from securechat.crypto.mls import group as g
from securechat.crypto.mls.codec import (
    Reader,
    opaque,
    optional,
    uint8,
    uint16,
    uint32,
    uint64,
    vector,
)
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import Credential, KeyPackage
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.suite import CipherSuite
from securechat.groups.device import Device
from securechat.groups.errors import GroupError, InvalidGroupData
from securechat.groups.outputs import (
    AddMembers,
    CommitProposals,
    Intent,
    MakeAdmin,
    RemoveMember,
    Rename,
    SetTopic,
)
from securechat.groups.session import GroupSession, PendingCommit, commit_events

STORED_VERSION = 1
"""Of devices, key packages and trees."""
SESSION_VERSION = 3
"""Version 3 stores the tree apart; versions 1 and 2 load (2 added the previous epoch)."""
TreeOf = Callable[[bytes, CipherSuite], RatchetTree]
"""Given a StoredSession's tree digest and suite, the tree (from a StoredTree
whose digest the caller checked, or one it kept in memory)."""
_TEXT_INTENTS: dict[int, type[RemoveMember | Rename | SetTopic | MakeAdmin]] = {
    2: RemoveMember,
    3: Rename,
    4: SetTopic,
    5: MakeAdmin,
}
_ADD, _COMMIT_PROPOSALS = 1, 6


def _text(intent: RemoveMember | Rename | SetTopic | MakeAdmin) -> str:
    if isinstance(intent, Rename):
        return intent.name
    if isinstance(intent, SetTopic):
        return intent.topic
    return intent.user


def _encode_intent(intent: Intent) -> bytes:
    if isinstance(intent, AddMembers):
        return uint8(_ADD) + vector(
            opaque(user.encode()) + package.encode() for user, package in intent.key_packages
        )
    if isinstance(intent, CommitProposals):
        return uint8(_COMMIT_PROPOSALS)
    kind = next(k for k, cls in _TEXT_INTENTS.items() if isinstance(intent, cls))
    return uint8(kind) + opaque(_text(intent).encode())


def _read_intent(r: Reader) -> Intent:
    kind = r.uint8()
    if kind == _ADD:
        return AddMembers(tuple(r.vector(lambda i: (i.opaque().decode(), KeyPackage.read(i)))))
    if kind == _COMMIT_PROPOSALS:
        return CommitProposals()
    cls = _TEXT_INTENTS.get(kind)
    if cls is None:
        raise InvalidGroupData(f"Stored intent kind {kind} is not one we know.")
    return cls(r.opaque().decode())


def _u32s(values: tuple[int, ...]) -> bytes:
    return vector(uint32(v) for v in values)


def _encode_pending(pending: PendingCommit, before: GroupState) -> bytes:
    result, applied = pending.result, pending.result.output
    return b"".join(
        (
            uint64(pending.epoch),
            opaque(result.state.encode_beside(before)),
            opaque(result.message),
            optional(None if result.welcome is None else opaque(result.welcome)),
            uint64(applied.epoch),
            uint32(applied.committer),
            _u32s(applied.added),
            _u32s(applied.removed),
            _u32s(applied.updated),
            vector(_encode_intent(i) for i in pending.intents),
        )
    )


def _read_pending(r: Reader, before: GroupState, version: int) -> PendingCommit:
    """`before` is the session's state: the one the Commit was sent from, as it is
    after sending (`CommitResult.current`)."""
    epoch = r.uint64()
    data = r.opaque()
    state = GroupState.decode(data) if version < 3 else GroupState.decode_beside(data, before)
    message = r.opaque()
    welcome = r.optional(Reader.opaque)
    applied = g.CommitApplied(
        r.uint64(),
        r.uint32(),
        tuple(r.vector(Reader.uint32)),
        tuple(r.vector(Reader.uint32)),
        tuple(r.vector(Reader.uint32)),
    )
    intents = tuple(r.vector(_read_intent))
    result = g.CommitResult(state, message, welcome, applied, before)
    return PendingCommit(epoch, result, intents, commit_events(before, state, applied))


@dataclass(frozen=True)
class StoredTree:
    """A StoredTree record and its digest, which the StoredSession names."""

    data: bytes
    digest: bytes

    @classmethod
    def of(cls, tree: RatchetTree) -> StoredTree:
        data = uint16(STORED_VERSION) + opaque(tree.encode())
        return cls(data, hashlib.sha256(data).digest())


def decode_tree(data: bytes, digest: bytes, suite: CipherSuite) -> RatchetTree:
    """The tree of a StoredTree record, if it is the one `digest` names; else InvalidGroupData."""
    if hashlib.sha256(data).digest() != digest:
        raise InvalidGroupData("The stored group's tree is not the one its session was saved with.")
    r = Reader(data)
    try:
        _version(r)
        tree = RatchetTree.decode(suite, r.opaque())
        r.finish()
    except (MLSError, ValueError) as exc:
        raise InvalidGroupData(f"The stored group's tree does not decode: {exc}") from None
    return tree


def tree_digest_of(record: bytes) -> bytes | None:
    """The tree digest a StoredSession names; None for versions 1 and 2 or bytes
    that are not a StoredSession."""
    r = Reader(record)
    try:
        return r.opaque() if r.uint16() == SESSION_VERSION else None
    except MLSError:
        return None


def encode_session(session: GroupSession, tree_digest: bytes) -> bytes:
    """The StoredSession; `tree_digest` is that of `StoredTree.of(session.mls.tree)`."""
    return b"".join(
        (
            uint16(SESSION_VERSION),
            opaque(tree_digest),
            opaque(session.mls.encode_apart()),
            uint64(session.epoch),
            uint64(session.relay_epoch),
            uint8(session.leaving),
            uint8(session.removed),
            vector(opaque(u.encode()) for u in sorted(session.blocked)),
            vector(opaque(m) for m in session.early),
            vector(_encode_intent(i) for i in session.intents),
            vector(_encode_intent(i) for i in session.lost),
            optional(
                None if session.pending is None else _encode_pending(session.pending, session.mls)
            ),
            optional(
                None
                if session.previous is None
                else opaque(session.previous.encode_beside(session.mls))
            ),
        )
    )


def decode_session(data: bytes, tree_of: TreeOf) -> GroupSession:
    """Any corruption or unknown version is InvalidGroupData. `tree_of` is asked for
    the tree only by a version 3 record (earlier ones hold theirs)."""
    r = Reader(data)
    try:
        version = r.uint16()
        if version not in (1, 2, SESSION_VERSION):
            raise InvalidGroupData(f"Stored group version {version} is not one this build reads.")
        if version < 3:
            mls = GroupState.decode(r.opaque())
        else:
            digest = r.opaque()
            mls = GroupState.decode_apart(r.opaque(), lambda suite: tree_of(digest, suite))
        epoch, relay_epoch = r.uint64(), r.uint64()
        leaving, removed = r.boolean(), r.boolean()
        blocked = frozenset(u.decode() for u in r.vector(Reader.opaque))
        early = tuple(r.vector(Reader.opaque))
        intents = tuple(r.vector(_read_intent))
        lost = tuple(r.vector(_read_intent))
        pending = r.optional(lambda i: _read_pending(i, mls, version))
        previous = (
            r.optional(lambda i: GroupState.decode_beside(i.opaque(), mls)) if version > 1 else None
        )
        r.finish()
    except InvalidGroupData:
        raise
    except (MLSError, GroupError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidGroupData(f"The stored group does not decode: {exc}") from None
    return GroupSession(
        mls,
        epoch,
        pending=pending,
        intents=intents,
        blocked=blocked,
        leaving=leaving,
        removed=removed,
        lost=lost,
        early=early,
        relay_epoch=relay_epoch,
        previous=previous,
    )


def encode_device(device: Device) -> bytes:
    return b"".join(
        (
            uint16(STORED_VERSION),
            opaque(device.username.encode()),
            opaque(device.device.encode()),
            uint16(device.suite_id),
            opaque(device.signature_private),
            device.credential.encode(),
        )
    )


def decode_device(data: bytes) -> Device:
    """Any corruption or unknown version is InvalidGroupData."""
    r = Reader(data)
    try:
        _version(r)
        username, device = r.opaque().decode(), r.opaque().decode()
        suite_id, signature_private = r.uint16(), r.opaque()
        credential = Credential.read(r)
        r.finish()
    except (MLSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidGroupData(f"The stored group device does not decode: {exc}") from None
    return Device(username, device, suite_id, signature_private, credential)


def encode_key_package(key_package: KeyPackage, private: g.KeyPackagePrivate) -> bytes:
    return b"".join(
        (
            uint16(STORED_VERSION),
            key_package.encode(),
            opaque(private.init_private),
            opaque(private.encryption_private),
            opaque(private.signature_private),
        )
    )


def decode_key_package(data: bytes) -> tuple[KeyPackage, g.KeyPackagePrivate]:
    """Any corruption or unknown version is InvalidGroupData."""
    r = Reader(data)
    try:
        _version(r)
        key_package = KeyPackage.read(r)
        private = g.KeyPackagePrivate(r.opaque(), r.opaque(), r.opaque())
        r.finish()
    except (MLSError, ValueError) as exc:
        raise InvalidGroupData(f"The stored key package does not decode: {exc}") from None
    return key_package, private


def _version(r: Reader) -> None:
    version = r.uint16()
    if version != STORED_VERSION:
        raise InvalidGroupData(f"Stored group version {version} is not one this build reads.")
