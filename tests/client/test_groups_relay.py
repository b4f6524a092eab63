"""Groups end to end: real clients (`ChatClient`) on an in-process relay that serves
the group frames, as users meet them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from securechat.client.core import ChatClient
from securechat.client.events import (
    ErrorRaised,
    FileOffered,
    GroupChange,
    GroupChanged,
    GroupInvited,
    MessageReceived,
    PresenceChanged,
)
from securechat.client.groups import Groups
from securechat.errors import ClientErrorCode
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD, clients, drain, wait_for
from tests.conftest import fast_config


async def started(*members: ChatClient) -> None:
    """Key packages go out in the background after sign-in."""
    for member in members:
        await member.settle()


def texts(client: ChatClient, group_id: str) -> list[tuple[str, str]]:
    return [(m.record.sender, m.record.text) for m in client.history("#" + group_id, limit=500)]


async def test_three_users_create_message_invite_and_remove(relay_url: str, tmp_path: Path) -> None:
    """The life of a group on the relay; a removed member reads nothing that follows."""
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
        await started(alice, bob, carol)
        info = await alice.create_group("team", ["bob"])
        gid = info.group_id
        invited = await wait_for(bob, GroupInvited)
        assert (invited.by, invited.name, invited.pinned) == ("alice", "team", False)  # type: ignore[attr-defined]
        await alice.group_send_text(gid, "hello bob")
        got = await wait_for(bob, MessageReceived)
        assert (got.conversation.name, got.sender, got.text) == (gid, "alice", "hello bob")  # type: ignore[attr-defined]

        await alice.group_invite(gid, "carol")
        await wait_for(carol, GroupInvited)
        await wait_for(bob, GroupChanged, subject="carol")
        await carol.group_send_text(gid, "hi all")
        await wait_for(alice, MessageReceived, text="hi all")
        await wait_for(bob, MessageReceived, text="hi all")

        await alice.group_remove(gid, "bob")
        await wait_for(bob, GroupChanged, subject="bob")
        await wait_for(carol, GroupChanged, subject="bob")
        await alice.group_send_text(gid, "bob is gone")
        await wait_for(carol, MessageReceived, text="bob is gone")
        await asyncio.sleep(0.3)
        assert "bob is gone" not in [t for _, t in texts(bob, gid)]
        assert bob.groups() == []
        assert {m.user for m in carol.group_members(gid)} == {"alice", "carol"}
        assert texts(bob, gid)[-1] == ("", "alice removed bob")


async def test_a_group_we_were_removed_from_keeps_its_name(relay_url: str, tmp_path: Path) -> None:
    """`groups()` drops it, `group_names()` keeps it: its history stays and is shown by name."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await started(alice, bob)
        gid = (await alice.create_group("team", ["bob"])).group_id
        await wait_for(bob, GroupInvited)
        await alice.group_remove(gid, "bob")
        await wait_for(bob, GroupChanged, subject="bob")
        assert bob.groups() == []
        assert bob.group_names() == {gid: "team"}
        assert alice.group_names() == {gid: "team"}


async def test_an_offline_member_catches_up_after_five_epochs(
    relay_url: str, tmp_path: Path
) -> None:
    """Dave is away while the group changes five times: back, he reads every message."""
    async with clients(relay_url, tmp_path, "alice", "dave") as (alice, dave):
        await started(alice, dave)
        gid = (await alice.create_group("team", ["dave"])).group_id
        await wait_for(dave, GroupInvited)
        await dave.close()
        for n in range(5):
            await alice.group_rename(gid, f"team {n}")
            await alice.group_send_text(gid, f"epoch {n}")
        back = ChatClient(relay_url, tmp_path / "dave")
        try:
            await back.connect()
            await back.login("dave", PASSWORD)
            for n in range(5):
                await wait_for(back, MessageReceived, text=f"epoch {n}")
            assert back.groups()[0].name == "team 4"
            assert back.groups()[0].epoch == alice.groups()[0].epoch
        finally:
            await back.close()


async def test_two_admins_commit_at_once_and_agree(relay_url: str, tmp_path: Path) -> None:
    """Alice and bob change the group in the same epoch: the relay takes one Commit;
    the other client fetches, rebuilds and lands its change in the next epoch."""
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
        await started(alice, bob, carol)
        gid = (await alice.create_group("team", ["bob", "carol"])).group_id
        await wait_for(bob, GroupInvited)
        await alice.group_make_admin(gid, "bob")
        await wait_for(bob, GroupChanged, change=GroupChange.ADMINS)
        await wait_for(carol, GroupChanged, change=GroupChange.ADMINS)
        await asyncio.gather(alice.group_rename(gid, "renamed"), bob.group_set_topic(gid, "topic"))
        for member in (alice, bob, carol):
            await member.settle()
        await asyncio.sleep(0.5)
        infos = [m.groups()[0] for m in (alice, bob, carol)]
        assert {(i.name, i.topic, i.epoch) for i in infos} == {("renamed", "topic", 4)}
        sessions = [m._groups.store.session(gid) for m in (alice, bob, carol)]
        assert len({s.mls.epoch_authenticator for s in sessions}) == 1


async def test_the_relay_keeps_no_group_name_and_no_message(
    relay: RelayServer, relay_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Name, topic and text are inside MLS: the relay's files and logs never hold them."""
    caplog.set_level(logging.DEBUG)
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await started(alice, bob)
        gid = (await alice.create_group("name-only-members-know", ["bob"])).group_id
        await alice.group_set_topic(gid, "topic-only-members-know")
        await alice.group_send_text(gid, "text-only-members-know")
        await wait_for(bob, MessageReceived, text="text-only-members-know")
    await relay.stop()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "relay").rglob("*") if p.is_file())
    logged = caplog.text.encode()
    for secret in (
        b"name-only-members-know",
        b"topic-only-members-know",
        b"text-only-members-know",
    ):
        assert secret not in stored
        assert secret not in logged


async def test_a_restart_between_receive_and_ack_loses_and_repeats_nothing(
    relay_url: str, tmp_path: Path
) -> None:
    """Bob stores a group message and dies before his ack leaves: the relay delivers it
    again to the restarted client, which recognises it; the next one still opens."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await started(alice, bob)
        gid = (await alice.create_group("team", ["bob"])).group_id
        await wait_for(bob, GroupInvited)
        sent = bob.relay._conn
        assert sent is not None
        original = sent.send

        async def no_ack(frame: object) -> None:
            if type(frame).__name__ == "Ack":
                return
            await original(frame)  # type: ignore[arg-type]

        sent.send = no_ack  # type: ignore[method-assign]
        await alice.group_send_text(gid, "once")
        await wait_for(bob, MessageReceived, text="once")
        await bob.close()
        back = ChatClient(relay_url, tmp_path / "bob")
        try:
            await back.connect()
            await back.login("bob", PASSWORD)
            await alice.group_send_text(gid, "twice")
            shown = []
            while not shown or shown[-1] != "twice":
                shown.append((await wait_for(back, MessageReceived)).text)  # type: ignore[attr-defined]
            assert shown == ["twice"]
            await back.settle()
            assert [t for t in texts(back, gid) if t[0] == "alice"] == [
                ("alice", "once"),
                ("alice", "twice"),
            ]
            assert not [e for e in drain(back) if isinstance(e, MessageReceived)]
        finally:
            await back.close()


async def test_a_group_conversation_does_not_stop_presence(relay_url: str, tmp_path: Path) -> None:
    """Signing in watches the direct contacts only: a group's key is no username, and
    the relay would refuse the whole watch, leaving every contact's presence unknown."""
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
        await started(alice, bob, carol)
        await alice.create_group("team", ["bob"])
        await alice.sharekey("carol")
        await carol.sharekey("alice")
        await alice.close()
        back = ChatClient(relay_url, tmp_path / "alice")
        try:
            await back.connect()
            await back.login("alice", PASSWORD)
            await wait_for(back, PresenceChanged, user="carol", state="online")
        finally:
            await back.close()


async def test_a_file_in_a_group_is_uploaded_once_and_every_member_opens_it(
    relay_url: str, tmp_path: Path
) -> None:
    """The offer travels in the group message with the file's key; the relay lets each
    member download the one upload."""
    async with clients(relay_url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
        await started(alice, bob, carol)
        gid = (await alice.create_group("team", ["bob", "carol"])).group_id
        await wait_for(carol, GroupInvited)
        source = tmp_path / "plan.txt"
        source.write_bytes(b"the plan, for members only\n" * 100)
        blob_id = await alice.group_send_file(gid, source)
        for member in (bob, carol):
            offer = await wait_for(member, FileOffered, file_id=blob_id)
            assert (offer.conversation.name, offer.sender, offer.name) == (gid, "alice", "plan.txt")  # type: ignore[attr-defined]
            saved = await member.download(blob_id, tmp_path / f"{member.username}-downloads")
            assert saved.read_bytes() == source.read_bytes()
        assert texts(alice, gid)[-1] == ("alice", "plan.txt (2.7 kB)")


async def test_a_welcome_too_large_to_travel_inline_goes_as_a_file(
    relay_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the inline limit (low here; about 75 members on the hybrid suite) the
    Welcome is uploaded as a file readable by the added users. Dave, offline when he
    is added, gets it with the group's next changes and messages behind it: he fetches
    it, joins, then reads them in order, and all three agree on the epoch."""
    monkeypatch.setattr(Groups, "welcome_inline_max", 1_000)
    async with clients(relay_url, tmp_path, "alice", "bob", "dave") as (alice, bob, dave):
        await started(alice, bob, dave)
        await dave.close()
        gid = (await alice.create_group("team", ["bob", "dave"])).group_id
        await wait_for(bob, GroupInvited)
        await alice.group_send_text(gid, "first")
        await alice.group_rename(gid, "renamed")
        await alice.group_send_text(gid, "second")
        await wait_for(bob, MessageReceived, text="second")
        back = ChatClient(relay_url, tmp_path / "dave")
        try:
            await back.connect()
            await back.login("dave", PASSWORD)
            await wait_for(back, GroupInvited)
            await wait_for(back, MessageReceived, text="second")
            assert [t for s, t in texts(back, gid) if s == "alice"] == ["first", "second"]
            assert back.groups()[0].name == "renamed"
            await back.group_send_text(gid, "dave made it")
            await wait_for(alice, MessageReceived, text="dave made it")
            sessions = [m._groups.store.session(gid) for m in (alice, bob, back)]
            assert len({s.mls.epoch_authenticator for s in sessions}) == 1
        finally:
            await back.close()


async def emptied(relay: RelayServer, user: str) -> None:
    """Acknowledgements are written a moment after the client handled the delivery."""
    async with asyncio.timeout(5):
        while await relay.store.queue_usage(user) != (0, 0):
            await asyncio.sleep(0.02)


async def test_the_sender_hears_whose_queue_was_too_full_for_a_message(tmp_path: Path) -> None:
    """carol is away until her queue on the relay is full: alice's next message reaches
    bob, alice is told carol did not get it, and carol, back, reads the ones before it."""
    relay = RelayServer(fast_config(tmp_path / "relay", queue_max_count=2))
    await relay.start()
    url = f"ws://127.0.0.1:{relay.port}"
    try:
        async with clients(url, tmp_path, "alice", "bob", "carol") as (alice, bob, carol):
            await started(alice, bob, carol)
            gid = (await alice.create_group("team", ["bob", "carol"])).group_id
            await wait_for(bob, GroupInvited)
            await wait_for(carol, GroupInvited)
            await carol.close()
            await emptied(relay, "carol")
            for text in ("one", "two", "three"):
                await alice.group_send_text(gid, text)
                await wait_for(bob, MessageReceived, text=text)
                await emptied(relay, "bob")  # bob stays far from the limit
            notice = await wait_for(alice, ErrorRaised, code=ClientErrorCode.QUEUE_FULL)
            assert notice == ErrorRaised(
                "not delivered to carol: their queue on the relay is full",
                ClientErrorCode.QUEUE_FULL,
            )
            assert not [e for e in drain(alice) if isinstance(e, ErrorRaised)]
        back = ChatClient(url, tmp_path / "carol")
        try:
            await back.connect()
            await back.login("carol", PASSWORD)
            for text in ("one", "two"):
                await wait_for(back, MessageReceived, text=text)
            await asyncio.sleep(0.3)
            assert [t for _, t in texts(back, gid)][-2:] == ["one", "two"]
        finally:
            await back.close()
    finally:
        await relay.stop()
