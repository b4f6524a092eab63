"""Parsing and serialising frames: bytes in, values out, no I/O.

Every failure becomes a `ProtocolError` with a stable code and a sentence
that says what was wrong, so the relay can answer instead of dropping the
connection, and the fuzz tests can assert that nothing else escapes.
"""

from __future__ import annotations

import struct
from typing import TypeVar

import msgspec

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import MAX_FILE_CHUNK_BLOB, MAX_FRAME_BYTES

# Annotated: msgspec before 0.19 types a decoder of a union as Decoder[Any].
_client_decoder: msgspec.json.Decoder[F.ClientFrame] = msgspec.json.Decoder(F.ClientFrame)
_server_decoder: msgspec.json.Decoder[F.ServerFrame] = msgspec.json.Decoder(F.ServerFrame)
_encoder = msgspec.json.Encoder()

_BULK_LENGTH = struct.Struct(">I")
MAX_BULK_HEADER_BYTES = 1024
"""A bulk frame's JSON header holds ids and counters only."""

BulkFrame = F.FileChunk | F.FileData
_Bulk = TypeVar("_Bulk", F.FileChunk, F.FileData)


def parse_client_frame(data: bytes | str, *, max_bytes: int = MAX_FRAME_BYTES) -> F.ClientFrame:
    """Decode and validate one frame from a client.

    Raises ProtocolError(bad_request | too_large) with the request id when it
    could be recovered, so the error can be matched to the request.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame of {len(raw)} bytes exceeds {max_bytes}")
    try:
        return _client_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, _describe(str(exc))) from None
    except msgspec.DecodeError:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame is not valid JSON") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame is nested too deeply") from None


def parse_server_frame(data: bytes | str) -> F.ServerFrame:
    """Decode a frame from the relay; the client treats failures as a broken relay."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        return _server_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"relay sent {_describe(str(exc))}") from None
    except (msgspec.DecodeError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "relay sent a frame that is not JSON") from None


def encode_bulk(frame: BulkFrame) -> bytes:
    """A frame with file bytes as a binary websocket message: header length (u32, big
    endian), the frame as JSON with `data` empty, then the bytes themselves.

    Raw bytes spare a file transfer the base64 third on the wire and an encode and a
    decode on each side, which were most of what a transfer cost over a plain copy.
    """
    head = _encoder.encode(msgspec.structs.replace(frame, data=b""))
    return b"".join((_BULK_LENGTH.pack(len(head)), head, frame.data))


def parse_client_bulk(data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> F.ClientFrame:
    """Decode a binary message from a client: only `file_chunk` travels this way."""
    if len(data) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame of {len(data)} bytes exceeds {max_bytes}")
    head, payload = _split_bulk(data)
    frame = parse_client_frame(head)
    if not isinstance(frame, F.FileChunk):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "only file_chunk frames travel as binary messages"
        )
    return _with_payload(frame, payload, MAX_FILE_CHUNK_BLOB)


def parse_server_bulk(data: bytes) -> F.ServerFrame:
    """Decode a binary message from the relay: only `file_data` travels this way."""
    head, payload = _split_bulk(data)
    frame = parse_server_frame(head)
    if not isinstance(frame, F.FileData):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "relay sent a binary frame that is not file_data"
        )
    return _with_payload(frame, payload, MAX_FILE_CHUNK_BLOB)


def _split_bulk(data: bytes) -> tuple[bytes, bytes]:
    if len(data) < _BULK_LENGTH.size:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "binary frame shorter than its length field")
    (length,) = _BULK_LENGTH.unpack_from(data)
    end = _BULK_LENGTH.size + length
    if length > MAX_BULK_HEADER_BYTES or end > len(data):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"binary frame header of {length} bytes is longer than "
            f"{min(MAX_BULK_HEADER_BYTES, len(data) - _BULK_LENGTH.size)}",
        )
    return data[_BULK_LENGTH.size : end], data[end:]


def _with_payload(frame: _Bulk, payload: bytes, limit: int) -> _Bulk:
    if frame.data:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "a binary frame carries its data after the header, not in it"
        )
    if len(payload) > limit:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"file chunk of {len(payload)} bytes exceeds {limit}"
        )
    return msgspec.structs.replace(frame, data=payload)


def encode(frame: F.ClientFrame | F.ServerFrame) -> bytes:
    return _encoder.encode(frame)


def encode_str(frame: F.ClientFrame | F.ServerFrame) -> str:
    """Frames go out as websocket text messages: JSON is text."""
    return _encoder.encode(frame).decode("utf-8")


def recover_request_id(data: bytes | str) -> int | None:
    """Best-effort `rid` of a frame that failed validation, to address the error.

    `bytes` is a binary message: its rid is in the JSON header.
    """
    if isinstance(data, bytes):
        try:
            data, _ = _split_bulk(data)
        except ProtocolError:
            return None
    try:
        loose = msgspec.json.decode(data)
    except (msgspec.DecodeError, TypeError, ValueError, RecursionError):
        return None
    if isinstance(loose, dict):
        rid = loose.get("rid")
        if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= 2**53 - 1:
            return rid
    return None


def _describe(detail: str) -> str:
    if "Invalid value" in detail and "$.type" in detail:
        return "unknown frame type: " + detail
    if detail.startswith("Expected `object`"):
        return "a frame must be a JSON object with a `type`"
    return "invalid frame: " + detail
