"""securechat-cli as a script would use it: two users, a session, messages both ways."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from securechat.client.cli import build_parser
from securechat.client.cli import main as cli_main
from securechat.errors import SessionError
from securechat.server.app import RelayServer
from tests.client.helpers import clients, secure, swap_bundle_once
from tests.procs import RelayProcess

PASSWORD = "correct horse battery"


def cli(
    relay: RelayProcess,
    home: Path,
    user: str,
    *args: str,
    password: str = PASSWORD,
    stdin: str | None = None,
):
    env = {**os.environ, "SECURECHAT_PASSWORD": password}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "securechat.client.cli",
            "--server",
            relay.url,
            "--data-dir",
            str(home),
            "--user",
            user,
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        input=stdin,
    )


@pytest.fixture
def running_relay(tmp_path: Path):
    relay = RelayProcess(tmp_path / "relay").start()
    yield relay
    relay.kill()


def test_cli_walkthrough(running_relay: RelayProcess, tmp_path: Path) -> None:
    """register, sharekey, talk, send and receive --json, as documented in the README."""
    a, b = tmp_path / "alice", tmp_path / "bob"
    reg = cli(running_relay, a, "alice", "register")
    assert reg.returncode == 0, reg.stderr
    assert "recovery code" in reg.stdout
    assert cli(running_relay, b, "bob", "register").returncode == 0
    assert cli(running_relay, a, "alice", "sharekey", "bob").returncode == 0
    assert cli(running_relay, b, "bob", "sharekey", "alice").returncode == 0
    talk = cli(running_relay, a, "alice", "talk", "bob")
    assert talk.returncode == 0 and "pending" in talk.stdout, talk.stderr
    assert cli(running_relay, b, "bob", "receive", "--wait", "1").returncode == 0
    sent = cli(running_relay, a, "alice", "send", "bob", "hello from a script")
    assert sent.returncode == 0, sent.stderr
    got = cli(running_relay, b, "bob", "receive", "--wait", "1", "--json")
    messages = [json.loads(line) for line in got.stdout.splitlines()]
    texts = [m["text"] for m in messages if m["type"] == "message"]
    assert texts == ["hello from a script"]
    reply = cli(running_relay, b, "bob", "send", "alice", "got it")
    assert reply.returncode == 0, reply.stderr
    back = cli(running_relay, a, "alice", "receive", "--wait", "1")
    assert "bob: got it" in back.stdout
    verify_a = cli(running_relay, a, "alice", "verify", "bob").stdout.splitlines()[1:]
    verify_b = cli(running_relay, b, "bob", "verify", "alice").stdout.splitlines()[1:]
    assert verify_a == verify_b and verify_a


def test_cli_json_output_and_a_message_from_stdin(
    running_relay: RelayProcess, tmp_path: Path
) -> None:
    """Every command answers one JSON object with --json; `send PEER -` reads stdin."""
    a, b = tmp_path / "alice", tmp_path / "bob"

    def run(home: Path, user: str, *args: str, stdin: str | None = None) -> dict[str, object]:
        done = cli(running_relay, home, user, *args, "--json", stdin=stdin)
        assert done.returncode == 0, done.stderr
        value: dict[str, object] = json.loads(done.stdout)
        return value

    assert str(run(a, "alice", "register")["recovery_code"]).count("-") >= 3
    run(b, "bob", "register")
    assert run(a, "alice", "sharekey", "bob")["peer"] == "bob"
    run(b, "bob", "sharekey", "alice")
    assert run(a, "alice", "talk", "bob") == {"peer": "bob", "state": "pending"}
    cli(running_relay, b, "bob", "receive", "--wait", "1")
    sent = run(a, "alice", "send", "bob", "-", stdin="two lines\nfrom a pipe\n")
    got = cli(running_relay, b, "bob", "receive", "--wait", "1", "--json")
    messages = [json.loads(line) for line in got.stdout.splitlines()]
    texts = [m["text"] for m in messages if m["type"] == "message"]
    assert texts == ["two lines\nfrom a pipe"] and sent["peer"] == "bob"
    assert run(a, "alice", "verify", "bob")["pinned"] == run(b, "bob", "verify", "alice")["pinned"]
    refused = cli(running_relay, a, "alice", "send", "carol", "hi", "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stderr)["error"]["exit_code"] == 1


def test_cli_errors_have_documented_exit_codes(running_relay: RelayProcess, tmp_path: Path) -> None:
    """Wrong password, no session, unreachable relay and bad usage each exit distinctly."""
    home = tmp_path / "carol"
    assert cli(running_relay, home, "carol", "register").returncode == 0
    wrong = cli(running_relay, home, "carol", "login", password="not my password")
    assert wrong.returncode == 4 and "does not unlock" in wrong.stderr
    nosession = cli(running_relay, home, "carol", "send", "dave", "hi")
    assert nosession.returncode == 1 and "talk dave" in nosession.stderr
    nobody = cli(running_relay, home, "carol", "talk", "nobody")
    assert nobody.returncode == 1 and "nobody" in nobody.stderr
    assert "(not_found)" not in nobody.stderr
    debug = cli(running_relay, home, "carol", "--debug", "talk", "nobody")
    assert debug.stderr == nobody.stderr.rstrip("\n") + " (not_found)\n"
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "securechat.client.cli",
            "--server",
            "ws://127.0.0.1:9",
            "--data-dir",
            str(home),
            "--user",
            "carol",
            "login",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SECURECHAT_PASSWORD": PASSWORD},
    )
    assert down.returncode == 3 and "cannot reach the relay" in down.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "securechat.client.cli", "login"], capture_output=True, text=True
    )
    assert usage.returncode == 2


def test_cli_file_transfer(running_relay: RelayProcess, tmp_path: Path) -> None:
    """send-file and download move a file end to end; receive shows the offer."""
    a, b = tmp_path / "alice", tmp_path / "bob"
    for home, user in ((a, "alice"), (b, "bob")):
        assert cli(running_relay, home, user, "register").returncode == 0
    assert cli(running_relay, b, "bob", "sharekey", "alice").returncode == 0
    assert cli(running_relay, a, "alice", "talk", "bob").returncode == 0
    assert cli(running_relay, b, "bob", "receive", "--wait", "1").returncode == 0
    source = tmp_path / "photo.jpg"
    source.write_bytes(os.urandom(200_000))
    sent = cli(running_relay, a, "alice", "send-file", "bob", str(source))
    assert sent.returncode == 0, sent.stderr
    offers = [
        json.loads(line)
        for line in cli(
            running_relay, b, "bob", "receive", "--wait", "1", "--json"
        ).stdout.splitlines()
    ]
    [offer] = [o for o in offers if o["type"] == "file"]
    assert offer["name"] == "photo.jpg" and offer["size"] == 200_000
    # `--`: a file id is URL-safe base64 and starts with "-" one time in 64.
    got = cli(
        running_relay, b, "bob", "download", "--to", str(tmp_path / "dl"), "--", offer["file_id"]
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "dl" / "photo.jpg").read_bytes() == source.read_bytes()


def test_a_stuck_session_is_a_warning_that_names_the_cure() -> None:
    """`receive` prints a jammed session as a warning with the command that fixes it."""
    from securechat.client.events import ConversationChanged, ConversationState
    from securechat.client.render import describe

    described = describe(ConversationChanged("bob", ConversationState.JAMMED))
    assert described is not None
    assert described.text == (
        "WARNING: the session with bob is stuck (they sent more than the skip limit ahead); "
        "run `talk bob` to start a new one"
    )
    assert described.fields["state"] == "jammed"


async def test_cli_verify_and_reject_a_forged_key_change(
    relay: RelayServer, relay_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`verify` labels both numbers while a change is pending; `reject` keeps the pinned key."""
    monkeypatch.setenv("SECURECHAT_PASSWORD", PASSWORD)
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, _):
        await secure(alice, bob)
        swap_bundle_once(relay, victim="bob", attacker="carol")
        with pytest.raises(SessionError):
            await alice.talk("bob")
        await alice.close()
        base = ["--server", relay_url, "--data-dir", str(tmp_path / "alice"), "--user", "alice"]

        async def run(*args: str) -> tuple[int, str, str]:
            code = await asyncio.to_thread(cli_main, [*base, *args])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, _ = await run("verify", "bob")
        assert code == 0 and "PINNED key" in out and "NEW key offered for bob" in out
        code, out, _ = await run("reject", "bob")
        assert code == 0 and "kept bob's pinned key" in out
        code, out, _ = await run("verify", "bob")
        assert code == 0 and "NEW key" not in out and len(out.splitlines()) == 2
        code, _, err = await run("reject", "bob")
        assert code == 1 and "no new key to reject" in err
    assert "reject" in build_parser().format_help()


def test_receive_shows_both_times_and_flags_a_disagreement() -> None:
    """`receive --json` carries the sender's and the relay's time; text output warns."""
    from securechat.client.conversation import ConversationId
    from securechat.client.events import MessageReceived
    from securechat.client.render import describe

    event = MessageReceived(
        ConversationId.direct("alice"), "alice", "hi", 1_700_000_000.0, 7, 1_699_000_000.0, True
    )
    described = describe(event)
    assert described is not None
    fields = described.fields
    assert (fields["ts"], fields["received_ts"], fields["clocks_disagree"], fields["id"]) == (
        1_700_000_000.0,
        1_699_000_000.0,
        True,
        7,
    )
    assert "relay says received" in described.text
    calm = describe(
        MessageReceived(
            ConversationId.direct("alice"),
            "alice",
            "hi",
            1_700_000_000.0,
            7,
            1_700_000_001.0,
            False,
        )
    )
    assert calm is not None and calm.text == "alice: hi"


def test_receive_reports_missing_messages() -> None:
    """A gap the relay left is a line of its own, in text and in JSON."""
    from securechat.client.events import MessagesMissing
    from securechat.client.render import describe

    described = describe(MessagesMissing("bob", 2))
    assert described is not None
    assert described.text == "2 messages from bob are missing"
    assert described.fields == {
        "type": "missing",
        "from": "bob",
        "count": 2,
    }


async def test_receive_prints_what_arrived_while_it_closed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A message stored (and acknowledged) after the deadline is still printed, not lost."""
    from securechat.client.cli import _receive
    from securechat.client.conversation import ConversationId
    from securechat.client.events import MessageReceived

    class Closing:
        """Only what `_receive` uses: a message lands while the connection closes."""

        def __init__(self) -> None:
            self.events: asyncio.Queue[object] = asyncio.Queue()

        async def settle(self) -> None:
            return None

        async def close(self) -> None:
            self.events.put_nowait(
                MessageReceived(ConversationId.direct("alice"), "alice", "late", 1.0, 9, 1.0, False)
            )

    assert await _receive(Closing(), 0.05, True) == 0  # type: ignore[arg-type]
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["text"], p["id"]) for p in printed] == [("late", 9)]


async def test_cli_login_after_an_operator_reset_takes_the_old_password_from_the_env(
    relay: RelayServer, relay_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Without SECURECHAT_OLD_PASSWORD it says what to do (exit 4); with it, it re-wraps once."""
    async with clients(relay_url, tmp_path, "alice"):
        pass
    token = await relay.accounts.issue_reset_token("alice")
    base = ["--server", relay_url, "--data-dir", str(tmp_path / "alice"), "--user", "alice"]
    monkeypatch.setenv("SECURECHAT_PASSWORD", "a brand new passphrase")

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli_main, [*base, *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await run("reset", "alice", token)
    assert code == 0, err
    assert "next login asks once for the previous password" in out
    code, _, err = await run("login")
    assert code == 4 and "SECURECHAT_OLD_PASSWORD" in err and "previous password" in err
    monkeypatch.setenv("SECURECHAT_OLD_PASSWORD", PASSWORD)
    code, out, err = await run("login")
    assert code == 0, err
    assert "now locked under the new password" in out
    monkeypatch.delenv("SECURECHAT_OLD_PASSWORD")
    code, out, err = await run("login")
    assert code == 0 and "logged in as alice" in out, err


def test_json_errors_carry_the_clients_stable_code(capsys: pytest.CaptureFixture[str]) -> None:
    """A refusal of the client itself (not the relay's) reaches scripts as a code, too."""
    import argparse

    from securechat.client.cli import _fail
    from securechat.errors import ClientErrorCode, ConnectionLost, SessionError

    args = argparse.Namespace(json=True, debug=False)
    refusal = SessionError("no secure session with dave", ClientErrorCode.NO_SESSION)
    assert _fail(args, refusal, 1) == 1
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "no_session"
    _fail(args, ConnectionLost("cannot reach the relay"), 3)
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "unreachable"


def test_cli_group_walkthrough(running_relay: RelayProcess, tmp_path: Path) -> None:
    """group-create, group-send and receive --json between three CLI users, then a removal."""
    homes = {name: tmp_path / name for name in ("alice", "bob", "carol")}
    for name, home in homes.items():
        assert cli(running_relay, home, name, "register").returncode == 0
    created = cli(running_relay, homes["alice"], "alice", "group-create", "team", "bob", "--json")
    assert created.returncode == 0, created.stderr
    group = json.loads(created.stdout)["group"]
    sent = cli(running_relay, homes["alice"], "alice", "group-send", "team", "hello team")
    assert sent.returncode == 0, sent.stderr
    got = cli(running_relay, homes["bob"], "bob", "receive", "--wait", "1", "--json")
    lines = [json.loads(line) for line in got.stdout.splitlines()]
    messages = [
        (m["group"], m["group_name"], m["from"], m["text"]) for m in lines if m["type"] == "message"
    ]
    assert messages == [(group, "team", "alice", "hello team")]
    invited = cli(running_relay, homes["alice"], "alice", "group-invite", group, "carol")
    assert invited.returncode == 0, invited.stderr
    assert cli(running_relay, homes["carol"], "carol", "receive", "--wait", "1").returncode == 0
    removed = cli(running_relay, homes["alice"], "alice", "group-remove", "team", "bob", "--json")
    assert json.loads(removed.stdout)["members"] == ["alice", "carol"]
    members = cli(running_relay, homes["carol"], "carol", "group-members", "team")
    assert [line.split()[0] for line in members.stdout.splitlines()] == ["alice", "carol"]
    refused = cli(running_relay, homes["carol"], "carol", "group-remove", "team", "alice", "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stderr)["error"]["code"] == "not_admin"
