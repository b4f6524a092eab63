"""`securechat-cli`: the client core's command-line face, for scripts, bots and tests.

Each run unlocks the vault, resumes (or opens) the relay session, does one
thing and leaves. The password comes from SECURECHAT_PASSWORD or a prompt,
never from the command line, where other users could read it in `ps`.

Exit codes: 0 success; 1 the relay or the client refused (the message says
why); 2 bad usage; 3 cannot reach the relay; 4 wrong password or locked vault.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from securechat import __version__
from securechat.client.core import ChatClient
from securechat.client.events import (
    ConversationChanged,
    DeliveryChanged,
    ErrorRaised,
    Event,
    FileOffered,
    KeyChanged,
    KeyKept,
    KeyShared,
    MessageReceived,
    MessagesMissing,
    PresenceChanged,
    TransferProgress,
)
from securechat.crypto.errors import WrongPassword
from securechat.errors import ConnectionLost, SecureChatError, explain
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
        "--debug", action="store_true", help="add the relay's error code to error messages"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("register", help="create the account; prints the recovery code once")
    sub.add_parser("login", help="check the password and open a session")
    send = sub.add_parser("send", help="send an end-to-end encrypted message")
    send.add_argument("peer")
    send.add_argument("text")
    receive = sub.add_parser("receive", help="print what arrives (one JSON object a line)")
    receive.add_argument("--wait", type=float, default=2.0, help="seconds to listen")
    receive.add_argument("--json", action="store_true", help="JSON lines instead of text")
    send_file = sub.add_parser("send-file", help="send an encrypted file (25 MB at most)")
    send_file.add_argument("peer")
    send_file.add_argument("path")
    download = sub.add_parser("download", help="fetch, verify and save a file offered to you")
    download.add_argument("file_id")
    download.add_argument("--to", default=None, help="folder (default: the downloads folder)")
    scan = sub.add_parser("scan", help="check a link (private hash-prefix lookup by default)")
    scan.add_argument("url")
    scan.add_argument("--full", action="store_true", help="ask VirusTotal/OTX via the relay")
    scan.add_argument(
        "--submit", action="store_true", help="with --full: let VirusTotal analyse it"
    )
    sub.add_parser("logout", help="revoke this device's session")
    reset = sub.add_parser("reset", help="reset the password with a recovery code or token")
    reset.add_argument("username")
    reset.add_argument("token")
    sub.add_parser("delete-account", help="delete the account on the relay and this vault")
    for name, text in [
        ("sharekey", "send your identity key to a user"),
        ("talk", "start an end-to-end session with a user"),
        ("verify", "print the safety number(s) to compare out of band"),
        ("trust", "accept a user's new identity key (after verify)"),
        ("reject", "keep a user's pinned key and reject the new one offered"),
    ]:
        sub.add_parser(name, help=text).add_argument("peer")
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


def _error(exc: SecureChatError, args: argparse.Namespace) -> None:
    """A sentence on stderr; `--json` makes it a JSON line with the code for scripts."""
    if getattr(args, "json", False):
        fields = {"type": "error", "message": str(exc), "code": getattr(exc, "code", "")}
        print(json.dumps(fields), file=sys.stderr)
    else:
        print(f"securechat-cli: {explain(exc, args.debug)}", file=sys.stderr)


def _password(prompt: str = "password: ") -> str:
    value = os.environ.get("SECURECHAT_PASSWORD")
    if value:
        return value
    if not sys.stdin.isatty():
        raise SecureChatError("set SECURECHAT_PASSWORD or run in a terminal to be asked")
    return getpass.getpass(prompt)


async def _run(args: argparse.Namespace) -> int:
    client = ChatClient(args.server, args.data_dir, pin_sha256=args.pin, reconnect=False)
    try:
        await client.connect()
        return await _dispatch(client, args)
    except ConnectionLost as exc:
        _error(exc, args)
        return EXIT_UNREACHABLE
    except WrongPassword as exc:
        _error(exc, args)
        return EXIT_LOCKED
    except SecureChatError as exc:
        _error(exc, args)
        return EXIT_REFUSED
    finally:
        await client.close()


async def _dispatch(client: ChatClient, args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "register":
        code = await client.register(args.user, _password("choose a password: "))
        print(f"registered {args.user}")
        print(f"recovery code (shown once; keep it offline): {code}")
        return EXIT_OK
    if command == "reset":
        new_code = await client.reset_password(
            args.username, args.token, _password("new password: ")
        )
        print("password reset; every session was logged out")
        if new_code:
            print(f"new recovery code (the old one is used up): {new_code}")
        return EXIT_OK
    password = _password()
    await client.unlock_and_resume(args.user, password)
    actions: dict[str, Callable[[], Awaitable[int]]] = {
        "login": lambda: _done(f"logged in as {args.user}"),
        "logout": lambda: _then(client.logout(), "logged out"),
        "delete-account": lambda: _then(client.delete_account(password), "account deleted"),
        "send": lambda: _send(client, args.peer, args.text),
        "scan": lambda: _scan(client, args.url, args.full, args.submit),
        "send-file": lambda: _transfer(client, client.send_file(args.peer, args.path), "sent"),
        "download": lambda: _transfer(client, client.download(args.file_id, args.to), "saved"),
        "receive": lambda: _receive(client, args.wait, args.json),
        "sharekey": lambda: _sharekey(client, args.peer),
        "talk": lambda: _talk(client, args.peer),
        "verify": lambda: _done(client.verify(args.peer).describe()),
        "trust": lambda: _done(f"trusted {args.peer}'s key {client.trust(args.peer)}"),
        "reject": lambda: _done(
            f"kept {args.peer}'s pinned key {client.reject(args.peer)}; the new key is rejected"
        ),
    }
    return await actions[command]()


async def _done(text: str) -> int:
    print(text)
    return EXIT_OK


async def _then(action: Awaitable[None], text: str) -> int:
    await action
    print(text)
    return EXIT_OK


async def _send(client: ChatClient, peer: str, text: str) -> int:
    await asyncio.sleep(0.2)  # let queued envelopes (e.g. the session reply) arrive first
    eid = await client.send_text(peer, text)
    await client.settle()
    print(f"sent {eid}")
    return EXIT_OK


async def _scan(client: ChatClient, url: str, full: bool, submit: bool) -> int:
    print(format_verdict(await client.scan(url, full=full, submit=submit)))
    return EXIT_OK


async def _transfer(client: ChatClient, action: Awaitable[object], verb: str) -> int:
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
    print(f"{verb} {result}")
    return EXIT_OK


async def _sharekey(client: ChatClient, peer: str) -> int:
    fingerprint = await client.sharekey(peer)
    print(f"sent your key to {peer}; your fingerprint: {fingerprint}")
    return EXIT_OK


async def _talk(client: ChatClient, peer: str) -> int:
    state = await client.talk(peer)
    await client.settle()
    print(f"session with {peer}: {state.value}")
    return EXIT_OK


async def _receive(client: ChatClient, wait: float, as_json: bool) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(client.events.get(), remaining)
        except TimeoutError:
            break
        line = _describe(event, as_json)
        if line:
            print(line, flush=True)
    await client.settle()
    return EXIT_OK


def _describe(event: Event, as_json: bool) -> str | None:
    fields: dict[str, Any]
    match event:
        case FileOffered():
            fields = {
                "type": "file",
                "from": event.peer,
                "file_id": event.file_id,
                "name": event.name,
                "size": event.size,
            }
            text = (
                f"{event.peer} offers {event.name} ({event.size} bytes): download {event.file_id}"
            )
        case MessageReceived():
            fields = {
                "type": "message",
                "from": event.peer,
                "text": event.text,
                "ts": event.ts,
                "received_ts": event.received_ts,
                "clocks_disagree": event.clocks_disagree,
            }
            text = f"{event.peer}: {event.text}"
            if event.clocks_disagree:
                text += (
                    f"  [sent {_clock(event.ts)}, relay says received {_clock(event.received_ts)}]"
                )
        case MessagesMissing():
            fields = {"type": "missing", "from": event.peer, "count": event.count}
            text = event.text
        case KeyShared():
            fields = {"type": "key", "from": event.peer, "fingerprint": event.fingerprint}
            text = f"{event.peer} shared their key {event.fingerprint}"
        case KeyChanged():
            fields = {
                "type": "key_changed",
                "peer": event.peer,
                "pinned": event.pinned_fingerprint,
                "offered": event.offered_fingerprint,
            }
            text = (
                f"WARNING: {event.peer}'s key changed; run `verify {event.peer}`, then "
                f"`reject {event.peer}` or `trust {event.peer}`"
            )
        case KeyKept():
            fields = {
                "type": "key_kept",
                "peer": event.peer,
                "pinned": event.pinned_fingerprint,
                "rejected": event.rejected_fingerprint,
                "by_peer": event.by_peer,
            }
            who = (
                f"{event.peer} shared their pinned key again"
                if event.by_peer
                else f"you kept {event.peer}'s pinned key"
            )
            text = (
                f"WARNING: {who}; the different key {event.rejected_fingerprint} "
                f"offered for {event.peer} is rejected"
            )
        case ConversationChanged():
            fields = {"type": "session", "peer": event.peer, "state": event.state.value}
            text = f"session with {event.peer}: {event.state.value}"
        case DeliveryChanged():
            fields = {
                "type": "delivery",
                "peer": event.peer,
                "eid": event.eid,
                "state": event.state.value,
            }
            text = f"message {event.eid} to {event.peer}: {event.state.value}"
        case PresenceChanged():
            fields = {"type": "presence", "user": event.user, "state": event.state}
            text = f"{event.user} is {event.state}"
        case ErrorRaised():
            fields = {"type": "error", "message": event.message, "code": event.code}
            text = f"error: {event.message}"
        case _:
            return None
    return json.dumps(fields) if as_json else _printable(text)


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _printable(text: str) -> str:
    """Control characters from other users never reach the terminal as escapes."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


if __name__ == "__main__":
    sys.exit(main())
