"""Which Double Ratchet session with a peer is current, and which session starts were seen.

A relay hands out one-time prekeys, so it can serve a bundle without one; a session start
made from such a bundle opens again whenever it is replayed, and running the responder a
second time would roll a live session back to its first message. A `SessionRecord` keeps,
per peer:

- the session ids of the session starts accepted (the id is a hash of the whole transcript,
  so a replay has the same one), bounded, with a floor: a timed start no newer than the
  newest one forgotten is refused as well, so the bound opens no window for old replays;
- when the current session was started (the initiator's clock, milliseconds; 0 unknown);
- a few earlier sessions kept for receiving only, so that messages still in flight on a
  replaced session open after a newer one took over.

A new start replaces the current session only when it is newer, by the time its first
message carries inside the encryption (starts from older clients carry none and replace it,
as before); an older one that was never seen is kept for receiving.
Everything here is pure: states and bytes in, states and bytes out.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

import msgspec

from securechat.crypto import ratchet
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.errors import CryptoError
from securechat.crypto.ratchet import RatchetMessage, RatchetState

MAX_REMEMBERED_STARTS = 64
MAX_ARCHIVED_SESSIONS = 4
_VERSION = 1
_MAX_SESSION_ID = 64
_MAX_STATE_SIZE = 1 << 20


class SessionRecord(msgspec.Struct, frozen=True):
    """Everything about a peer's sessions except the current state, which is stored apart."""

    created_at_ms: int = 0
    # (session id, its start time in ms or 0), oldest first.
    starts: tuple[tuple[bytes, int], ...] = ()
    # The newest start time among those forgotten: nothing at or below it is accepted.
    floor_ms: int = 0
    # Receive-only sessions, newest first.
    archived: tuple[RatchetState, ...] = ()

    def to_bytes(self) -> bytes:
        w = Writer(Kind.SESSION_RECORD, _VERSION).u64(self.created_at_ms).u64(self.floor_ms)
        w.u32(len(self.starts))
        for session_id, created_at in self.starts:
            w.blob(session_id).u64(created_at)
        w.u32(len(self.archived))
        for state in self.archived:
            w.blob(state.to_bytes())
        return w.finish()

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionRecord:
        r = Reader(data, Kind.SESSION_RECORD, "session record", frozenset({_VERSION}))
        created_at_ms, floor_ms = r.u64(), r.u64()
        count = r.u32()
        if count > MAX_REMEMBERED_STARTS:
            raise r.fail("too many session starts")
        starts = tuple((r.blob(max_size=_MAX_SESSION_ID), r.u64()) for _ in range(count))
        count = r.u32()
        if count > MAX_ARCHIVED_SESSIONS:
            raise r.fail("too many archived sessions")
        archived = tuple(
            RatchetState.from_bytes(r.blob(max_size=_MAX_STATE_SIZE)) for _ in range(count)
        )
        r.end()
        return cls(created_at_ms, starts, floor_ms, archived)

    def without_sessions(self) -> SessionRecord:
        """Forgets the archived sessions' keys but not which starts were seen."""
        return msgspec.structs.replace(self, archived=(), created_at_ms=0)

    def knows(self, session_id: bytes) -> bool:
        return any(known == session_id for known, _ in self.starts) or any(
            state.session_id == session_id for state in self.archived
        )


class Start(Enum):
    DUPLICATE = "duplicate"
    REPLACE = "replace"
    ARCHIVE = "archive"


class Opened(NamedTuple):
    """What to store after a message opened: `current` and `record` are None when unchanged."""

    plaintext: bytes
    current: RatchetState | None
    record: SessionRecord | None
    was_confirmed: bool
    confirmed: bool


def judge_start(
    record: SessionRecord,
    current: RatchetState | None,
    session_id: bytes,
    created_at_ms: int | None,
) -> Start:
    """Whether an incoming session start is a replay, the newest session, or an older one."""
    if (current is not None and current.session_id == session_id) or record.knows(session_id):
        return Start.DUPLICATE
    if created_at_ms is not None and created_at_ms <= record.floor_ms:
        return Start.DUPLICATE
    if current is None or created_at_ms is None or created_at_ms > record.created_at_ms:
        return Start.REPLACE
    return Start.ARCHIVE


class FirstMessage(NamedTuple):
    """The opened first message of a session start, not yet accepted."""

    plaintext: bytes
    started: RatchetState
    state: RatchetState


def open_start(
    record: SessionRecord,
    current: RatchetState | None,
    started: RatchetState,
    message: RatchetMessage,
    sender: str,
    recipient: str,
    now: int | None = None,
) -> FirstMessage | None:
    """Opens the first message of a session the peer started; None for a replay.

    Raises what `ratchet.decrypt` raises when the message does not open: then nothing
    about the start is remembered, so a forged start cannot block the real one.
    """
    if judge_start(record, current, started.session_id, None) is Start.DUPLICATE:
        return None
    state, plaintext = ratchet.decrypt(started, message, sender, recipient, now)
    return FirstMessage(plaintext, started, state)


def accept_start(
    record: SessionRecord,
    current: RatchetState | None,
    first: FirstMessage,
    created_at_ms: int | None,
) -> Opened | None:
    """Where an opened session start goes, given the time its first message carries.

    `created_at_ms` comes from inside the first message, which the relay cannot alter.
    None for a replay of a start older than everything remembered.
    """
    session_id = first.started.session_id
    verdict = judge_start(record, current, session_id, created_at_ms)
    if verdict is Start.DUPLICATE:
        return None
    remembered = _remember(record, session_id, created_at_ms or 0)
    was, now = first.started.confirmed, first.state.confirmed
    if verdict is Start.ARCHIVE:
        return Opened(first.plaintext, None, _archive(remembered, first.state), was, now)
    updated = _archive(remembered, current)
    updated = msgspec.structs.replace(updated, created_at_ms=created_at_ms or 0)
    return Opened(first.plaintext, first.state, updated, was, now)


def own_start(
    record: SessionRecord,
    current: RatchetState | None,
    started: RatchetState,
    created_at_ms: int,
) -> SessionRecord:
    """The record after we start a session: the one it replaces stays open for receiving."""
    updated = _archive(_remember(record, started.session_id, created_at_ms), current)
    return msgspec.structs.replace(updated, created_at_ms=created_at_ms)


def open_message(
    record: SessionRecord,
    current: RatchetState,
    message: RatchetMessage,
    sender: str,
    recipient: str,
    now: int | None = None,
) -> Opened:
    """Opens a message with the current session, or else with an archived one.

    Each try runs on a copy (the ratchet is pure), so a failed one changes nothing. When no
    session opens it, the current session's error is raised: that is the one that matters.
    `now` (seconds) lets the ratchet expire old skipped keys.
    """
    try:
        new_state, plaintext = ratchet.decrypt(current, message, sender, recipient, now)
    except CryptoError as error:
        for index, archived in enumerate(record.archived):
            try:
                new_archived, plaintext = ratchet.decrypt(archived, message, sender, recipient, now)
            except CryptoError:
                continue
            states = list(record.archived)
            states[index] = new_archived
            updated = msgspec.structs.replace(record, archived=tuple(states))
            return Opened(plaintext, None, updated, archived.confirmed, new_archived.confirmed)
        raise error
    return Opened(plaintext, new_state, None, current.confirmed, new_state.confirmed)


def _remember(record: SessionRecord, session_id: bytes, created_at_ms: int) -> SessionRecord:
    starts = (*record.starts, (session_id, created_at_ms))
    forgotten, kept = starts[:-MAX_REMEMBERED_STARTS], starts[-MAX_REMEMBERED_STARTS:]
    floor = max((created for _, created in forgotten), default=record.floor_ms)
    return msgspec.structs.replace(record, starts=kept, floor_ms=max(floor, record.floor_ms))


def _archive(record: SessionRecord, state: RatchetState | None) -> SessionRecord:
    if state is None:
        return record
    archived = (state, *record.archived)[:MAX_ARCHIVED_SESSIONS]
    return msgspec.structs.replace(record, archived=archived)
