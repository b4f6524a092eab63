"""Message protection (RFC 9420 §6) against message-protection.json, and its refusals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from securechat.crypto.mls.codec import decode, opaque
from securechat.crypto.mls.errors import (
    DecodeError,
    GenerationUnavailable,
    InvalidMessage,
    InvalidMLSSignature,
    MLSAuthenticationFailed,
)
from securechat.crypto.mls.framing import (
    Content,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderType,
)
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.proposals import Commit, encode_proposal, read_proposal
from securechat.crypto.mls.protection import (
    decode_private_content,
    encode_private_content,
    protect_private,
    protect_public,
    unprotect_private,
    unprotect_public,
)
from securechat.crypto.mls.secret_tree import SecretTree
from securechat.crypto.mls.suite import CipherSuite
from tests.crypto.mls.vectors import by_suite

SENDER = Sender(SenderType.MEMBER, 1)


class Case:
    """One suite's vector with its fields decoded."""

    def __init__(self, suite: CipherSuite) -> None:
        [v] = by_suite("message-protection.json", suite.id)
        self.v: dict[str, Any] = v
        self.suite = suite
        self.context = GroupContext(
            suite.id,
            self.b("group_id"),
            v["epoch"],
            self.b("tree_hash"),
            self.b("confirmed_transcript_hash"),
        )

    def b(self, name: str) -> bytes:
        return bytes.fromhex(self.v[name])

    def tree(self) -> SecretTree:
        return SecretTree.create(self.suite, self.b("encryption_secret"), 2)

    def raw(self, kind: str) -> Content:
        data = self.b(kind)
        if kind == "proposal":
            return decode(data, read_proposal)
        if kind == "commit":
            return decode(data, Commit.read)
        return data

    def framed(self, kind: str) -> FramedContent:
        return FramedContent(self.context.group_id, self.context.epoch, SENDER, b"", self.raw(kind))

    def unprotect_private(self, message: PrivateMessage) -> Content:
        _, content = unprotect_private(
            self.suite,
            message,
            self.context,
            self.tree(),
            self.b("sender_data_secret"),
            {1: self.b("signature_pub")},
        )
        assert content.content.sender == SENDER
        return content.content.content


def _encode(content: Content) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, Commit):
        return content.encode()
    return encode_proposal(content)


@pytest.mark.parametrize("kind", ["proposal", "commit"])
def test_public_message_vectors(suite: CipherSuite, kind: str) -> None:
    """The vector's PublicMessage verifies and yields the raw value; ours verifies too."""
    case = Case(suite)
    message = MLSMessage.decode(case.b(f"{kind}_pub"))
    assert message.encode() == case.b(f"{kind}_pub")
    assert isinstance(message.message, PublicMessage)
    got = unprotect_public(
        suite, message.message, case.b("signature_pub"), case.context, case.b("membership_key")
    )
    assert _encode(got.content.content) == case.b(kind)
    tag = got.auth.confirmation_tag
    mine = protect_public(
        suite,
        case.framed(kind),
        case.b("signature_priv"),
        case.context,
        case.b("membership_key"),
        confirmation_tag=tag,
    )
    mine = decode(MLSMessage(mine).encode(), MLSMessage.read).message
    assert isinstance(mine, PublicMessage)
    again = unprotect_public(
        suite, mine, case.b("signature_pub"), case.context, case.b("membership_key")
    )
    assert _encode(again.content.content) == case.b(kind)


def test_application_data_is_never_a_public_message(suite: CipherSuite) -> None:
    case = Case(suite)
    with pytest.raises(InvalidMessage):
        protect_public(
            suite,
            case.framed("application"),
            case.b("signature_priv"),
            case.context,
            case.b("membership_key"),
        )


@pytest.mark.parametrize("kind", ["proposal", "commit", "application"])
def test_private_message_vectors(suite: CipherSuite, kind: str) -> None:
    """The vector's PrivateMessage opens; ours, with a fresh tree, opens to the same value."""
    case = Case(suite)
    message = MLSMessage.decode(case.b(f"{kind}_priv"))
    assert message.encode() == case.b(f"{kind}_priv")
    assert isinstance(message.message, PrivateMessage)
    assert _encode(case.unprotect_private(message.message)) == case.b(kind)
    tag = bytes(suite.nh) if kind == "commit" else None
    _, mine = protect_private(
        suite,
        case.framed(kind),
        case.b("signature_priv"),
        case.context,
        case.tree(),
        case.b("sender_data_secret"),
        confirmation_tag=tag,
        padding=7,
    )
    wire = decode(MLSMessage(mine).encode(), MLSMessage.read).message
    assert isinstance(wire, PrivateMessage)
    assert _encode(case.unprotect_private(wire)) == case.b(kind)


def _sent(case: Case, **kwargs: Any) -> tuple[SecretTree, PrivateMessage]:
    return protect_private(
        case.suite,
        case.framed("application"),
        case.b("signature_priv"),
        case.context,
        case.tree(),
        case.b("sender_data_secret"),
        **kwargs,
    )


def _open(
    case: Case,
    message: PrivateMessage,
    tree: SecretTree | None = None,
    keys: dict[int, bytes] | None = None,
) -> SecretTree:
    new_tree, _ = unprotect_private(
        case.suite,
        message,
        case.context,
        tree or case.tree(),
        case.b("sender_data_secret"),
        {1: case.b("signature_pub")} if keys is None else keys,
    )
    return new_tree


def test_replayed_private_message_is_refused(suite: CipherSuite) -> None:
    """The receiver's key is deleted after use, so the same message cannot open twice."""
    case = Case(suite)
    _, message = _sent(case)
    tree = _open(case, message)
    with pytest.raises(GenerationUnavailable):
        _open(case, message, tree)


def test_reuse_guard_changes_the_ciphertext(suite: CipherSuite) -> None:
    case = Case(suite)
    _, one = _sent(case, reuse_guard=b"\x00\x00\x00\x01")
    _, two = _sent(case, reuse_guard=b"\x00\x00\x00\x02")
    assert one.ciphertext != two.ciphertext
    _open(case, one)
    _open(case, two)


@pytest.mark.parametrize("field", ["ciphertext", "encrypted_sender_data", "authenticated_data"])
def test_tampered_private_message_fails_and_consumes_nothing(
    suite: CipherSuite, field: str
) -> None:
    case = Case(suite)
    _, message = _sent(case)
    value = getattr(message, field) or b"\x00"
    forged = replace(message, **{field: bytes([value[0] ^ 1]) + value[1:]})
    tree = case.tree()
    with pytest.raises(MLSAuthenticationFailed):
        _open(case, forged, tree)
    _open(case, message, tree)


def test_wrong_signer_or_blank_leaf_is_refused(suite: CipherSuite) -> None:
    case = Case(suite)
    _, message = _sent(case)
    other = suite.signature.public_key(suite.signature.generate())
    with pytest.raises(InvalidMLSSignature):
        _open(case, message, keys={1: other})
    with pytest.raises(InvalidMessage, match="not a member"):
        _open(case, message, keys={0: case.b("signature_pub")})


def test_message_of_another_epoch_is_refused(suite: CipherSuite) -> None:
    case = Case(suite)
    _, message = _sent(case)
    with pytest.raises(InvalidMessage, match="epoch"):
        _open(case, replace(message, epoch=message.epoch + 1))


def test_nonzero_padding_is_refused() -> None:
    """§6.3.1: padding is all zeros; anything else is a malformed message."""
    auth = FramedContentAuthData(b"sig")
    plain = encode_private_content(b"hi", auth, 3)
    assert decode_private_content(plain, ContentType.APPLICATION) == (b"hi", auth)
    with pytest.raises(DecodeError, match="padding"):
        decode_private_content(plain[:-1] + b"\x01", ContentType.APPLICATION)


def test_tampered_public_message_fails(suite: CipherSuite) -> None:
    case = Case(suite)
    message = MLSMessage.decode(case.b("proposal_pub")).message
    assert isinstance(message, PublicMessage)
    with pytest.raises(MLSAuthenticationFailed):
        unprotect_public(suite, message, case.b("signature_pub"), case.context, bytes(suite.nh))
    forged = replace(message, content=replace(message.content, authenticated_data=b"x"))
    with pytest.raises(MLSAuthenticationFailed):
        unprotect_public(
            suite, forged, case.b("signature_pub"), case.context, case.b("membership_key")
        )


def test_undefined_content_type_is_refused(suite: CipherSuite) -> None:
    case = Case(suite)
    wire = bytearray(case.b("application_priv"))
    position = 4 + len(opaque(case.b("group_id"))) + 8
    assert wire[position] == ContentType.APPLICATION
    wire[position] = 9
    with pytest.raises(DecodeError):
        MLSMessage.decode(bytes(wire))


def test_public_message_of_another_group_or_with_application_data_is_refused(
    suite: CipherSuite,
) -> None:
    case = Case(suite)
    message = MLSMessage.decode(case.b("proposal_pub")).message
    assert isinstance(message, PublicMessage)
    args = (case.b("signature_pub"), case.context, case.b("membership_key"))
    other_group = replace(message, content=replace(message.content, group_id=b"other"))
    with pytest.raises(InvalidMessage, match="another group"):
        unprotect_public(suite, other_group, *args)
    application = replace(message, content=replace(message.content, content=b"hello"))
    with pytest.raises(InvalidMessage, match="Application data"):
        unprotect_public(suite, application, *args)
