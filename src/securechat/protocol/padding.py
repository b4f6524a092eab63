"""Envelope padding: the relay sees a few body sizes, not the size of what was said.

Unpadded, a receipt was always 127 bytes, a short text about 115 and a file
offer about 274: the size told the relay what each envelope was. Bodies are
padded to a *bucket*:

- everything up to `MIN_BUCKET` (256) bytes becomes exactly 256 bytes: every
  receipt and session confirmation, texts up to about 150 characters and
  file offers with short names are then the same size;
- larger bodies are rounded up with Padmé (Nikitin et al., "Reducing
  Metadata Leakage from Encrypted Files and Communication with PURBs",
  PETS 2019): a length L keeps only its top floor(log2(floor(log2 L))) + 1
  bits, so above 256 bytes at most 6.3% is added and a size reveals O(log log L) bits
  instead of log L. Powers of two would leak a bit less and add up to 100%.

The padding mark is ISO/IEC 7816-4 style (one 0x80 byte, then zeros), so it
is removed without a length field and cannot be confused with the data.
"""

from __future__ import annotations

MIN_BUCKET = 256
PAD_MARK = 0x80


class PaddingError(ValueError):
    """The padded bytes carry no mark: damaged, or not padded at all."""


def padme(length: int) -> int:
    """The Padmé size for `length` (>= 1): only the top bits of the length vary."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def bucket(length: int) -> int:
    """The smallest bucket that holds `length` bytes."""
    if length < 0:
        raise ValueError("a length is not negative")
    return MIN_BUCKET if length <= MIN_BUCKET else padme(length)


def is_bucket(size: int) -> bool:
    return size >= MIN_BUCKET and bucket(size) == size


def pad(data: bytes, overhead: int = 0) -> bytes:
    """`data`, its mark and zeros, so that the padded length plus `overhead` is a bucket.

    `overhead` is what the layers around it add (a ratchet message's header and
    tag), so that the body on the wire, not the plaintext, lands on a bucket.
    """
    total = bucket(len(data) + 1 + overhead)
    return data + bytes([PAD_MARK]) + bytes(total - overhead - len(data) - 1)


def unpad(padded: bytes) -> bytes:
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != PAD_MARK:
        raise PaddingError("the padding of a message is damaged")
    return stripped[:-1]
