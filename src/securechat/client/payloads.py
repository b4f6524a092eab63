"""What travels inside an envelope body: the only format the relay cannot read.

Outer layer (what the relay carries):
- `key` (a sharekey: public identity material) and `pre` (the handshake's
  initial message with the first ratchet message): msgpack maps with a tag.
- format 2, every message once a session runs: the bare ratchet message
  (it starts with its kind byte 0x0A, never a msgpack map). Format 1 wrapped
  it in a `msg` map, which is still read.

Inner layer (the ratchet plaintext): `text`, `receipt`, `hello` (session
set-up and confirmation) and `file` (a file offer).
- format 2: `0x02 ‖ msgpack [content, sent_at, seq]`, padded (see
  `protocol.padding`) so that the whole envelope body is a bucket size. The
  kind, the sender's clock and the per-direction sequence number are all
  inside the ciphertext, so the relay sees one kind of envelope whose size
  says little.
- format 1: the content's msgpack map alone (a text carried its own `ts`).

Unknown tags are refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from securechat.crypto.ratchet import MESSAGE_OVERHEAD
from securechat.errors import ClientErrorCode, ProtocolError, SessionError
from securechat.protocol import padding
from securechat.protocol.errors import ErrorCode

Blob = Annotated[bytes, msgspec.Meta(max_length=64 * 1024)]
MAX_TEXT_CHARS = 64_000
Timestamp = Annotated[float, msgspec.Meta(ge=0, le=2**40)]
"""Seconds since the epoch, bounded so a hostile peer cannot make a UI format NaN or 1e308."""
Sequence = Annotated[int, msgspec.Meta(ge=0, lt=2**53)]
INNER_V2 = 0x02
RATCHET_KIND = 0x0A


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


class _Inner(msgspec.Struct, tag_field="k", frozen=True, omit_defaults=True):
    pass


class Text(_Inner, tag="text", frozen=True):
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
    ts: Timestamp | None = None
    """Format 1 only: format 2 carries the time next to the content, for every kind."""


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
    ts: Timestamp | None = None
    """Format 1 only, as for `Text`."""


Inner = Text | Receipt | Hello | FileOffer


class _Sealed(msgspec.Struct, frozen=True, array_like=True):
    """Inner format 2 after its version byte."""

    content: Inner
    sent_at: Timestamp
    seq: Sequence


@dataclass(frozen=True, slots=True)
class Opened:
    """A decrypted payload, whichever format it came in."""

    content: Inner
    sent_at: float | None
    """The sender's clock, authenticated by the ratchet; None if the sender did not say."""
    seq: int
    """Position among the user messages of this direction, from 1; 0 when not counted."""
    version: int


CLOCK_DISAGREEMENT = 600.0
"""Seconds between the sender's time and the relay's beyond which a message is flagged."""


def clocks_disagree(sent_at: float, relayed_at: float) -> bool:
    """The sender's clock is off, the message waited in its outbox, or the relay lies.

    The relay's time cannot be checked; the sender's is authenticated, so it is
    the one shown. A wide gap is shown too, rather than silently believed.
    """
    return abs(sent_at - relayed_at) > CLOCK_DISAGREEMENT


def check_text(text: str) -> None:
    """A message a user may send: not empty, within the limit (1:1 and groups alike)."""
    if not text:
        raise SessionError("nothing to send", ClientErrorCode.INVALID_MESSAGE)
    if len(text) > MAX_TEXT_CHARS:
        raise SessionError(
            f"a message holds at most {MAX_TEXT_CHARS} characters",
            ClientErrorCode.INVALID_MESSAGE,
        )


def counted(content: Inner) -> bool:
    """Messages a user would miss are numbered; receipts and hellos are not (see retries)."""
    return isinstance(content, Text | FileOffer)


# Annotated: msgspec before 0.19 types a decoder of a union as Decoder[Any].
_outer_decoder: msgspec.msgpack.Decoder[Outer] = msgspec.msgpack.Decoder(Outer)
_inner_decoder: msgspec.msgpack.Decoder[Inner] = msgspec.msgpack.Decoder(Inner)
_sealed_decoder = msgspec.msgpack.Decoder(_Sealed)


def encode(value: Outer | Inner) -> bytes:
    """Format 1 (and the `key`/`pre` envelopes, which keep it)."""
    return msgspec.msgpack.encode(value)


def encode_inner(content: Inner, sent_at: float, seq: int = 0) -> bytes:
    """Format 2 plaintext, padded so that its ratchet message is a bucket size."""
    sealed = msgspec.msgpack.encode(_Sealed(content, sent_at, seq))
    return padding.pad(bytes([INNER_V2]) + sealed, MESSAGE_OVERHEAD)


def encode_message(message: bytes) -> bytes:
    """Format 2 envelope body: the ratchet message itself, with no tag the relay can read."""
    return message


def decode_outer(body: bytes) -> Outer:
    if body[:1] == bytes([RATCHET_KIND]):
        return RatchetEnvelope(message=body)
    try:
        return _outer_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unreadable envelope: {exc}") from None


def decode_inner(plaintext: bytes) -> Opened:
    try:
        if plaintext[:1] == bytes([INNER_V2]):
            sealed = _sealed_decoder.decode(padding.unpad(plaintext[1:]))
            return Opened(sealed.content, sealed.sent_at, sealed.seq, 2)
        content = _inner_decoder.decode(plaintext)
    except (msgspec.DecodeError, msgspec.ValidationError, padding.PaddingError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unreadable message content: {exc}") from None
    sent_at = content.ts if isinstance(content, Text | FileOffer) else None
    return Opened(content, sent_at, 0, 1)


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
