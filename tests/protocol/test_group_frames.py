"""Group frames: literal JSON, strict client frames, and that they can join the
existing unions without a tag clash."""

from __future__ import annotations

import contextlib
import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.protocol import frames as F
from securechat.protocol import group_frames as G
from securechat.protocol.codec import parse_client_frame

GROUP = bytes(range(32))
GROUP_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

client_decoder = msgspec.json.Decoder(G.GroupClientFrame)
server_decoder = msgspec.json.Decoder(G.GroupServerFrame)
encoder = msgspec.json.Encoder()

VALID: list[G.GroupClientFrame] = [
    G.PublishKeyPackages(rid=1, device="1", key_packages=[b"kp1", b"kp2"], last_resort=b"kp"),
    G.FetchKeyPackages(rid=2, users=["alice", "bob"]),
    G.GroupCommit(rid=3, group=GROUP, epoch=0, eid="c-1", commit=b"c", welcome=b"w", added=["bob"]),
    G.GroupSend(rid=4, group=GROUP, epoch=7, eid="m-1", body=b"m"),
    G.GroupFetch(rid=5, group=GROUP, since=3),
]


@pytest.mark.parametrize("frame", VALID, ids=lambda f: type(f).__name__)
def test_round_trip(frame: G.GroupClientFrame) -> None:
    assert client_decoder.decode(encoder.encode(frame)) == frame


def test_commit_literal_json() -> None:
    """Defaults are left out: a Commit without adds or removals carries neither list."""
    frame = G.GroupCommit(rid=9, group=GROUP, epoch=4, eid="e", commit=b"\x01")
    assert encoder.encode(frame) == (
        b'{"type":"group_commit","group":"' + GROUP_B64.encode() + b'","epoch":4,'
        b'"eid":"e","commit":"AQ==","rid":9}'
    )


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        ({"type": "group_fetch", "rid": 1, "group": GROUP_B64, "since": 0, "x": 1}, "unknown"),
        ({"type": "group_fetch", "rid": 1, "group": "AAEC", "since": 0}, "length"),
        ({"type": "group_fetch", "rid": 1, "group": GROUP_B64, "since": -1}, ">= 0"),
        ({"type": "fetch_key_packages", "rid": 1, "users": []}, "length"),
        ({"type": "fetch_key_packages", "rid": 1, "users": ["A!"]}, "regex"),
        (
            {"type": "publish_key_packages", "rid": 1, "device": "a b", "key_packages": []},
            "regex",
        ),
        (
            {
                "type": "group_send",
                "rid": 1,
                "group": GROUP_B64,
                "epoch": 0,
                "eid": "e",
                "body": "",
            },
            "length",
        ),
    ],
)
def test_client_frames_are_strict(frame: dict[str, object], detail: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=detail):
        client_decoder.decode(encoder.encode(frame))


def test_server_frames_are_lenient_but_kinds_are_known() -> None:
    """An added field is ignored (the relay may grow), an unknown delivery kind is not."""
    envelope = {
        "sid": 1,
        "group": GROUP_B64,
        "kind": "commit",
        "epoch": 2,
        "sender": "alice",
        "eid": "e",
        "body": "AQ==",
        "ts": 1.5,
        "extra": True,
    }
    frame = server_decoder.decode(
        encoder.encode({"type": "group_deliver", "envelopes": [envelope]})
    )
    assert isinstance(frame, G.GroupDeliver)
    assert frame.envelopes[0].kind == "commit"
    with pytest.raises(msgspec.ValidationError, match="kind"):
        server_decoder.decode(
            encoder.encode({"type": "group_deliver", "envelopes": [{**envelope, "kind": "x"}]})
        )


def test_group_frames_are_in_the_protocol_unions() -> None:
    """The relay serves them: the codec parses them like any other frame, no tag clashes."""
    for frame in VALID:
        assert parse_client_frame(encoder.encode(frame)) == frame
    assert G.GROUP_REQUEST_TYPES <= F.REQUEST_TYPES
    assert set(typing.get_args(G.GroupClientFrame)) <= set(typing.get_args(F.ClientFrame))
    assert set(typing.get_args(G.GroupServerFrame)) <= set(typing.get_args(F.ServerFrame))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
        client_decoder.decode(data)
