"""What travels inside an envelope body: the only format the relay cannot read.

Outer layer (visible to the recipient's client before decryption):
`key` (a sharekey: public identity material), `pre` (the handshake's initial
message with the first ratchet message) and `msg` (a ratchet message).
Inner layer (the ratchet plaintext): `text`, `receipt`, `hello` (session
set-up and confirmation) and `file` (a file offer). Both are msgpack with a
tag, versioned by the tag set: unknown tags are refused with a clear error.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from securechat.errors import ProtocolError
from securechat.protocol.errors import ErrorCode

Blob = Annotated[bytes, msgspec.Meta(max_length=64 * 1024)]
MAX_TEXT_CHARS = 64_000


class _Outer(msgspec.Struct, tag_field="k", frozen=True, forbid_unknown_fields=True):
    pass


class SharedKey(_Outer, tag="key", frozen=True):
    identity: Blob
    identity_dh: Blob


class PrekeyEnvelope(_Outer, tag="pre", frozen=True):
    initial: Blob
    message: Blob


class RatchetEnvelope(_Outer, tag="msg", frozen=True):
    message: Blob


Outer = SharedKey | PrekeyEnvelope | RatchetEnvelope


class _Inner(msgspec.Struct, tag_field="k", frozen=True):
    pass


class Text(_Inner, tag="text", frozen=True):
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
    ts: float


class Receipt(_Inner, tag="receipt", frozen=True):
    eids: Annotated[list[str], msgspec.Meta(max_length=256)]


class Hello(_Inner, tag="hello", frozen=True):
    """Opens a session and confirms it; carries no user content.

    The opening one says when the session was started (ms, the sender's clock), so the
    receiver keeps the newer of two sessions; older clients ignore the field and omit it.
    """

    created_at_ms: Annotated[int, msgspec.Meta(ge=0)] | None = None


class FileOffer(_Inner, tag="file", frozen=True):
    """The file's key, digest, name and type, and where the relay keeps its ciphertext."""

    manifest: Blob
    blob_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]{16,64}$")]
    """Checked like the relay checks it: it becomes part of a local file name."""
    ts: float


Inner = Text | Receipt | Hello | FileOffer

_outer_decoder = msgspec.msgpack.Decoder(Outer)
_inner_decoder = msgspec.msgpack.Decoder(Inner)


def encode(value: Outer | Inner) -> bytes:
    return msgspec.msgpack.encode(value)


def decode_outer(body: bytes) -> Outer:
    try:
        return _outer_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unreadable envelope: {exc}") from None


def decode_inner(plaintext: bytes) -> Inner:
    try:
        return _inner_decoder.decode(plaintext)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unreadable message content: {exc}") from None


class IdentityBlob(msgspec.Struct, frozen=True, array_like=True):
    """The directory's opaque `identity` field: the RSA key and its signed X25519 key."""

    der: bytes
    identity_dh: bytes


def encode_identity_blob(der: bytes, identity_dh: bytes) -> bytes:
    return msgspec.msgpack.encode(IdentityBlob(der, identity_dh))


def decode_identity_blob(blob: bytes) -> IdentityBlob:
    try:
        return msgspec.msgpack.decode(blob, type=IdentityBlob)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"malformed identity in directory: {exc}"
        ) from None
