"""`securechat-cli`'s group commands: a group is named by its id or its name.

Each command returns what cli.py prints: a line for a person and the fields of
its `--json` object. `group-send-file` stays in cli.py, with the progress line
every transfer draws.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from securechat.client.api import ChatAPI, GroupInfo
from securechat.errors import ClientError, ClientErrorCode

COMMANDS = frozenset(
    {"group-create", "group-invite", "group-remove", "group-admin", "group-leave"}
    | {"group-members"}
    | {"group-send", "groups"}
)
_GROUP = "the group's id or its name"


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    create = command("group-create", "create a group with you as its admin")
    create.add_argument("name")
    create.add_argument("users", nargs="*", help="the first members")
    for name, text in [
        ("group-invite", "add a user to a group (admins)"),
        ("group-remove", "remove a user from a group (admins)"),
        ("group-admin", "make a member an admin (admins)"),
    ]:
        change = command(name, text)
        change.add_argument("group", help=_GROUP)
        change.add_argument("member", help="the user (not --user: that is you)")
    for name, text in [
        ("group-leave", "leave a group; its history stays here"),
        ("group-members", "list a group's members, fingerprints and admins"),
    ]:
        command(name, text).add_argument("group", help=_GROUP)
    send = command("group-send", "send an end-to-end encrypted message to a group")
    send.add_argument("group", help=_GROUP)
    send.add_argument("text", help="the message; - reads it from stdin")
    send_file = command("group-send-file", "send an encrypted file to a group")
    send_file.add_argument("group", help=_GROUP)
    send_file.add_argument("path")
    command("groups", "list the groups you are in")


async def run(
    client: ChatAPI, args: argparse.Namespace, text: Callable[[str], str]
) -> tuple[str, dict[str, Any]]:
    """`text` reads a message argument (`-`: stdin)."""
    if args.command == "group-create":
        info = await client.create_group(args.name, args.users)
        await client.settle()
        names = ", ".join(m.user for m in info.members)
        return f"created {info.name} ({info.group_id}) with {names}", _fields(info)
    await settled(client)
    if args.command == "groups":
        groups = client.groups()
        lines = [f"{g.group_id}  {g.name}  ({len(g.members)} members)" for g in groups]
        return "\n".join(lines), {"groups": [_fields(g) for g in groups]}
    gid = group_id(client, args.group)
    match args.command:
        case "group-invite":
            return await _changed(client, client.group_invite(gid, args.member), "added")
        case "group-remove":
            return await _changed(client, client.group_remove(gid, args.member), "removed")
        case "group-admin":
            return await _changed(client, client.group_make_admin(gid, args.member), "promoted")
        case "group-leave":
            await client.group_leave(gid)
            await client.settle()
            return f"left {args.group}; the next member to commit removes you", {"group": gid}
        case "group-members":
            members = client.group_members(gid)
            lines = [
                f"{m.user}  {m.fingerprint}{'  ✓' if m.verified else ''}"
                f"{'  admin' if m.admin else ''}"
                for m in members
            ]
            return "\n".join(lines), {
                "group": gid,
                "members": [dataclasses.asdict(m) for m in members],
            }
    eid = await client.group_send_text(gid, text(args.text))
    await client.settle()
    return f"sent {eid}", {"id": eid, "group": gid}


def group_id(client: ChatAPI, ref: str) -> str:
    """A group named by its id or, when no id matches and one group has it, its name."""
    groups = client.groups()
    if any(g.group_id == ref for g in groups):
        return ref
    named = [g.group_id for g in groups if g.name == ref]
    if len(named) > 1:
        raise ClientError(
            f"{len(named)} groups are named {ref}: name one by its id (`groups`)",
            ClientErrorCode.NO_GROUP,
        )
    return named[0] if named else ref


async def settled(client: ChatAPI) -> None:
    """Lets queued group deliveries land first: a change built on a stale epoch would
    only meet a conflict."""
    await asyncio.sleep(0.2)
    await client.settle()


async def _changed(
    client: ChatAPI, change: Awaitable[GroupInfo], verb: str
) -> tuple[str, dict[str, Any]]:
    info = await change
    await client.settle()
    members = ", ".join(m.user for m in info.members)
    return f"{verb}; {info.name} now has {members}", _fields(info)


def _fields(info: GroupInfo) -> dict[str, Any]:
    return {
        "group": info.group_id,
        "name": info.name,
        "topic": info.topic,
        "epoch": info.epoch,
        "members": [m.user for m in info.members],
        "admins": [m.user for m in info.members if m.admin],
        "key_changed": list(info.key_changed),
    }
