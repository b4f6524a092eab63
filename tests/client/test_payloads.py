"""Envelope contents: format 2 hides kind, time and number; format 1 still reads."""

from __future__ import annotations

import msgspec
import pytest

from securechat.client import payloads as P
from securechat.crypto.ratchet import MESSAGE_OVERHEAD
from securechat.errors import ProtocolError
from securechat.protocol.padding import is_bucket

# Written by the format 1 client (msgpack maps), kept as literal bytes.
V1_TEXT = bytes.fromhex("83a16ba474657874a474657874a26869a27473cb3ff8000000000000")
V1_MSG_ENVELOPE = bytes.fromhex("82a16ba36d7367a76d657373616765c4020a01")


def test_format_1_text_still_opens_with_its_own_time() -> None:
    """An older client's message keeps its sender time; it carries no number."""
    opened = P.decode_inner(V1_TEXT)
    assert opened == P.Opened(P.Text(text="hi", ts=1.5), 1.5, 0, 1)


def test_format_1_envelope_still_reads_as_a_ratchet_message() -> None:
    assert P.decode_outer(V1_MSG_ENVELOPE) == P.RatchetEnvelope(message=b"\x0a\x01")


def test_format_2_body_is_the_bare_ratchet_message() -> None:
    """No tag for the relay to read: the body is whatever the ratchet produced."""
    body = P.encode_message(b"\x0a\x01" + bytes(100))
    assert P.decode_outer(body) == P.RatchetEnvelope(message=body)


@pytest.mark.parametrize(
    "content",
    [
        P.Text(text="hi"),
        P.Text(text="x" * 5000),
        P.Receipt(eids=["a" * 22]),
        P.Hello(),
        P.FileOffer(manifest=b"m" * 150, blob_id="B" * 32),
    ],
)
def test_format_2_round_trips_and_fills_a_bucket(content: P.Inner) -> None:
    """Kind, time and number come back; the ratchet message around it is a bucket size."""
    plaintext = P.encode_inner(content, 1700000000.25, 7)
    assert is_bucket(len(plaintext) + MESSAGE_OVERHEAD)
    assert P.decode_inner(plaintext) == P.Opened(content, 1700000000.25, 7, 2)


def test_small_contents_of_every_kind_are_one_size() -> None:
    """What the relay used to tell apart by size (127 and 115 bytes) is now 256 each."""
    sizes = {
        len(P.encode_inner(content, 1700000000.0, 3)) + MESSAGE_OVERHEAD
        for content in (
            P.Text(text="ok, see you at 8"),
            P.Text(text="x" * 150),
            P.Receipt(eids=["Qm9iIGlzIGhlcmUgYWdhaW4"]),
            P.Hello(),
        )
    }
    assert sizes == {256}


def test_a_file_offer_is_the_size_of_a_text_of_similar_length() -> None:
    """A 122-byte manifest (a file called notes.txt) pads like a 170-character text."""
    offer = P.FileOffer(manifest=b"m" * 122, blob_id="B" * 32)
    text = P.Text(text="x" * 170)
    assert len(P.encode_inner(offer, 1.0, 1)) == len(P.encode_inner(text, 1.0, 1)) == 272 - 70


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x02" + msgspec.msgpack.encode([{"k": "hello"}, 1.0, 1]),  # no padding mark
        P.encode_inner(P.Hello(), 1.0)[:-200] + b"\x01",  # mark cut off
        b"\x02" + msgspec.msgpack.encode([{"k": "hello"}, float("nan"), 1]) + b"\x80",
        b"\x02" + msgspec.msgpack.encode([{"k": "hello"}, 1.0, -1]) + b"\x80",
        b"\x02" + msgspec.msgpack.encode([{"k": "nope"}, 1.0, 1]) + b"\x80",
    ],
)
def test_damaged_or_hostile_format_2_is_refused(plaintext: bytes) -> None:
    """A peer cannot hand the UI a NaN time or a negative number."""
    with pytest.raises(ProtocolError):
        P.decode_inner(plaintext)
