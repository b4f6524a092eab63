"""Group frames: literal JSON, strict client frames, and that they can join the
existing unions without a tag clash."""

from __future__ import annotations

import contextlib
import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.crypto.mls.framing import ContentType, MLSMessage, PrivateMessage
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


def test_accepted_names_full_members_only_when_there_are_some() -> None:
    """`full` is left out when empty, so a one-to-one `accepted` reads as before, and a
    client from before the field decodes one that carries it (it ignores the field)."""
    assert encoder.encode(F.Accepted(rid=3, eid="e")) == b'{"type":"accepted","rid":3,"eid":"e"}'
    named = encoder.encode(F.Accepted(rid=3, eid="e", full=["dave"]))
    assert named == b'{"type":"accepted","rid":3,"eid":"e","full":["dave"]}'
    assert msgspec.json.decode(named, type=F.ServerFrame) == F.Accepted(
        rid=3, eid="e", full=["dave"]
    )

    class OldAccepted(msgspec.Struct, tag_field="type", tag="accepted", frozen=True, kw_only=True):
        rid: int
        eid: str

    assert msgspec.json.decode(named, type=OldAccepted) == OldAccepted(rid=3, eid="e")


def _private(group: bytes, content_type: ContentType) -> bytes:
    message = PrivateMessage(group, 7, content_type, b"aad", b"sender", b"ciphertext")
    return MLSMessage(message).encode()


@pytest.mark.parametrize("group", [bytes(16), bytes(range(63)), bytes(range(64))])
def test_the_relay_tells_handshake_messages_from_application_data(group: bytes) -> None:
    """Read against the MLS encoder itself, for group ids whose length takes one byte
    and two: a proposal or a Commit of the group is a handshake message."""
    assert G.is_handshake(group, _private(group, ContentType.PROPOSAL))
    assert G.is_handshake(group, _private(group, ContentType.COMMIT))
    assert not G.is_handshake(group, _private(group, ContentType.APPLICATION))


def test_anything_but_a_handshake_message_of_the_group_is_application_data() -> None:
    """A sender cannot pass a full queue with a proposal of another group, another wire
    format, a truncated header or bytes that merely end like one."""
    proposal = _private(GROUP, ContentType.PROPOSAL)
    assert not G.is_handshake(bytes(32), proposal)
    assert not G.is_handshake(GROUP, b"\x00\x01\x00\x01" + proposal[4:])
    assert not G.is_handshake(GROUP, b"\x00\x02" + proposal[2:])
    start = 4 + 1 + len(GROUP) + 8  # where the content type is
    assert not G.is_handshake(GROUP, proposal[:start])
    assert G.is_handshake(GROUP, proposal[: start + 1])
    assert not G.is_handshake(GROUP, b"M" + proposal)
