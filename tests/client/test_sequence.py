"""Numbered messages: gaps reported once and only after a while, with plain values."""

from __future__ import annotations

from securechat.client import sequence as S

SESSION = b"s" * 32


def arrive_all(numbers: list[int], now: float = 0.0) -> S.ReceiveWindow:
    window = S.window_for(None, SESSION)
    for number in numbers:
        window = S.arrive(window, number, now)
    return window


def test_the_sender_counts_from_one_in_each_session() -> None:
    first = S.next_number(None, SESSION)
    second = S.next_number(first, SESSION)
    assert (first.last, second.last) == (1, 2)
    assert S.next_number(second, b"t" * 32).last == 1


def test_in_order_arrival_leaves_no_gap() -> None:
    window = arrive_all([1, 2, 3])
    assert (window.below, window.above) == (3, ())
    assert S.overdue(window, 1e9, 10.0) == (window, 0)


def test_out_of_order_within_the_wait_is_not_reported() -> None:
    """3 before 2 is normal; 2 turning up in time closes the gap."""
    window = arrive_all([1, 3], now=100.0)
    assert S.overdue(window, 109.0, 10.0)[1] == 0
    window = S.arrive(window, 2, 105.0)
    assert (window.below, window.above) == (3, ())


def test_a_gap_is_reported_once_after_the_wait() -> None:
    """Message 2 of 3 dropped: one missing, reported once."""
    window = arrive_all([1, 3], now=100.0)
    window, lost = S.overdue(window, 110.0, 10.0)
    assert lost == 1 and window.missing == (2,)
    assert S.overdue(window, 1e9, 10.0)[1] == 0


def test_a_message_reported_missing_is_still_shown_when_it_arrives() -> None:
    window = arrive_all([1, 4], now=100.0)
    window, lost = S.overdue(window, 200.0, 10.0)
    assert lost == 2
    window = S.arrive(window, 3, 201.0)
    assert window.missing == (2,)
    assert S.arrive(window, 3, 202.0) is window


def test_a_number_already_here_changes_nothing() -> None:
    """A sender whose counter went back opens no false gap and closes no real one."""
    window = arrive_all([1, 2, 5])
    assert S.arrive(window, 2, 0.0) is window
    assert S.arrive(window, 5, 0.0) is window


def test_the_wait_restarts_when_the_lowest_gap_closes() -> None:
    """Gap at 2 seen at 100, gap at 4 only once 2 arrives at 108: 4 gets its own wait."""
    window = arrive_all([1, 3, 5], now=100.0)
    window = S.arrive(window, 2, 108.0)
    assert S.overdue(window, 112.0, 10.0)[1] == 0
    assert S.overdue(window, 118.0, 10.0)[1] == 1


def test_a_new_session_starts_a_new_window() -> None:
    """After `trust` or a reinstall, numbers start at 1 again without a false alarm."""
    window = arrive_all([1, 2, 3])
    fresh = S.window_for(window, b"t" * 32)
    assert (fresh.below, fresh.session_id) == (0, b"t" * 32)
    assert S.window_for(window, SESSION) is window


def test_a_huge_jump_is_counted_without_listing_every_number() -> None:
    """A peer's number near 2**53 costs a bounded amount of work and memory."""
    window = arrive_all([1, 2**53 - 1], now=0.0)
    window, lost = S.overdue(window, 100.0, 10.0)
    assert lost == 2**53 - 3
    assert len(window.missing) == S.MAX_TRACKED


def test_windows_and_counters_survive_serialisation() -> None:
    window = arrive_all([1, 3], now=5.0)
    assert S.decode_window(S.encode(window)) == window
    counter = S.next_number(None, SESSION)
    assert S.decode_counter(S.encode(counter)) == counter
    assert S.decode_window(None) is None
