"""Envelope padding: buckets, the Padmé rule, and a mark that always comes off again."""

from __future__ import annotations

import pytest

from securechat.protocol.padding import (
    MIN_BUCKET,
    PaddingError,
    bucket,
    is_bucket,
    pad,
    padme,
    unpad,
)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(2, 2), (9, 10), (257, 272), (300, 304), (1000, 1024), (1025, 1088), (65537, 67584)],
)
def test_padme_keeps_only_the_top_bits_of_a_length(length: int, expected: int) -> None:
    """Known values of the rule: floor(log2(floor(log2 L))) + 1 significant bits."""
    assert padme(length) == expected


@pytest.mark.parametrize(("length", "expected"), [(0, 256), (1, 256), (256, 256), (257, 272)])
def test_everything_small_shares_the_smallest_bucket(length: int, expected: int) -> None:
    """Receipts, hellos and short texts must be one size."""
    assert bucket(length) == expected


def test_padme_adds_at_most_six_percent_above_the_smallest_bucket() -> None:
    """The overhead the docs promise, over every length up to 1 MiB."""
    worst = max((bucket(n) - n) / n for n in range(MIN_BUCKET + 1, 1 << 20))
    assert 0.05 < worst <= 0.063


def test_buckets_are_their_own_bucket_and_nothing_between_them_is() -> None:
    """`is_bucket` is what the size test checks envelope bodies against."""
    assert is_bucket(256) and is_bucket(272) and is_bucket(1024)
    assert not is_bucket(255) and not is_bucket(257) and not is_bucket(1000)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x80", b"hello\x00\x00", bytes(range(256)) * 5])
@pytest.mark.parametrize("overhead", [0, 70])
def test_pad_lands_on_a_bucket_and_unpads_to_the_same_bytes(data: bytes, overhead: int) -> None:
    """Trailing zeros and mark bytes in the data survive: only the last mark is removed."""
    padded = pad(data, overhead)
    assert is_bucket(len(padded) + overhead)
    assert unpad(padded) == data


@pytest.mark.parametrize("damaged", [b"", b"\x00\x00", b"abc", b"abc\x81\x00"])
def test_unpad_refuses_bytes_without_a_mark(damaged: bytes) -> None:
    with pytest.raises(PaddingError):
        unpad(damaged)
