"""Session starts: a replay is recognised, a newer start replaces, an older one only receives."""

from __future__ import annotations

from dataclasses import replace

import pytest

from securechat.crypto import (
    AuthenticationFailed,
    IdentityKeyPair,
    InitialMessage,
    PrekeyBundle,
    PrekeySecrets,
    RatchetState,
    encrypt,
    initiate,
    respond,
)
from securechat.crypto.errors import InvalidKeyMaterial
from securechat.crypto.ratchet import RatchetMessage
from securechat.crypto.sessions import (
    MAX_ARCHIVED_SESSIONS,
    MAX_REMEMBERED_STARTS,
    SessionRecord,
    Start,
    accept_start,
    judge_start,
    open_message,
    open_start,
    own_start,
)

Keys = tuple[PrekeySecrets, PrekeyBundle]


class Started:
    """One session start by Alice from a bundle without a one-time prekey, as Bob sees it."""

    def __init__(
        self, alice: IdentityKeyPair, bob: IdentityKeyPair, keys: Keys, created_at_ms: int
    ) -> None:
        secrets, bundle = keys
        result = initiate(alice, "alice", "bob", None, replace(bundle, one_time_prekey=None))
        self.created_at_ms = created_at_ms
        self.alice, self.first = encrypt(result.state, b"hello", "alice", "bob")
        self.initial = InitialMessage.from_bytes(result.initial.to_bytes())
        self.responder = respond(bob, "bob", "alice", None, secrets, self.initial).state
        self.initiator_start = result.state


def _bob_accepts(
    record: SessionRecord, current: RatchetState | None, start: Started
) -> tuple[SessionRecord, RatchetState | None]:
    first = open_start(record, current, start.responder, start.first, "alice", "bob")
    assert first is not None
    opened = accept_start(record, current, first, start.created_at_ms)
    assert opened is not None and opened.record is not None
    assert opened.plaintext == b"hello"
    return opened.record, opened.current or current


def test_a_replayed_start_is_recognised_and_changes_nothing(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Keys
) -> None:
    """The same initial message again (no one-time prekey to consume) is a duplicate."""
    start = Started(alice, bob, bob_prekeys, 1_000)
    record, current = _bob_accepts(SessionRecord(), None, start)
    replayed = respond(bob, "bob", "alice", None, bob_prekeys[0], start.initial).state
    assert open_start(record, current, replayed, start.first, "alice", "bob") is None


def test_a_session_stored_before_the_upgrade_still_recognises_its_replay(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Keys
) -> None:
    """Vaults of today hold the session but no record: the current session id is enough."""
    start = Started(alice, bob, bob_prekeys, 1_000)
    _, current = _bob_accepts(SessionRecord(), None, start)
    assert judge_start(SessionRecord(), current, start.responder.session_id, None) is (
        Start.DUPLICATE
    )


def test_a_newer_start_replaces_and_messages_in_flight_on_the_old_one_still_open(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Keys
) -> None:
    """Alice runs `talk` again while Bob's reply on the old session is on its way."""
    old = Started(alice, bob, bob_prekeys, 1_000)
    bob_record, bob_current = _bob_accepts(SessionRecord(), None, old)
    assert bob_current is not None
    bob_current, in_flight = encrypt(bob_current, b"sent on the old session", "bob", "alice")

    new = Started(alice, bob, bob_prekeys, 2_000)
    alice_record = own_start(
        own_start(SessionRecord(), None, old.initiator_start, 1_000),
        old.alice,
        new.initiator_start,
        2_000,
    )
    opened = open_message(alice_record, new.alice, in_flight, "bob", "alice")
    assert opened.plaintext == b"sent on the old session"
    assert opened.current is None and opened.record is not None

    bob_record, replaced = _bob_accepts(bob_record, bob_current, new)
    assert replaced is not None and replaced.session_id == new.responder.session_id
    _, answer = encrypt(replaced, b"on the new session", "bob", "alice")
    assert open_message(alice_record, new.alice, answer, "bob", "alice").current is not None


def test_an_older_start_never_seen_is_kept_for_receiving_only(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Keys
) -> None:
    """A start the relay held back and delivers late does not take over the newer session."""
    late, current_start = (
        Started(alice, bob, bob_prekeys, 1_000),
        Started(alice, bob, bob_prekeys, 2_000),
    )
    record, current = _bob_accepts(SessionRecord(), None, current_start)
    record, still = _bob_accepts(record, current, late)
    assert still is current
    assert record.archived[0].session_id == late.responder.session_id
    _, more = encrypt(late.alice, b"more on the late session", "alice", "bob")
    assert open_message(record, still, more, "alice", "bob").plaintext == (
        b"more on the late session"
    )


def test_a_start_without_a_time_replaces_as_before(
    alice: IdentityKeyPair, bob: IdentityKeyPair, bob_prekeys: Keys
) -> None:
    """Older clients put no time in their first message: their new session still takes over."""
    record, current = _bob_accepts(SessionRecord(), None, Started(alice, bob, bob_prekeys, 5))
    assert current is not None
    assert judge_start(record, current, b"\x01" * 32, None) is Start.REPLACE


def test_forgotten_starts_leave_a_floor_that_refuses_their_replays() -> None:
    """The memory is bounded, but an old timed start cannot come back after eviction."""
    record = SessionRecord()
    for n in range(MAX_REMEMBERED_STARTS + 1):
        record = own_start(record, None, _state(n.to_bytes(32, "big")), 100 + n)
    assert len(record.starts) == MAX_REMEMBERED_STARTS
    assert record.floor_ms == 100
    assert judge_start(record, None, b"\xee" * 32, 100) is Start.DUPLICATE
    assert judge_start(record, None, b"\xee" * 32, 101) is Start.REPLACE


def test_archived_sessions_are_bounded(session_state: RatchetState) -> None:
    record = SessionRecord()
    for n in range(MAX_ARCHIVED_SESSIONS + 2):
        record = own_start(record, session_state, _state(bytes([n]) * 32), n + 1)
    assert len(record.archived) == MAX_ARCHIVED_SESSIONS


def test_a_message_no_session_opens_raises_the_current_sessions_error(
    session_state: RatchetState,
) -> None:
    message = RatchetMessage.from_bytes(bytes((0x0A, 1)) + bytes(32 + 8 + 12 + 16))
    with pytest.raises(AuthenticationFailed):
        open_message(SessionRecord(archived=(session_state,)), session_state, message, "a", "b")


def test_the_record_round_trips_and_refuses_damage(session_state: RatchetState) -> None:
    record = own_start(SessionRecord(), session_state, _state(b"\x02" * 32), 7)
    assert SessionRecord.from_bytes(record.to_bytes()) == record
    with pytest.raises(InvalidKeyMaterial):
        SessionRecord.from_bytes(record.to_bytes() + b"\x00")


@pytest.fixture
def session_state(session: object) -> RatchetState:
    state: RatchetState = session.bob  # type: ignore[attr-defined]
    return state


def _state(session_id: bytes) -> RatchetState:
    """A state that only needs its session id to be told apart."""
    from securechat.crypto.ratchet import start_as_responder

    return start_as_responder(session_id, b"\x00" * 32, b"\x01" * 32)
