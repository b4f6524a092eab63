"""JSON-RPC 2.0 parsing and encoding, with plain bytes: the rules hold before any socket."""

from __future__ import annotations

import json

import msgspec
import pytest

from securechat.daemon import rpc
from securechat.daemon.methods import PARAMS, PeerParams, SendParams


def _one(line: bytes) -> rpc.Call | rpc.Failed:
    incoming = rpc.parse(line, PARAMS)
    assert not incoming.batch and len(incoming.items) == 1
    return incoming.items[0]


def _failed(line: bytes) -> rpc.Failed:
    item = _one(line)
    assert isinstance(item, rpc.Failed)
    return item


def test_a_valid_request_becomes_a_call_with_checked_params() -> None:
    line = b'{"jsonrpc":"2.0","id":7,"method":"send","params":{"recipient":"bob","message":"hi"}}'
    call = _one(line)
    assert call == rpc.Call("send", SendParams(recipient="bob", message="hi"), 7, False)


def test_a_request_without_id_is_a_notification() -> None:
    call = _one(b'{"jsonrpc":"2.0","method":"version"}')
    assert isinstance(call, rpc.Call) and call.notification and call.id is None


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", rpc.PARSE_ERROR),
        (b'"a string"', rpc.INVALID_REQUEST),
        (b'{"jsonrpc":"1.0","id":1,"method":"version"}', rpc.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"version"}', rpc.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"version","extra":1}', rpc.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"nope"}', rpc.METHOD_NOT_FOUND),
        (b'{"jsonrpc":"2.0","id":1,"method":"talk","params":["bob"]}', rpc.INVALID_PARAMS),
        (b'{"jsonrpc":"2.0","id":1,"method":"talk","params":{}}', rpc.INVALID_PARAMS),
        (b'{"jsonrpc":"2.0","id":1,"method":"talk","params":{"recipient":5}}', rpc.INVALID_PARAMS),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"talk","params":{"recipient":"bob","x":1}}',
            rpc.INVALID_PARAMS,
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"talk","params":{"recipient":"../etc"}}',
            rpc.INVALID_PARAMS,
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"history","params":{"peer":"bob","limit":100000}}',
            rpc.INVALID_PARAMS,
        ),
    ],
)
def test_bad_requests_get_the_standard_code(line: bytes, code: int) -> None:
    assert _failed(line).error.code == code


def test_an_error_keeps_the_request_id_and_says_the_cli_exit_code() -> None:
    failed = _failed(b'{"jsonrpc":"2.0","id":"abc","method":"nope"}')
    answer = json.loads(rpc.error(failed.id, failed.error))
    assert answer["id"] == "abc"
    assert answer["error"]["code"] == rpc.METHOD_NOT_FOUND
    assert answer["error"]["data"] == {"exit_code": 2}
    refused = json.loads(rpc.error(3, rpc.RpcError(rpc.REFUSED, "no session", "refused")))
    assert refused["error"] == {
        "code": -32001,
        "message": "no session",
        "data": {"exit_code": 1, "reason": "refused"},
    }


def test_a_batch_is_answered_item_by_item() -> None:
    line = (
        b'[{"jsonrpc":"2.0","id":1,"method":"version"},'
        b'{"jsonrpc":"2.0","id":2,"method":"nope"},'
        b'{"jsonrpc":"2.0","method":"version"}]'
    )
    incoming = rpc.parse(line, PARAMS)
    assert incoming.batch
    first, second, third = incoming.items
    assert isinstance(first, rpc.Call) and first.id == 1
    assert isinstance(second, rpc.Failed) and second.error.code == rpc.METHOD_NOT_FOUND
    assert isinstance(third, rpc.Call) and third.notification
    assert rpc.parse(b"[]", PARAMS).items[0].error.code == rpc.INVALID_REQUEST  # type: ignore[union-attr]
    too_many = b"[" + b",".join([b'{"jsonrpc":"2.0","id":1,"method":"version"}'] * 65) + b"]"
    assert _failed(too_many).error.code == rpc.INVALID_REQUEST
    assert rpc.batch([]) == b""
    assert json.loads(rpc.batch([rpc.result(1, {}), rpc.result(2, [])])) == [
        {"jsonrpc": "2.0", "result": {}, "id": 1},
        {"jsonrpc": "2.0", "result": [], "id": 2},
    ]


def test_notifications_and_results_are_one_json_line() -> None:
    note = rpc.notification("receive", {"type": "message", "text": "a\nb"})
    assert note.endswith(b"\n") and note.count(b"\n") == 1
    assert json.loads(note) == {
        "jsonrpc": "2.0",
        "method": "receive",
        "params": {"type": "message", "text": "a\nb"},
    }


def test_lines_are_cut_across_chunks_and_an_overlong_one_is_refused() -> None:
    splitter = rpc.LineSplitter(limit=16)
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b"1}\n\n{}\n{") == [b'{"a":1}', b"{}"]
    assert splitter.feed(b"}\n") == [b"{}"]
    with pytest.raises(rpc.LineTooLong):
        splitter.feed(b"x" * 17)
    with pytest.raises(rpc.LineTooLong):
        rpc.LineSplitter(limit=4).feed(b"12345\n")


def test_params_structs_refuse_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"recipient": "bob", "extra": 1}, PeerParams)
