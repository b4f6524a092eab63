"""Fifty users in one group on one relay, through the client API in one process: the
three-user walkthrough of test_groups_relay.py at the size issue 20 asks for.

Fifty clients each make an RSA-3072 identity and a vault, so this runs in
`make soak` (`-m slow`), not `make test`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from tests.client.helpers import PASSWORD, clients

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

USERS = 50
DEADLINE = 60.0
"""Seconds any one step may take to reach every member."""


def texts(client: ChatClient, group_id: str) -> list[str]:
    """What the member's history shows from members (system lines have no sender)."""
    return [m.record.text for m in client.history("#" + group_id, limit=500) if m.record.sender]


async def until(what: str, check: Callable[[], bool]) -> None:
    """Polls `check` until it holds; a miss names the step that did not happen."""
    give_up = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > give_up:
            raise AssertionError(f"not within {DEADLINE:.0f} s: {what}")
        await asyncio.sleep(0.1)


def everyone_read(members: Sequence[ChatClient], gid: str, text: str) -> Callable[[], bool]:
    return lambda: all(text in texts(m, gid) for m in members)


async def test_fifty_users_create_message_invite_remove_and_catch_up(
    relay_url: str, tmp_path: Path
) -> None:
    """A group of 50 lives through every change; the removed member reads nothing that
    follows, and a member offline for five epochs reads everything when back."""
    names = [f"user{i:02d}" for i in range(USERS)]
    async with clients(relay_url, tmp_path, *names) as made:
        for member in made:
            await member.settle()
        admin, removed, away, late = made[0], made[1], made[2], made[-1]
        gid = (await admin.create_group("fifty", names[1:-1])).group_id
        inside = made[:-1]
        await until("49 members joined", lambda: all(m.groups() for m in inside))

        await asyncio.gather(
            *(m.group_send_text(gid, f"hello from {m.username}") for m in made[:5])
        )
        for sender in made[:5]:
            await until(
                f"{sender.username}'s hello read",
                everyone_read(inside, gid, f"hello from {sender.username}"),
            )

        await admin.group_invite(gid, names[-1])
        inside = made
        await until("the 50th joined", lambda: bool(late.groups()))
        await late.group_send_text(gid, "the late one is here")
        await until("the late one read", everyone_read(inside, gid, "the late one is here"))
        assert "hello from user00" not in texts(late, gid)  # joined after: no earlier epoch

        await admin.group_remove(gid, removed.username or "")
        inside = [m for m in made if m is not removed]
        await until("the removal seen", lambda: removed.groups() == [])
        await admin.group_send_text(gid, "after the removal")
        await until("read after the removal", everyone_read(inside, gid, "after the removal"))

        await away.close()
        online = [m for m in inside if m is not away]
        for n in range(5):
            await admin.group_rename(gid, f"fifty {n}")
            await online[n + 1].group_send_text(gid, f"epoch {n}")
        await until("five epochs read", everyone_read(online, gid, "epoch 4"))
        epochs = {m.groups()[0].epoch for m in online}
        assert len(epochs) == 1

        back = ChatClient(relay_url, tmp_path / names[2])
        try:
            await back.connect()
            await back.login(names[2], PASSWORD)
            await until("the absent member caught up", lambda: "epoch 4" in texts(back, gid))
            assert [t for t in texts(back, gid) if t.startswith("epoch")] == [
                f"epoch {n}" for n in range(5)
            ]
            assert back.groups()[0].name == "fifty 4"
            assert back.groups()[0].epoch in epochs
        finally:
            await back.close()

        await asyncio.sleep(0.5)
        read_by_removed = texts(removed, gid)
        assert "after the removal" not in read_by_removed
        assert not [t for t in read_by_removed if t.startswith("epoch")]
        sessions = [m._groups.store.session(gid) for m in online]
        assert len({s.mls.epoch_authenticator for s in sessions}) == 1
