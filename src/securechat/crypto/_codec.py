"""The byte layout shared by every serialised crypto object.

Each object starts with two bytes: a kind tag (so a vault header cannot be parsed as a
prekey bundle by mistake) and a format version. Fields follow in a fixed order: unsigned
big-endian integers, fixed-size byte strings, and variable ones prefixed by a u32 length.
The Reader turns every malformation into one of our errors instead of an IndexError or a
struct.error, and refuses trailing bytes so one object has exactly one encoding.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from securechat.crypto.errors import CryptoError, InvalidKeyMaterial, UnsupportedVersion


class Kind(IntEnum):
    IDENTITY_PRIVATE = 0x01
    IDENTITY_DH = 0x02
    SIGNED_PREKEY = 0x03
    KEM_PREKEY = 0x04
    ONE_TIME_PREKEY = 0x05
    PREKEY_BUNDLE = 0x06
    PREKEY_SECRETS = 0x07
    INITIAL_MESSAGE = 0x08
    RATCHET_STATE = 0x09
    RATCHET_MESSAGE = 0x0A
    VAULT_HEADER = 0x0B
    SEALED_RECORD = 0x0C
    FILE_MANIFEST = 0x0D
    SESSION_RECORD = 0x0E


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Writer:
    __slots__ = ("_parts",)

    def __init__(self, kind: Kind, version: int) -> None:
        self._parts: list[bytes] = [bytes((kind, version))]

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(_U64.pack(value))
        return self

    def fixed(self, value: bytes) -> Writer:
        self._parts.append(value)
        return self

    def blob(self, value: bytes) -> Writer:
        self._parts.append(_U32.pack(len(value)))
        self._parts.append(value)
        return self

    def text(self, value: str) -> Writer:
        return self.blob(value.encode())

    def finish(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads one object; `what` names it in error messages meant for the user."""

    __slots__ = ("_data", "_error", "_pos", "version", "what")

    def __init__(
        self,
        data: bytes,
        kind: Kind,
        what: str,
        versions: frozenset[int],
        error: type[CryptoError] = InvalidKeyMaterial,
    ) -> None:
        self._data = bytes(data)
        self._error = error
        self.what = what
        if len(self._data) < 2 or self._data[0] != kind:
            raise error(f"The {what} is damaged or is not a {what} at all.")
        self.version = self._data[1]
        if self.version not in versions:
            raise UnsupportedVersion(
                f"The {what} uses format version {self.version}, which this version of "
                "securechat cannot read. Update securechat and try again."
            )
        self._pos = 2

    def _take(self, size: int) -> bytes:
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise self._error(f"The {self.what} is truncated or damaged.")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def fixed(self, size: int) -> bytes:
        return self._take(size)

    def blob(self, max_size: int = 1 << 20) -> bytes:
        size = self.u32()
        if size > max_size:
            raise self._error(f"The {self.what} holds a field that is too large.")
        return self._take(size)

    def text(self, max_size: int = 4096) -> str:
        raw = self.blob(max_size)
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise self._error(f"The {self.what} holds text that is not UTF-8.") from exc

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise self._error(f"The {self.what} is damaged.")
        return value == 1

    def fail(self, reason: str) -> CryptoError:
        """An error for a semantic check done by the caller after reading a field."""
        return self._error(f"The {self.what} is damaged: {reason}.")

    def end(self) -> None:
        if self._pos != len(self._data):
            raise self._error(f"The {self.what} has unexpected trailing bytes.")
