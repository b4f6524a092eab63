"""Message protection (RFC 9420 §6): signing and MACing PublicMessages, encrypting
PrivateMessages under the secret tree and the sender-data key.

Pure functions over immutable state: `protect_private` and `unprotect_private`
return the secret tree to keep, and a failure returns nothing, so a forged or
replayed message cannot consume a key or advance a ratchet. The confirmation
tag of a Commit is carried here but checked by whoever derives the next epoch's
confirmation_key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from securechat.crypto.mls import labels
from securechat.crypto.mls.codec import Reader, opaque, uint8, uint32, uint64
from securechat.crypto.mls.errors import DecodeError, InvalidMessage, WrongEpoch, WrongGroup
from securechat.crypto.mls.framing import (
    AuthenticatedContent,
    Content,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderType,
    WireFormat,
    encode_content,
    read_content,
)
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.secret_tree import RatchetType, SecretTree
from securechat.crypto.mls.suite import CipherSuite, random_bytes

REUSE_GUARD_SIZE = 4


def sender_data_key_nonce(
    suite: CipherSuite, sender_data_secret: bytes, ciphertext: bytes
) -> tuple[bytes, bytes]:
    """The key and nonce hiding a PrivateMessage's sender (§6.3.2), bound to its ciphertext."""
    sample = ciphertext[: suite.nh]
    return (
        labels.expand_with_label(suite, sender_data_secret, b"key", sample, suite.aead.nk),
        labels.expand_with_label(suite, sender_data_secret, b"nonce", sample, suite.aead.nn),
    )


def sign_content(
    suite: CipherSuite,
    content: FramedContent,
    wire_format: WireFormat,
    signature_private: bytes,
    context: GroupContext,
) -> bytes:
    """The FramedContentTBS signature alone: a committer needs it before its
    confirmation tag exists, since the tag covers the transcript that covers it."""
    tbs = content.tbs(wire_format, context)
    return labels.sign_with_label(suite, signature_private, b"FramedContentTBS", tbs)


def _sign(
    suite: CipherSuite,
    content: FramedContent,
    wire_format: WireFormat,
    signature_private: bytes,
    context: GroupContext,
    confirmation_tag: bytes | None,
    signature: bytes | None,
) -> FramedContentAuthData:
    if (content.content_type == ContentType.COMMIT) != (confirmation_tag is not None):
        raise ValueError("a Commit, and only a Commit, carries a confirmation tag")
    if signature is None:
        signature = sign_content(suite, content, wire_format, signature_private, context)
    return FramedContentAuthData(signature, confirmation_tag)


def _verify(
    suite: CipherSuite,
    authenticated: AuthenticatedContent,
    signature_public: bytes,
    context: GroupContext,
) -> None:
    tbs = authenticated.content.tbs(authenticated.wire_format, context)
    labels.verify_with_label(
        suite, signature_public, b"FramedContentTBS", tbs, authenticated.auth.signature
    )


def check_epoch(group_id: bytes, epoch: int, context: GroupContext) -> None:
    if group_id != context.group_id:
        raise WrongGroup("The message belongs to another group.")
    if epoch != context.epoch:
        raise WrongEpoch(f"The message is for epoch {epoch}, not {context.epoch}.")


def _membership_tbm(content_tbs: bytes, auth: FramedContentAuthData) -> bytes:
    return content_tbs + auth.encode()


def protect_public(
    suite: CipherSuite,
    content: FramedContent,
    signature_private: bytes,
    context: GroupContext,
    membership_key: bytes,
    confirmation_tag: bytes | None = None,
    *,
    signature: bytes | None = None,
) -> PublicMessage:
    """Sign and, for a member, MAC `content`; application data is never sent in clear."""
    if content.content_type == ContentType.APPLICATION:
        raise InvalidMessage("Application data must be sent as a PrivateMessage.")
    check_epoch(content.group_id, content.epoch, context)
    auth = _sign(
        suite,
        content,
        WireFormat.PUBLIC_MESSAGE,
        signature_private,
        context,
        confirmation_tag,
        signature,
    )
    tag = None
    if content.sender.sender_type == SenderType.MEMBER:
        tbs = content.tbs(WireFormat.PUBLIC_MESSAGE, context)
        tag = suite.kdf.mac(membership_key, _membership_tbm(tbs, auth))
    return PublicMessage(content, auth, tag)


def unprotect_public(
    suite: CipherSuite,
    message: PublicMessage,
    signature_public: bytes,
    context: GroupContext,
    membership_key: bytes,
) -> AuthenticatedContent:
    """Check the membership tag and signature of a PublicMessage of this epoch."""
    content = message.content
    if content.content_type == ContentType.APPLICATION:
        raise InvalidMessage("Application data may not arrive as a PublicMessage.")
    check_epoch(content.group_id, content.epoch, context)
    authenticated = AuthenticatedContent(WireFormat.PUBLIC_MESSAGE, content, message.auth)
    if content.sender.sender_type == SenderType.MEMBER:
        if message.membership_tag is None:
            raise InvalidMessage("A member's PublicMessage lacks its membership tag.")
        tbs = content.tbs(WireFormat.PUBLIC_MESSAGE, context)
        suite.kdf.verify_mac(
            membership_key, _membership_tbm(tbs, message.auth), message.membership_tag
        )
    _verify(suite, authenticated, signature_public, context)
    return authenticated


def _ratchet_type(content_type: ContentType) -> RatchetType:
    if content_type == ContentType.APPLICATION:
        return RatchetType.APPLICATION
    return RatchetType.HANDSHAKE


def _content_aad(
    group_id: bytes, epoch: int, content_type: ContentType, authenticated_data: bytes
) -> bytes:
    return opaque(group_id) + uint64(epoch) + uint8(content_type) + opaque(authenticated_data)


def _sender_data_aad(group_id: bytes, epoch: int, content_type: ContentType) -> bytes:
    return opaque(group_id) + uint64(epoch) + uint8(content_type)


def _guarded(nonce: bytes, reuse_guard: bytes) -> bytes:
    head = bytes(a ^ b for a, b in zip(nonce[:REUSE_GUARD_SIZE], reuse_guard, strict=True))
    return head + nonce[REUSE_GUARD_SIZE:]


def protect_private(
    suite: CipherSuite,
    content: FramedContent,
    signature_private: bytes,
    context: GroupContext,
    tree: SecretTree,
    sender_data_secret: bytes,
    *,
    confirmation_tag: bytes | None = None,
    padding: int = 0,
    reuse_guard: bytes | None = None,
    signature: bytes | None = None,
) -> tuple[SecretTree, PrivateMessage]:
    """Encrypt a member's content with its next ratchet key; returns the tree to keep."""
    if content.sender.sender_type != SenderType.MEMBER:
        raise InvalidMessage("Only members send PrivateMessages.")
    check_epoch(content.group_id, content.epoch, context)
    guard = random_bytes(REUSE_GUARD_SIZE) if reuse_guard is None else reuse_guard
    if len(guard) != REUSE_GUARD_SIZE:
        raise ValueError("the reuse guard has four bytes")
    auth = _sign(
        suite,
        content,
        WireFormat.PRIVATE_MESSAGE,
        signature_private,
        context,
        confirmation_tag,
        signature,
    )
    leaf, kind = content.sender.index, content.content_type
    tree, key = tree.next_key(leaf, _ratchet_type(kind))
    plaintext = encode_private_content(content.content, auth, padding)
    aad = _content_aad(content.group_id, content.epoch, kind, content.authenticated_data)
    ciphertext = suite.aead.seal(key.key, _guarded(key.nonce, guard), aad, plaintext)
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, ciphertext)
    sender_data = uint32(leaf) + uint32(key.generation) + guard
    encrypted_sender_data = suite.aead.seal(
        sd_key, sd_nonce, _sender_data_aad(content.group_id, content.epoch, kind), sender_data
    )
    message = PrivateMessage(
        content.group_id,
        content.epoch,
        kind,
        content.authenticated_data,
        encrypted_sender_data,
        ciphertext,
    )
    return tree, message


@dataclass(frozen=True)
class _SenderData:
    leaf_index: int
    generation: int
    reuse_guard: bytes


def _read_sender_data(data: bytes) -> _SenderData:
    r = Reader(data)
    value = _SenderData(r.uint32(), r.uint32(), r.take(REUSE_GUARD_SIZE))
    r.finish()
    return value


def encode_private_content(content: Content, auth: FramedContentAuthData, padding: int) -> bytes:
    """PrivateMessageContent (§6.3.1): the content, its auth data, then zero padding."""
    return encode_content(content) + auth.encode() + bytes(padding)


def decode_private_content(
    plaintext: bytes, content_type: ContentType
) -> tuple[Content, FramedContentAuthData]:
    """Refuses non-zero padding, which could otherwise carry a covert channel."""
    r = Reader(plaintext)
    content = read_content(r, content_type)
    auth = FramedContentAuthData.read(r, content_type)
    if any(r.take(r.remaining)):
        raise DecodeError("PrivateMessageContent padding must be all zero bytes")
    return content, auth


def unprotect_private(
    suite: CipherSuite,
    message: PrivateMessage,
    context: GroupContext,
    tree: SecretTree,
    sender_data_secret: bytes,
    signature_keys: Mapping[int, bytes],
) -> tuple[SecretTree, AuthenticatedContent]:
    """Decrypt and verify a PrivateMessage of this epoch.

    `signature_keys` maps each non-blank leaf to its signature key. The returned tree
    has the used key deleted; on any failure the caller's tree is left as it was.
    """
    check_epoch(message.group_id, message.epoch, context)
    kind = message.content_type
    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, message.ciphertext)
    sender_data = _read_sender_data(
        suite.aead.open(
            sd_key,
            sd_nonce,
            _sender_data_aad(message.group_id, message.epoch, kind),
            message.encrypted_sender_data,
        )
    )
    signature_public = signature_keys.get(sender_data.leaf_index)
    if signature_public is None:
        raise InvalidMessage(f"Leaf {sender_data.leaf_index} is not a member of the group.")
    tree, key = tree.key_for(sender_data.leaf_index, _ratchet_type(kind), sender_data.generation)
    aad = _content_aad(message.group_id, message.epoch, kind, message.authenticated_data)
    plaintext = suite.aead.open(
        key.key, _guarded(key.nonce, sender_data.reuse_guard), aad, message.ciphertext
    )
    content, auth = decode_private_content(plaintext, kind)
    framed = FramedContent(
        message.group_id,
        message.epoch,
        Sender(SenderType.MEMBER, sender_data.leaf_index),
        message.authenticated_data,
        content,
    )
    authenticated = AuthenticatedContent(WireFormat.PRIVATE_MESSAGE, framed, auth)
    _verify(suite, authenticated, signature_public, context)
    return tree, authenticated
