"""JSON-RPC 2.0 for the daemon, without I/O: bytes in, calls out; results in, bytes out.

The asyncio shell (`server.py`) only moves bytes and runs handlers; every rule
about what a request may look like lives here, so it is tested with plain
values. Framing is one JSON value a line (what signal-cli's daemon speaks), a
line is at most `MAX_LINE` bytes, and params are checked against one msgspec
Struct per method, as strictly as the relay checks its frames: unknown fields,
wrong types and positional params are refused before any handler runs.

Error codes are stable. The standard ones (-32700 to -32603) are usage errors,
the CLI's exit code 2; the daemon's own are -32000 minus the CLI's exit code:
-32001 refused, -32003 relay unreachable, -32004 locked or not authorised.
`data.exit_code` carries the CLI's number and `data.reason` the client's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REFUSED = -32001
UNREACHABLE = -32003
LOCKED = -32004

EXIT_CODES = {
    PARSE_ERROR: 2,
    INVALID_REQUEST: 2,
    METHOD_NOT_FOUND: 2,
    INVALID_PARAMS: 2,
    INTERNAL_ERROR: 1,
    REFUSED: 1,
    UNREACHABLE: 3,
    LOCKED: 4,
}

MAX_LINE = 1 << 20
"""A request line's size limit: a 64 KiB message in JSON escapes fits many times over."""
MAX_BATCH = 64

Id = int | str | None


class RpcError(Exception):
    """A failure that becomes a JSON-RPC error object."""

    def __init__(self, code: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason

    def to_object(self) -> dict[str, Any]:
        data: dict[str, Any] = {"exit_code": EXIT_CODES.get(self.code, 1)}
        if self.reason:
            data["reason"] = self.reason
        return {"code": self.code, "message": self.message, "data": data}


class LineTooLong(RpcError):
    def __init__(self) -> None:
        super().__init__(INVALID_REQUEST, f"a request line is at most {MAX_LINE} bytes")


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    jsonrpc: str
    method: str
    params: dict[str, Any] | list[Any] | None = None
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET


@dataclass(frozen=True, slots=True)
class Call:
    """A valid request: `params` is the method's Struct, already checked."""

    method: str
    params: msgspec.Struct
    id: Id = None
    notification: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """A request refused before dispatch; answered unless it was a notification."""

    error: RpcError
    id: Id = None
    notification: bool = False


@dataclass(frozen=True, slots=True)
class Incoming:
    items: list[Call | Failed] = field(default_factory=list)
    batch: bool = False


def parse(line: bytes, methods: Mapping[str, type[msgspec.Struct]]) -> Incoming:
    """One line from a client: a request, a notification or a batch of them."""
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return Incoming([Failed(RpcError(PARSE_ERROR, "not valid JSON"))])
    if isinstance(value, list):
        if not value:
            return Incoming([Failed(RpcError(INVALID_REQUEST, "an empty batch"))])
        if len(value) > MAX_BATCH:
            error = RpcError(INVALID_REQUEST, f"a batch holds at most {MAX_BATCH} requests")
            return Incoming([Failed(error)])
        return Incoming([_one(item, methods) for item in value], batch=True)
    return Incoming([_one(value, methods)])


def _one(value: object, methods: Mapping[str, type[msgspec.Struct]]) -> Call | Failed:
    raw_id = value.get("id") if isinstance(value, dict) else None
    request_id: Id = raw_id if isinstance(raw_id, int | str) else None
    try:
        request = msgspec.convert(value, _Request, strict=True)
    except msgspec.ValidationError as exc:
        return Failed(RpcError(INVALID_REQUEST, f"not a JSON-RPC 2.0 request: {exc}"), request_id)
    if request.jsonrpc != "2.0":
        return Failed(RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"'), request_id)
    notification = request.id is msgspec.UNSET
    call_id: Id = None if isinstance(request.id, msgspec.UnsetType) else request.id
    params_type = methods.get(request.method)
    if params_type is None:
        failure = RpcError(METHOD_NOT_FOUND, f"no method {request.method!r}")
        return Failed(failure, call_id, notification)
    if isinstance(request.params, list):
        failure = RpcError(INVALID_PARAMS, "params must be an object (by name)")
        return Failed(failure, call_id, notification)
    try:
        params = msgspec.convert(request.params or {}, params_type, strict=True)
    except msgspec.ValidationError as exc:
        return Failed(RpcError(INVALID_PARAMS, f"invalid params: {exc}"), call_id, notification)
    return Call(request.method, params, call_id, notification)


def result(request_id: Id, value: object) -> bytes:
    return _line({"jsonrpc": "2.0", "result": value, "id": request_id})


def error(request_id: Id, failure: RpcError) -> bytes:
    return _line({"jsonrpc": "2.0", "error": failure.to_object(), "id": request_id})


def notification(method: str, params: Mapping[str, Any]) -> bytes:
    return _line({"jsonrpc": "2.0", "method": method, "params": params})


def batch(replies: list[bytes]) -> bytes:
    """Answers to a batch, in one array; nothing at all when every call was a notification."""
    if not replies:
        return b""
    return b"[" + b",".join(reply.rstrip(b"\n") for reply in replies) + b"]\n"


def _line(value: object) -> bytes:
    return msgspec.json.encode(value) + b"\n"


class LineSplitter:
    """Cuts a byte stream into lines, refusing one longer than `limit` before it is whole."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._partial += data
        *lines, rest = bytes(self._partial).split(b"\n")
        if len(rest) > self.limit or any(len(line) > self.limit for line in lines):
            self._partial.clear()
            raise LineTooLong
        self._partial = bytearray(rest)
        return [line for line in lines if line.strip()]
