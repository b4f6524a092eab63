"""The TLS presentation language codec: the WG's varint vectors and strict decoding."""

from __future__ import annotations

import pytest

from securechat.crypto.mls.codec import (
    Reader,
    decode,
    opaque,
    optional,
    uint16,
    uint64,
    varint,
    vector,
)
from securechat.crypto.mls.errors import DecodeError, MLSError
from securechat.crypto.mls.group_context import Extension, encode_extensions, read_extensions
from tests.crypto.mls.vectors import load


def test_deserialization_vectors() -> None:
    """Every vlbytes header decodes to its length and re-encodes to the same bytes."""
    cases = load("deserialization.json")
    for case in cases:
        header = bytes.fromhex(case["vlbytes_header"])
        assert decode(header, Reader.varint) == case["length"]
        assert varint(case["length"]) == header
    assert len(cases) == 14


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (63, "3f"),
        (64, "4040"),
        (16383, "7fff"),
        (16384, "80004000"),
        ((1 << 30) - 1, "bfffffff"),
    ],
)
def test_varint_boundaries(value: int, encoded: str) -> None:
    """The width switches exactly at 2^6 and 2^14 (RFC 9420 §2.1.2)."""
    assert varint(value).hex() == encoded
    assert decode(bytes.fromhex(encoded), Reader.varint) == value


@pytest.mark.parametrize("encoded", ["4025", "40", "80000001", "80003fff", "c0000000000000"])
def test_non_minimal_truncated_or_reserved_varint_is_refused(encoded: str) -> None:
    """One value, one encoding: longer forms, cut headers and the 0b11 prefix are errors."""
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(encoded), Reader.varint)


def test_varint_out_of_range_is_not_encoded() -> None:
    with pytest.raises(ValueError):
        varint(1 << 30)


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode(opaque(b"ab") + b"\x00", Reader.opaque)


def test_vector_length_beyond_input_is_refused() -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex("05") + b"abc", Reader.opaque)


def test_vector_element_overrunning_its_vector_is_refused() -> None:
    """An element may not borrow bytes from after the vector that holds it."""
    data = b"\x03" + uint16(7) + b"\x00" + b"\x00"
    with pytest.raises(DecodeError):
        decode(data, lambda r: r.vector(Reader.uint16))


def test_vector_of_structs_round_trips() -> None:
    encoded = vector([uint16(1), uint16(513)])
    assert decode(encoded, lambda r: r.vector(Reader.uint16)) == [1, 513]


def test_optional_round_trips_and_refuses_bad_presence_octet() -> None:
    assert decode(optional(None), lambda r: r.optional(Reader.uint64)) is None
    assert decode(optional(uint64(9)), lambda r: r.optional(Reader.uint64)) == 9
    with pytest.raises(DecodeError):
        decode(b"\x02" + uint64(9), lambda r: r.optional(Reader.uint64))


def test_decode_error_is_an_mls_error() -> None:
    assert issubclass(DecodeError, MLSError)


def test_duplicate_extension_type_is_refused() -> None:
    """§13: each extension type appears at most once in a list."""
    one = Extension(5, b"a")
    assert decode(encode_extensions((one,)), read_extensions) == (one,)
    with pytest.raises(DecodeError, match="more than once"):
        decode(encode_extensions((one, Extension(5, b"b"))), read_extensions)


def test_vector_of_empty_elements_cannot_loop_forever() -> None:
    """An element reader that consumes nothing would spin on a non-empty vector."""
    with pytest.raises(DecodeError, match="no bytes"):
        decode(vector([b"\x00"]), lambda r: r.vector(lambda _: None))
