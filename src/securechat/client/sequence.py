"""Sequence numbers of one conversation direction: what a dropped envelope leaves behind.

The relay can drop any envelope, and the Double Ratchet alone cannot tell a
dropped message from one not yet sent. So each user message (a text or a
file offer) carries, inside its ciphertext, its number in its direction,
counted from 1 in each session. The receiver keeps a window of what arrived;
a number still missing `after` seconds after a later one arrived is reported
once (envelopes may arrive out of order within that time). A message that
turns up after it was reported missing is still shown.

Both records name their session: a new session (after `trust`, or a peer's
reinstall) starts counting again instead of reporting every earlier number
missing. Pure: values in, values out; the client stores them in the vault in
the same transaction as the message they count.
"""

from __future__ import annotations

import msgspec

MAX_TRACKED = 1000
"""Numbers kept per window beyond the contiguous run (arrived early, or reported missing)."""


class SendCounter(msgspec.Struct, frozen=True, array_like=True):
    v: int
    session_id: bytes
    last: int


class ReceiveWindow(msgspec.Struct, frozen=True, array_like=True):
    v: int
    session_id: bytes
    below: int = 0
    """Every number up to this one arrived or was reported missing."""
    above: tuple[int, ...] = ()
    """Numbers that arrived past a gap, sorted."""
    gap_since: float = 0.0
    """When the lowest open gap was first seen."""
    missing: tuple[int, ...] = ()
    """Reported missing: still welcome if they turn up."""


def next_number(counter: SendCounter | None, session_id: bytes) -> SendCounter:
    if counter is None or counter.session_id != session_id:
        return SendCounter(1, session_id, 1)
    return SendCounter(1, session_id, counter.last + 1)


def window_for(window: ReceiveWindow | None, session_id: bytes) -> ReceiveWindow:
    if window is None or window.session_id != session_id:
        return ReceiveWindow(1, session_id)
    return window


def arrive(window: ReceiveWindow, number: int, now: float) -> ReceiveWindow:
    """Records an arrival. A number already here changes nothing: copies are refused
    earlier (by eid and by the ratchet), and a sender whose counter went back (a vault
    restored from a backup) still has its messages shown."""
    if number in window.missing:
        rest = tuple(n for n in window.missing if n != number)
        return msgspec.structs.replace(window, missing=rest)
    if number <= window.below or number in window.above:
        return window
    above = sorted({*window.above, number})
    below = window.below
    while above and above[0] == below + 1:
        below = above.pop(0)
    if not above:
        gap_since = 0.0
    elif not window.above or below != window.below:
        gap_since = now
    else:
        gap_since = window.gap_since
    return msgspec.structs.replace(window, below=below, above=tuple(above), gap_since=gap_since)


def overdue(window: ReceiveWindow, now: float, after: float) -> tuple[ReceiveWindow, int]:
    """Stops waiting for numbers missing longer than `after`; returns how many there are."""
    if not window.above or now - window.gap_since < after:
        return window, 0
    top = window.above[-1]
    arrived = set(window.above)
    lost = top - window.below - len(arrived)
    recent: list[int] = []
    number = top - 1
    while number > window.below and len(recent) < MAX_TRACKED:
        if number not in arrived:
            recent.append(number)
        number -= 1
    missing = (*window.missing, *reversed(recent))[-MAX_TRACKED:]
    return ReceiveWindow(1, window.session_id, below=top, missing=missing), lost


_decode_counter = msgspec.msgpack.Decoder(SendCounter).decode
_decode_window = msgspec.msgpack.Decoder(ReceiveWindow).decode


def encode(value: SendCounter | ReceiveWindow) -> bytes:
    return msgspec.msgpack.encode(value)


def decode_counter(blob: bytes | None) -> SendCounter | None:
    return _decode_counter(blob) if blob else None


def decode_window(blob: bytes | None) -> ReceiveWindow | None:
    return _decode_window(blob) if blob else None
