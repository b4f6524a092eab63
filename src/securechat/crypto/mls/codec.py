"""The TLS presentation language as MLS uses it (RFC 9420 §2.1).

Integers are big-endian and fixed-width; variable-size vectors carry a QUIC-style
variable-length integer header (§2.1.2) counting bytes, not elements. Decoding is
strict so that every structure has exactly one encoding: a varint must use its
shortest form, a vector may not run past its container, and `decode` refuses
trailing bytes. Every malformation becomes a DecodeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from securechat.crypto.mls.errors import DecodeError

T = TypeVar("T")

VARINT_MAX = (1 << 30) - 1


def uint8(value: int) -> bytes:
    return _uint(value, 1)


def uint16(value: int) -> bytes:
    return _uint(value, 2)


def uint32(value: int) -> bytes:
    return _uint(value, 4)


def uint64(value: int) -> bytes:
    return _uint(value, 8)


def _uint(value: int, width: int) -> bytes:
    if not 0 <= value < 1 << (8 * width):
        raise ValueError(f"{value} does not fit in uint{8 * width}")
    return value.to_bytes(width, "big")


def varint(value: int) -> bytes:
    """The shortest of the 1-, 2- and 4-byte forms; the 2-bit prefix gives the width."""
    if value < 0 or value > VARINT_MAX:
        raise ValueError(f"{value} cannot be encoded as an MLS varint")
    if value < 1 << 6:
        return value.to_bytes(1, "big")
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    return (value | 0x8000_0000).to_bytes(4, "big")


def opaque(data: bytes) -> bytes:
    """`opaque x<V>`: a varint byte count, then the bytes."""
    return varint(len(data)) + data


def vector(items: Iterable[bytes]) -> bytes:
    """`T x<V>` from already-encoded elements."""
    return opaque(b"".join(items))


def optional(encoded: bytes | None) -> bytes:
    """`optional<T>`: a presence octet, then the value when present (§2.1.1)."""
    return b"\x00" if encoded is None else b"\x01" + encoded


class Reader:
    """A cursor over untrusted bytes; every read is bounds-checked."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise DecodeError(f"needed {n} bytes but only {self.remaining} remain")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint8(self) -> int:
        return self.take(1)[0]

    def uint16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def uint32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def uint64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def varint(self) -> int:
        first = self.uint8()
        prefix = first >> 6
        if prefix == 3:
            raise DecodeError("varint with the reserved 0b11 prefix")
        width = 1 << prefix
        value = int.from_bytes(bytes([first & 0x3F]) + self.take(width - 1), "big")
        if prefix > 0 and value < 1 << (8 * (width // 2) - 2):
            raise DecodeError("varint not in its shortest form")
        return value

    def opaque(self) -> bytes:
        return self.take(self.varint())

    def fixed_opaque(self, length: int) -> bytes:
        """`opaque x<V>` whose content must have exactly `length` bytes."""
        data = self.opaque()
        if len(data) != length:
            raise DecodeError(f"expected {length} bytes, got {len(data)}")
        return data

    def vector(self, item: Callable[[Reader], T]) -> list[T]:
        """`T x<V>`: decode elements until the counted bytes are used up exactly."""
        inner = Reader(self.opaque())
        out: list[T] = []
        while inner.remaining:
            before = inner.remaining
            out.append(item(inner))
            if inner.remaining == before:
                raise DecodeError("a vector element that occupies no bytes")
        return out

    def optional(self, item: Callable[[Reader], T]) -> T | None:
        present = self.uint8()
        if present == 0:
            return None
        if present != 1:
            raise DecodeError(f"optional presence octet must be 0 or 1, not {present}")
        return item(self)

    def boolean(self) -> bool:
        value = self.uint8()
        if value > 1:
            raise DecodeError(f"bool must be 0 or 1, not {value}")
        return value == 1

    def finish(self) -> None:
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes after the structure")


def decode(data: bytes, item: Callable[[Reader], T]) -> T:
    """Decode exactly one `item` from `data`, refusing trailing bytes."""
    reader = Reader(data)
    value = item(reader)
    reader.finish()
    return value
