"""Parsing and serialising frames: bytes in, values out, no I/O.

Every failure becomes a `ProtocolError` with a stable code and a sentence
that says what was wrong, so the relay can answer instead of dropping the
connection, and the fuzz tests can assert that nothing else escapes.
"""

from __future__ import annotations

import msgspec

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import MAX_FRAME_BYTES

_client_decoder = msgspec.json.Decoder(F.ClientFrame)
_server_decoder = msgspec.json.Decoder(F.ServerFrame)
_encoder = msgspec.json.Encoder()


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


def encode(frame: F.ClientFrame | F.ServerFrame) -> bytes:
    return _encoder.encode(frame)


def encode_str(frame: F.ClientFrame | F.ServerFrame) -> str:
    """Frames go out as websocket text messages: JSON is text."""
    return _encoder.encode(frame).decode("utf-8")


def recover_request_id(data: bytes | str) -> int | None:
    """Best-effort `rid` of a frame that failed validation, to address the error."""
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
