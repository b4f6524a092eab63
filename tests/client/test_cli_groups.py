"""The CLI's group commands over the `ChatAPI` (the in-memory fake client): what they
print, in text and JSON, and how a refusal exits. The real client behind them is
tested in tests/client/test_groups.py."""

from __future__ import annotations

import json

import pytest

from securechat.client.cli import EXIT_OK, EXIT_REFUSED, _dispatch, _fail, _receive, build_parser
from securechat.errors import SecureChatError
from tests.tui.fakes import FakeClient

PASSWORD = "correct horse battery"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    monkeypatch.setenv("SECURECHAT_PASSWORD", PASSWORD)
    monkeypatch.setattr("securechat.client.cli_groups.settled", _no_wait)
    return FakeClient(
        "ws://relay", accounts={"alice": PASSWORD, "bob": PASSWORD, "carol": PASSWORD}
    )


async def _no_wait(client: object) -> None:
    return None


async def run(fake: FakeClient, *argv: str) -> int:
    args = build_parser().parse_args(["--user", "alice", *argv])
    try:
        return await _dispatch(fake, args)
    except SecureChatError as exc:
        return _fail(args, exc, EXIT_REFUSED)


async def test_group_commands_print_what_they_did(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """create, invite, send, members and remove, by the group's name, as a script runs them."""
    assert await run(fake, "group-create", "team", "bob", "--json") == EXIT_OK
    created = json.loads(capsys.readouterr().out)
    assert (created["name"], created["members"], created["admins"]) == (
        "team",
        ["alice", "bob"],
        ["alice"],
    )
    assert await run(fake, "group-invite", "team", "carol") == EXIT_OK
    assert "team now has alice, bob, carol" in capsys.readouterr().out
    assert await run(fake, "group-send", created["group"], "hello all", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["group"] == created["group"]
    assert fake.sent[-1] == ("#" + created["group"], "hello all")
    assert await run(fake, "group-members", "team") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["alice", "bob", "carol"]
    assert lines[0].endswith("admin")
    assert await run(fake, "group-admin", "team", "carol") == EXIT_OK
    assert "promoted" in capsys.readouterr().out
    assert fake.group_members(created["group"])[2].admin
    assert await run(fake, "group-remove", "team", "bob", "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["members"] == ["alice", "carol"]


async def test_a_refused_group_command_exits_1_with_its_code(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not an admin: exit code 1 and, with --json, the stable code for scripts."""
    await fake.login("alice", PASSWORD)
    group_id = fake.invite_me("bob", "theirs", ["carol"])
    assert await run(fake, "group-remove", group_id, "carol", "--json") == EXIT_REFUSED
    error = json.loads(capsys.readouterr().err)["error"]
    assert (error["code"], error["exit_code"]) == ("not_admin", 1)
    assert await run(fake, "group-send", "no-such-group", "hi") == EXIT_REFUSED
    assert "not in a group" in capsys.readouterr().err


async def test_receive_json_names_the_group_and_the_sender(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group message in `receive --json` carries the group's id and name and its sender."""
    await fake.login("alice", PASSWORD)
    group_id = fake.invite_me("bob", "team", ["carol"])
    fake.receive_group(group_id, "carol", "hi alice")
    assert await _receive(fake, 0.05, True) == EXIT_OK
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    message = next(p for p in printed if p["type"] == "message")
    assert (message["group"], message["group_name"], message["from"], message["text"]) == (
        group_id,
        "team",
        "carol",
        "hi alice",
    )
    invite = next(p for p in printed if p["type"] == "group_invite")
    assert (invite["by"], invite["members"]) == ("bob", ["bob", "carol", "alice"])
