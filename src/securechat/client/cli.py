"""`securechat-cli`: the client core's command-line face, for scripts, bots and tests.

Each run unlocks the vault, resumes (or opens) the relay session, does one
thing and leaves. The password comes from SECURECHAT_PASSWORD or a prompt,
never from the command line, where other users could read it in `ps`. After
an operator reset, the previous password or the recovery code (needed once, to
unlock this device's history) comes from SECURECHAT_OLD_PASSWORD or a prompt.

Exit codes: 0 success; 1 the relay or the client refused (the message says
why); 2 bad usage; 3 cannot reach the relay; 4 wrong password or locked vault.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from securechat import __version__
from securechat.client import cli_groups
from securechat.client.api import ChatAPI
from securechat.client.core import ChatClient
from securechat.client.events import Event, TransferProgress
from securechat.client.render import describe
from securechat.crypto.errors import WrongPassword
from securechat.daemon import main as daemon_main
from securechat.errors import ConfigError, ConnectionLost, SecureChatError, VaultBehind, explain
from securechat.scanner.report import format_verdict

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_LOCKED = 0, 1, 2, 3, 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securechat-cli",
        description="Scriptable securechat client. Password: SECURECHAT_PASSWORD or a prompt.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--server", default=os.environ.get("SECURECHAT_SERVER", "ws://127.0.0.1:8765")
    )
    parser.add_argument("--data-dir", default=None, help="client data (default: platformdirs)")
    parser.add_argument("--user", default=os.environ.get("SECURECHAT_USER"), help="your username")
    parser.add_argument("--pin", default=None, help="SHA-256 of the relay's TLS certificate")
    parser.add_argument(
        "--password-file", default=None, help="read the password from this file's first line"
    )
    parser.add_argument(
        "--debug", action="store_true", help="add the relay's error code to error messages"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[common])

    command("register", "create the account; prints the recovery code once")
    command("login", "check the password and open a session")
    send = command("send", "send an end-to-end encrypted message")
    send.add_argument("peer")
    send.add_argument("text", help="the message; - reads it from stdin")
    receive = command("receive", "print what arrives (one JSON object a line)")
    receive.add_argument("--wait", type=float, default=2.0, help="seconds to listen")
    send_file = command("send-file", "send an encrypted file (25 MB at most)")
    send_file.add_argument("peer")
    send_file.add_argument("path")
    download = command("download", "fetch, verify and save a file offered to you")
    download.add_argument("file_id")
    download.add_argument("--to", default=None, help="folder (default: the downloads folder)")
    scan = command("scan", "check a link (private hash-prefix lookup by default)")
    scan.add_argument("url")
    scan.add_argument("--full", action="store_true", help="ask VirusTotal/OTX via the relay")
    scan.add_argument(
        "--submit", action="store_true", help="with --full: let VirusTotal analyse it"
    )
    command("logout", "revoke this device's session")
    reset = command("reset", "reset the password with a recovery code or token")
    reset.add_argument("username")
    reset.add_argument("token")
    command("delete-account", "delete the account on the relay and this vault")
    daemon = command("daemon", "stay connected and serve JSON-RPC 2.0 (docs/scripting.md)")
    where = daemon.add_mutually_exclusive_group()
    where.add_argument("--socket", default=None, help="Unix socket (default: runtime dir)")
    where.add_argument("--stdio", action="store_true", help="requests on stdin, answers on stdout")
    where.add_argument("--tcp", default=None, metavar="127.0.0.1:PORT", help="loopback TCP")
    daemon.add_argument("--token-file", default=None, help="with --tcp: the token clients send")
    cli_groups.add_commands(command)
    for name, text in [
        ("sharekey", "send your identity key to a user"),
        ("talk", "start an end-to-end session with a user"),
        ("verify", "print the safety number(s) to compare out of band"),
        ("trust", "accept a user's new identity key (after verify)"),
        ("reject", "keep a user's pinned key and reject the new one offered"),
    ]:
        command(name, text).add_argument("peer")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "reset" and not args.user:
        print("securechat-cli: --user NAME is required (or SECURECHAT_USER)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return EXIT_REFUSED


def _password(prompt: str = "password: ", file: str | None = None) -> str:
    if file:
        try:
            with open(file, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the password file: {exc.strerror}") from exc
    value = os.environ.get("SECURECHAT_PASSWORD")
    if value:
        return value
    if not sys.stdin.isatty():
        raise SecureChatError("set SECURECHAT_PASSWORD or run in a terminal to be asked")
    return getpass.getpass(prompt)


async def _run(args: argparse.Namespace) -> int:
    client = ChatClient(
        args.server, args.data_dir, pin_sha256=args.pin, reconnect=args.command == "daemon"
    )
    try:
        await client.connect()
        return await _dispatch(client, args)
    except ConnectionLost as exc:
        return _fail(args, exc, EXIT_UNREACHABLE)
    except WrongPassword as exc:
        return _fail(args, exc, EXIT_LOCKED)
    except ConfigError as exc:
        return _fail(args, exc, EXIT_USAGE)
    except VaultBehind as exc:
        reason = f"{exc} Set SECURECHAT_OLD_PASSWORD, or run in a terminal to be asked."
        return _fail(args, SecureChatError(reason), EXIT_LOCKED)
    except SecureChatError as exc:
        return _fail(args, exc, EXIT_REFUSED)
    finally:
        await client.close()


def _fail(args: argparse.Namespace, exc: Exception, code: int) -> int:
    """The sentence on stderr (`--debug` adds the relay's code); with --json a JSON line
    `{"error": {"message", "code", "exit_code"}}` that keeps the code for scripts."""
    if args.json:
        error = {"message": str(exc), "code": getattr(exc, "code", ""), "exit_code": code}
        print(json.dumps({"error": error}), file=sys.stderr)
    else:
        print(f"securechat-cli: {explain(exc, args.debug)}", file=sys.stderr)
    return code


@dataclass(frozen=True, slots=True)
class Out:
    """What a command prints: `text` for a person, `fields` (one JSON object) with --json."""

    text: str
    fields: dict[str, Any]


async def _dispatch(client: ChatAPI, args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "register":
        chosen = _password("choose a password: ", args.password_file)
        code = await client.register(args.user, chosen)
        text = f"registered {args.user}\nrecovery code (shown once; keep it offline): {code}"
        return _print(args, Out(text, {"user": args.user, "recovery_code": code}))
    if command == "reset":
        new_code = await client.reset_password(
            args.username, args.token, _password("new password: ", args.password_file)
        )
        text = "password reset; every session was logged out"
        if new_code:
            text += f"\nnew recovery code (the old one is used up): {new_code}"
        else:
            text += (
                "\nan operator's token cannot open this device's history: the next login asks "
                "once for the previous password or the recovery code (SECURECHAT_OLD_PASSWORD)"
            )
        return _print(args, Out(text, {"user": args.username, "recovery_code": new_code}))
    password = _password(file=args.password_file)
    if command == "daemon":
        await daemon_main.run(client, args.user, password, _listen(args))
        return EXIT_OK
    await _unlock(client, args.user, password, announce=not args.json)
    if command == "receive":
        return await _receive(client, args.wait, args.json)
    actions: dict[str, Callable[[], Awaitable[Out]]] = {
        "login": lambda: _out(f"logged in as {args.user}", user=args.user),
        "logout": lambda: _then(client.logout(), "logged out"),
        "delete-account": lambda: _then(client.delete_account(password), "account deleted"),
        "send": lambda: _send(client, args.peer, _text(args.text)),
        "scan": lambda: _scan(client, args.url, args.full, args.submit),
        "send-file": lambda: _transfer(
            client, client.send_file(args.peer, args.path), "sent", "file_id"
        ),
        "download": lambda: _transfer(
            client, client.download(args.file_id, args.to), "saved", "path"
        ),
        "group-send-file": lambda: _group_file(client, args.group, args.path),
        "sharekey": lambda: _sharekey(client, args.peer),
        "talk": lambda: _talk(client, args.peer),
        "verify": lambda: _verify(client, args.peer),
        "trust": lambda: _out(
            f"trusted {args.peer}'s key {(key := client.trust(args.peer))}",
            peer=args.peer,
            fingerprint=key,
        ),
        "reject": lambda: _out(
            f"kept {args.peer}'s pinned key {(key := client.reject(args.peer))}; "
            "the new key is rejected",
            peer=args.peer,
            fingerprint=key,
        ),
    }
    if command in cli_groups.COMMANDS:
        text, fields = await cli_groups.run(client, args, _text)
        return _print(args, Out(text, fields))
    return _print(args, await actions[command]())


async def _unlock(client: ChatAPI, user: str, password: str, announce: bool) -> None:
    """After an operator reset the vault needs the previous password or the recovery code.

    It comes from SECURECHAT_OLD_PASSWORD or, in a terminal, a prompt; the vault
    is then re-wrapped under the new password, so this happens once.
    """
    previous = os.environ.get("SECURECHAT_OLD_PASSWORD") or None
    try:
        await client.unlock_and_resume(user, password, previous)
    except VaultBehind:
        if previous is not None or not sys.stdin.isatty():
            raise
        print(
            "the relay took the new password; this device's history is still locked "
            "under the previous one",
            file=sys.stderr,
        )
        previous = getpass.getpass("previous password or recovery code: ")
        await client.connect()
        await client.unlock_and_resume(user, password, previous)
    if previous is not None and announce:
        print("your history here is unlocked, and now locked under the new password")


def _print(args: argparse.Namespace, out: Out) -> int:
    print(json.dumps(out.fields) if args.json else out.text)
    return EXIT_OK


def _text(value: str) -> str:
    """`-` reads the message from stdin, so a pipe can send what a script produced."""
    if value != "-":
        return value
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


def _listen(args: argparse.Namespace) -> daemon_main.Listen:
    return daemon_main.Listen(
        socket=Path(args.socket) if args.socket else None,
        stdio=args.stdio,
        tcp=daemon_main.parse_tcp(args.tcp) if args.tcp else None,
        token_file=args.token_file,
    )


async def _out(text: str, **fields: Any) -> Out:
    return Out(text, fields)


async def _then(action: Awaitable[None], text: str) -> Out:
    await action
    return Out(text, {})


async def _send(client: ChatAPI, peer: str, text: str) -> Out:
    await asyncio.sleep(0.2)  # let queued envelopes (e.g. the session reply) arrive first
    eid = await client.send_text(peer, text)
    await client.settle()
    return Out(f"sent {eid}", {"id": eid, "peer": peer})


async def _scan(client: ChatAPI, url: str, full: bool, submit: bool) -> Out:
    verdict = await client.scan(url, full=full, submit=submit)
    return Out(format_verdict(verdict), msgspec.to_builtins(verdict))


async def _transfer(client: ChatAPI, action: Awaitable[object], verb: str, key: str) -> Out:
    """Runs a transfer while drawing a progress line on a terminal."""
    await asyncio.sleep(0.2)  # let queued envelopes (session replies, offers) arrive first
    task = asyncio.ensure_future(action)
    show = sys.stderr.isatty()
    while not task.done():
        try:
            event = await asyncio.wait_for(client.events.get(), 0.2)
        except TimeoutError:
            continue
        if show and isinstance(event, TransferProgress) and event.total:
            percent = 100 * event.done / event.total
            print(f"\r{percent:5.1f}% of {event.total / 1e6:.1f} MB", end="", file=sys.stderr)
    if show:
        print(file=sys.stderr)
    result = task.result()
    await client.settle()
    return Out(f"{verb} {result}", {key: str(result)})


async def _sharekey(client: ChatAPI, peer: str) -> Out:
    fingerprint = await client.sharekey(peer)
    text = f"sent your key to {peer}; your fingerprint: {fingerprint}"
    return Out(text, {"peer": peer, "fingerprint": fingerprint})


async def _talk(client: ChatAPI, peer: str) -> Out:
    state = await client.talk(peer)
    await client.settle()
    return Out(f"session with {peer}: {state.value}", {"peer": peer, "state": state.value})


async def _verify(client: ChatAPI, peer: str) -> Out:
    numbers = client.verify(peer)
    fields = {"peer": peer, "pinned": numbers.pinned, "offered": numbers.offered}
    return Out(numbers.describe(), fields)


async def _group_file(client: ChatAPI, ref: str, path: str) -> Out:
    await cli_groups.settled(client)
    group_id = cli_groups.group_id(client, ref)
    return await _transfer(client, client.group_send_file(group_id, path), "sent", "file_id")


async def _receive(client: ChatAPI, wait: float, as_json: bool) -> int:
    """Prints what arrives for `wait` seconds, and then what arrived while closing.

    An envelope can land after the deadline, while receipts go out: it is stored
    and acknowledged, so the relay will not deliver it again. It is printed too,
    or a script polling with `receive` would never see that message.
    """

    names: dict[str, str] = {}

    def group_name(group_id: str) -> str:
        if group_id not in names:
            # After the close below the vault is shut: the names read before stay.
            with contextlib.suppress(SecureChatError):
                names.update({g.group_id: g.name for g in client.groups()})
        return names.get(group_id, "")

    def show(event: Event) -> None:
        described = describe(event, group_name)
        if described:
            line = json.dumps(described.fields) if as_json else described.text
            print(line, flush=True)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (remaining := deadline - loop.time()) > 0:
        try:
            show(await asyncio.wait_for(client.events.get(), remaining))
        except TimeoutError:
            break
    await client.settle()
    await client.close()
    while not client.events.empty():
        show(client.events.get_nowait())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
