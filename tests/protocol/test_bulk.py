"""Binary messages: file bytes after a JSON header instead of base64 inside it."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol.codec import (
    MAX_BULK_HEADER_BYTES,
    encode_bulk,
    parse_client_bulk,
    parse_server_bulk,
)
from securechat.protocol.limits import MAX_FILE_CHUNK_BLOB

FILE_ID = "f" * 22


def bulk(head: dict[str, object] | bytes, payload: bytes) -> bytes:
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    return len(raw).to_bytes(4, "big") + raw + payload


def test_layout_is_length_header_then_raw_bytes() -> None:
    """The format other implementations must write, spelled out byte by byte."""
    frame = F.FileChunk(rid=5, file_id=FILE_ID, index=2, data=b"\x00\xffraw")
    head = (
        b'{"type":"file_chunk","file_id":"' + FILE_ID.encode() + b'","index":2,"data":"","rid":5}'
    )
    assert encode_bulk(frame) == len(head).to_bytes(4, "big") + head + b"\x00\xffraw"


@given(data=st.binary(max_size=MAX_FILE_CHUNK_BLOB), index=st.integers(0, 10_000))
def test_chunks_and_file_data_round_trip(data: bytes, index: int) -> None:
    chunk = F.FileChunk(rid=1, file_id=FILE_ID, index=index, data=data)
    assert parse_client_bulk(encode_bulk(chunk)) == chunk
    answer = F.FileData(rid=1, file_id=FILE_ID, index=index, data=data, last=False)
    assert parse_server_bulk(encode_bulk(answer)) == answer


@pytest.mark.parametrize(
    ("message", "code", "fragment"),
    [
        (b"", "bad_request", "shorter than its length field"),
        (b"\x00\x00", "bad_request", "shorter than its length field"),
        (b"\x00\x00\x00\x50{}", "bad_request", "header of 80 bytes"),
        (
            (MAX_BULK_HEADER_BYTES + 1).to_bytes(4, "big") + b" " * 2000,
            "bad_request",
            "longer than 1024",
        ),
        (bulk(b"\xff\xfe", b""), "bad_request", "not valid JSON"),
        (
            bulk({"type": "login", "rid": 1, "username": "alice", "password": "b"}, b""),
            "bad_request",
            "only file_chunk",
        ),
        (
            bulk(
                {"type": "file_chunk", "rid": 3, "file_id": FILE_ID, "index": 0, "data": "AAAA"},
                b"",
            ),
            "bad_request",
            "after the header",
        ),
        (
            bulk(
                {"type": "file_chunk", "rid": 3, "file_id": FILE_ID, "index": 0, "data": ""},
                bytes(MAX_FILE_CHUNK_BLOB + 1),
            ),
            "too_large",
            f"{MAX_FILE_CHUNK_BLOB + 1} bytes",
        ),
        (
            bulk(
                {"type": "file_chunk", "rid": 3, "file_id": "../../etc", "index": 0, "data": ""},
                b"x",
            ),
            "bad_request",
            "file_id",
        ),
    ],
)
def test_malformed_binary_messages_are_refused_with_a_reason(
    message: bytes, code: str, fragment: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_bulk(message)
    assert info.value.code == code
    assert fragment in info.value.message


def test_a_relay_may_send_only_file_data_as_binary() -> None:
    with pytest.raises(ProtocolError, match="not file_data"):
        parse_server_bulk(bulk({"type": "done", "rid": 1}, b""))


@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_escape_as_anything_but_protocol_errors(raw: bytes) -> None:
    for parse in (parse_client_bulk, parse_server_bulk):
        with contextlib.suppress(ProtocolError):
            parse(raw)
