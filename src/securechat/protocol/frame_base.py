"""What every wire frame shares: the field types and the two base classes.

A module of its own so that `frames.py` (one-to-one conversations, accounts,
files) and `group_frames.py` (groups) both build on it, and `frames.py` can
join the group frames into its unions without an import cycle.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from securechat.protocol import limits as L

RequestId = Annotated[int, msgspec.Meta(ge=0, le=L.MAX_REQUEST_ID)]
Username = Annotated[str, msgspec.Meta(pattern=L.USERNAME_PATTERN)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=L.MAX_PASSWORD_CHARS)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=L.MAX_TOKEN_CHARS)]
EnvelopeId = Annotated[str, msgspec.Meta(pattern=L.ENVELOPE_ID_PATTERN)]
Body = Annotated[bytes, msgspec.Meta(min_length=1, max_length=L.MAX_BODY_BYTES)]
KeyBlob = Annotated[bytes, msgspec.Meta(min_length=1, max_length=L.MAX_KEY_BLOB_BYTES)]
RecoveryToken = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
ServerId = Annotated[int, msgspec.Meta(ge=1, le=L.MAX_REQUEST_ID)]
FileId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]{16,64}$")]
ChunkIndex = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
ChunkBlob = Annotated[bytes, msgspec.Meta(max_length=L.MAX_FILE_CHUNK_BLOB)]
HashPrefix = Annotated[bytes, msgspec.Meta(min_length=4, max_length=32)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=L.MAX_URL_CHARS)]


class _ClientFrame(
    msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True, kw_only=True
):
    """A request from a client. Strict: see the module docstring."""

    rid: RequestId


class _ServerFrame(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    """A frame from the relay. Lenient on decode: see the module docstring."""
