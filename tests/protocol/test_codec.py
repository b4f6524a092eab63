"""The frame parser: literal frames, error codes, and a property-based fuzz."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol.codec import (
    encode,
    parse_client_frame,
    parse_server_frame,
    recover_request_id,
)
from securechat.protocol.limits import MAX_FRAME_BYTES

VALID_FRAMES: list[F.ClientFrame] = [
    F.Register(rid=1, username="alice", password="long enough pw", recovery_token=b"k" * 32),
    F.Login(rid=2, username="bob.b", password="pw"),
    F.Resume(rid=3, token="t" * 43),
    F.Send(rid=4, to="carol_1", eid="abc-DEF_123", body=b"\x00\xffcipher"),
    F.Ack(rid=0, sids=[1, 2, 3]),
    F.Watch(rid=5, users=["alice", "bob"]),
    F.PublishKeys(
        rid=6, identity=b"i", signed_prekey=b"s", kem_prekey=b"k", one_time_prekeys=[b"1", b"2"]
    ),
    F.FetchBundle(rid=7, user="alice"),
    F.ResetPassword(rid=8, username="alice", token="op-x", new_password="a new password"),
]


@pytest.mark.parametrize("frame", VALID_FRAMES, ids=lambda f: type(f).__name__)
def test_valid_frames_round_trip(frame: F.ClientFrame) -> None:
    """What the client encodes, the relay parses to the same value."""
    assert parse_client_frame(encode(frame)) == frame


def test_send_frame_literal_bytes() -> None:
    """The documented wire form in docs/protocol.md is what the code produces."""
    frame = F.Send(rid=4, to="bob", eid="m1", body=b"hi")
    assert encode(frame) == b'{"type":"send","to":"bob","eid":"m1","body":"aGk=","rid":4}'


def test_oversized_frame_is_too_large() -> None:
    """The size check happens before any parsing work."""
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(b" " * (MAX_FRAME_BYTES + 1))
    assert info.value.code == "too_large"


def test_server_frames_tolerate_unknown_fields() -> None:
    """A v1 relay may add fields; old clients ignore them."""
    frame = parse_server_frame(b'{"type":"done","rid":3,"new_field":true}')
    assert frame == F.Done(rid=3)


def test_request_id_recovered_from_invalid_frame() -> None:
    """Errors for invalid frames still reach the right request."""
    assert recover_request_id('{"type":"login","rid":42}') == 42
    assert recover_request_id('{"rid":true}') is None
    assert recover_request_id("\xff") is None


def test_request_id_recovered_from_the_header_of_a_binary_message() -> None:
    head = b'{"type":"file_chunk","rid":7,"file_id":"x"}'
    assert recover_request_id(len(head).to_bytes(4, "big") + head + b"\x00" * 10) == 7
    assert recover_request_id(b'{"type":"login","rid":42}') is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes_only_raise_protocol_error(data: bytes) -> None:
    """No input makes the parser raise anything but a ProtocolError."""
    try:
        parse_client_frame(data)
    except ProtocolError as exc:
        assert exc.code in {"bad_request", "too_large"}


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(VALID_FRAMES),
    st.text(min_size=1, max_size=12),
    json_values,
)
def test_fuzz_mutated_valid_frames(frame: F.ClientFrame, key: str, value: object) -> None:
    """Replacing or adding any field yields either a valid frame or a bad_request."""
    loose = json.loads(encode(frame))
    loose[key] = value
    raw = json.dumps(loose).encode()
    try:
        parsed = parse_client_frame(raw)
    except ProtocolError as exc:
        assert exc.code == "bad_request"
        assert exc.message
    else:
        assert type(parsed).__struct_config__.tag in F.REQUEST_TYPES


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_fuzz_arbitrary_json(value: object) -> None:
    """Well-formed JSON of any shape is still only ever a ProtocolError."""
    try:
        parse_client_frame(json.dumps(value))
    except ProtocolError as exc:
        assert exc.code == "bad_request"


def test_publish_keys_without_one_time_kem_prekeys_leaves_the_field_out() -> None:
    """A relay that predates one-time KEM prekeys refuses unknown fields: none are sent."""
    frame = F.PublishKeys(
        rid=1, identity=b"i", signed_prekey=b"s", kem_prekey=b"k", one_time_prekeys=[]
    )
    assert b"one_time_kem_prekeys" not in encode(frame)
    with_kem = F.PublishKeys(
        rid=1,
        identity=b"i",
        signed_prekey=b"s",
        kem_prekey=b"k",
        one_time_prekeys=[],
        one_time_kem_prekeys=[b"q"],
    )
    assert parse_client_frame(encode(with_kem)) == with_kem
