"""Starting a session again: messages in flight on the old session still arrive, and a
stuck session is shown and cured by `talk`."""

from __future__ import annotations

from pathlib import Path

import msgspec

from securechat.client import payloads as P
from securechat.client.core import ChatClient
from securechat.client.directory import ONE_TIME_KEM_BATCH
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationChanged,
    ConversationState,
    ErrorRaised,
    MessageReceived,
)
from securechat.crypto import ratchet
from securechat.crypto.prekeys import PrekeySecrets
from securechat.crypto.ratchet import MAX_SKIP, RatchetState
from securechat.protocol import frames as F
from securechat.protocol.codec import encode
from securechat.server.app import RelayServer
from tests.client.helpers import clients, drain, secure, wait_for


async def test_talk_again_keeps_messages_in_flight_on_the_old_session(
    relay_url: str, tmp_path: Path
) -> None:
    """Bob writes on the old session while offline; Alice has meanwhile run `talk` again."""
    async with clients(relay_url, tmp_path, "alice", "bob", fast_reconnect=True) as pair:
        alice, bob = pair
        await secure(alice, bob)
        url = bob.relay.url
        bob.relay.url = "ws://127.0.0.1:9"  # nothing listens: bob stays offline
        assert bob.relay._conn is not None
        await bob.relay._conn.close()
        await wait_for(bob, ConnectionChanged, state=ConnectionState.RECONNECTING)
        await alice.talk("bob")
        await bob.send_text("alice", "written on the old session")
        bob.relay.url = url
        assert (await wait_for(alice, MessageReceived)).text == "written on the old session"
        await _chat_both_ways(alice, bob)


async def _chat_both_ways(alice: ChatClient, bob: ChatClient) -> None:
    await alice.send_text("bob", "on the new session")
    assert (await wait_for(bob, MessageReceived)).text == "on the new session"
    await bob.send_text("alice", "and back")
    assert (await wait_for(alice, MessageReceived)).text == "and back"
    await alice.settle()
    await bob.settle()
    assert not [e for e in drain(alice) + drain(bob) if isinstance(e, ErrorRaised)]


def test_hello_time_is_optional_both_ways() -> None:
    """Older clients send a bare hello and ignore the time a newer one adds."""

    class OldHello(msgspec.Struct, tag_field="k", tag="hello", frozen=True):
        pass

    assert P.decode_inner(msgspec.msgpack.encode(OldHello())).content == P.Hello()
    newer = P.encode(P.Hello(created_at_ms=1_700_000_000_000))
    assert msgspec.msgpack.decode(newer, type=OldHello) == OldHello()


async def test_a_session_past_the_skip_limit_shows_stuck_and_talk_cures_it(
    relay_url: str, tmp_path: Path
) -> None:
    """Alice's chain runs MAX_SKIP + 1 messages ahead of Bob (the relay lost them): every
    later message would fail, so Bob is told once, and his `talk` starts over."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        assert alice.vault is not None
        state = RatchetState.from_bytes(alice.vault.get("session:bob") or b"")
        for _ in range(MAX_SKIP + 1):
            state, _ = ratchet.encrypt(state, b"lost on the way", "alice", "bob")
        alice.vault.put("session:bob", state.to_bytes())
        await alice.send_text("bob", "too far ahead")
        await wait_for(bob, ConversationChanged, peer="alice", state=ConversationState.JAMMED)
        await alice.send_text("bob", "still too far")
        await wait_for(bob, ErrorRaised)
        assert bob.conversation_state("alice") == ConversationState.JAMMED
        assert not [e for e in drain(bob) if isinstance(e, ConversationChanged)], "told once"
        await bob.talk("alice")
        await wait_for(bob, ConversationChanged, peer="alice", state=ConversationState.ACTIVE)
        await _chat_both_ways(alice, bob)


async def test_session_start_uses_a_one_time_kem_prekey_first(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """Bob publishes a batch of one-time ML-KEM prekeys; Alice's `talk` consumes one of them
    (on the relay and in Bob's store), and the last-resort one stays for when they run out."""
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        assert await relay.store.one_time_kem_prekey_count("bob") == ONE_TIME_KEM_BATCH
        await secure(alice, bob)
        assert await relay.store.one_time_kem_prekey_count("bob") == ONE_TIME_KEM_BATCH - 1
        assert bob.vault is not None
        secrets = PrekeySecrets.from_bytes(bob.vault.get("prekeys") or b"")
        assert len(secrets.one_time_kem) == ONE_TIME_KEM_BATCH - 1
        assert len(secrets.kem) == 1


async def test_a_relay_that_does_not_count_kem_prekeys_gets_none(
    relay_url: str, tmp_path: Path
) -> None:
    """An older relay (no count in `session`) refuses unknown fields: the client leaves them out."""
    async with clients(relay_url, tmp_path, "bob") as (bob,):
        frames: list[object] = []
        original = bob.relay.request

        async def spy(build, **kwargs):  # type: ignore[no-untyped-def]
            frames.append(build(0))
            return await original(build, **kwargs)

        bob.relay.request = spy  # type: ignore[method-assign]
        await bob.keys.maintain(0, None)
        published = [f for f in frames if isinstance(f, F.PublishKeys)]
        assert published and published[0].one_time_prekeys
        assert b"one_time_kem_prekeys" not in encode(published[0])
