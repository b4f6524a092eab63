"""Every structure in messages.json decodes and re-encodes to the same bytes (RFC 9420)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from securechat.crypto.mls import proposals
from securechat.crypto.mls.codec import Reader, decode, opaque
from securechat.crypto.mls.errors import DecodeError
from securechat.crypto.mls.framing import (
    ContentType,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    WireFormat,
)
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.ratchet_tree import decode_ratchet_tree, encode_ratchet_tree
from securechat.crypto.mls.welcome import GroupInfo, GroupSecrets, Welcome
from tests.crypto.mls.vectors import load


def _struct(kind: Any) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    def encode(value: Any) -> bytes:
        out = value.encode_body() if hasattr(value, "encode_body") else value.encode()
        assert isinstance(out, bytes)
        return out

    return (lambda data: decode(data, kind.read)), encode


def _message(wire: WireFormat, content: ContentType | None = None) -> Any:
    def read(data: bytes) -> MLSMessage:
        message = MLSMessage.decode(data)
        assert message.wire_format == wire
        if content is not None:
            assert isinstance(message.message, PublicMessage)
            assert message.message.content.content_type == content
        return message

    return read, MLSMessage.encode


CODECS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    "mls_welcome": _message(WireFormat.WELCOME),
    "mls_group_info": _message(WireFormat.GROUP_INFO),
    "mls_key_package": _message(WireFormat.KEY_PACKAGE),
    "ratchet_tree": (decode_ratchet_tree, encode_ratchet_tree),
    "group_secrets": (GroupSecrets.decode, GroupSecrets.encode),
    "add_proposal": _struct(proposals.Add),
    "update_proposal": _struct(proposals.Update),
    "remove_proposal": _struct(proposals.Remove),
    "pre_shared_key_proposal": _struct(proposals.PreSharedKey),
    "re_init_proposal": _struct(proposals.ReInit),
    "external_init_proposal": _struct(proposals.ExternalInit),
    "group_context_extensions_proposal": _struct(proposals.GroupContextExtensions),
    "commit": _struct(proposals.Commit),
    "public_message_application": _message(WireFormat.PUBLIC_MESSAGE, ContentType.APPLICATION),
    "public_message_proposal": _message(WireFormat.PUBLIC_MESSAGE, ContentType.PROPOSAL),
    "public_message_commit": _message(WireFormat.PUBLIC_MESSAGE, ContentType.COMMIT),
    "private_message": _message(WireFormat.PRIVATE_MESSAGE),
}


@pytest.mark.parametrize("field", sorted(CODECS))
def test_messages_round_trip(field: str) -> None:
    """Each of the file's cases decodes as its structure and re-encodes byte-identical."""
    cases = load("messages.json")
    read, encode = CODECS[field]
    for index, case in enumerate(cases):
        data = bytes.fromhex(case[field])
        assert encode(read(data)) == data, f"case {index}"
    assert len(cases) == 300


def test_the_envelopes_hold_the_right_bodies() -> None:
    case = load("messages.json")[0]
    bodies = {
        "mls_welcome": Welcome,
        "mls_group_info": GroupInfo,
        "mls_key_package": KeyPackage,
        "private_message": PrivateMessage,
    }
    for field, kind in bodies.items():
        assert isinstance(MLSMessage.decode(bytes.fromhex(case[field])).message, kind)


@pytest.mark.parametrize("field", sorted(CODECS))
def test_truncated_or_extended_input_is_a_decode_error(field: str) -> None:
    """A structure cut short or followed by a stray byte is refused, never misread."""
    data = bytes.fromhex(load("messages.json")[0][field])
    read, _ = CODECS[field]
    for bad in (data[:-1], data + b"\x00"):
        with pytest.raises(DecodeError):
            read(bad)


def test_ratchet_tree_with_trailing_blank_is_refused() -> None:
    data = bytes.fromhex(load("messages.json")[0]["ratchet_tree"])
    nodes = decode_ratchet_tree(data)
    with_blanks = opaque(decode(data, Reader.opaque) + b"\x00\x00")
    with pytest.raises(DecodeError, match="non-blank"):
        decode_ratchet_tree(with_blanks)
    assert encode_ratchet_tree((*nodes, None, None)) == data
