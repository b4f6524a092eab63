"""Property test: a lossy, duplicating, reordering relay never breaks the ratchet."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.crypto import (
    AuthenticationFailed,
    DuplicateMessage,
    RatchetMessage,
    RatchetState,
    decrypt,
    encrypt,
)
from tests.crypto.helpers import Session


@dataclass
class Peer:
    name: str
    state: RatchetState
    # Every message sent *to* this peer: (message, content, already delivered?)
    inbox: list[tuple[RatchetMessage, bytes, bool]] = field(default_factory=list)


step = st.tuples(
    st.sampled_from(("send", "deliver", "tamper")), st.booleans(), st.integers(0, 10**4)
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step, max_size=80))
def test_random_relay(session: Session, steps: list[tuple[str, bool, int]]) -> None:
    """Each delivered message opens exactly once to its content; repeats are duplicates;
    failures leave the state byte-for-byte unchanged."""
    alice, bob = Peer("alice", session.alice), Peer("bob", session.bob)
    for number, (action, to_bob, pick) in enumerate(steps):
        receiver, sender = (bob, alice) if to_bob else (alice, bob)
        if action == "send":
            content = f"{sender.name} #{number}".encode()
            sender.state, message = encrypt(sender.state, content, sender.name, receiver.name)
            receiver.inbox.append((message, content, False))
            continue
        if not receiver.inbox:
            continue
        index = pick % len(receiver.inbox)
        message, content, delivered = receiver.inbox[index]
        before = receiver.state.to_bytes()
        if action == "tamper":
            data = bytearray(message.to_bytes())
            data[-1] ^= 1
            forged = RatchetMessage.from_bytes(bytes(data))
            with pytest.raises((AuthenticationFailed, DuplicateMessage)):
                decrypt(receiver.state, forged, sender.name, receiver.name)
            assert receiver.state.to_bytes() == before
        elif delivered:
            with pytest.raises(DuplicateMessage):
                decrypt(receiver.state, message, sender.name, receiver.name)
            assert receiver.state.to_bytes() == before
        else:
            receiver.state, plaintext = decrypt(receiver.state, message, sender.name, receiver.name)
            assert plaintext == content
            receiver.inbox[index] = (message, content, True)
