"""Pre-shared keys (RFC 9420 §8.4): PreSharedKeyID and the psk_secret chain.

Each PSK is bound to its identifier, position and the total count, so that the same
keys in another order or a subset of them yield a different psk_secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from securechat.crypto.mls import labels
from securechat.crypto.mls.codec import Reader, opaque, uint8, uint16, uint64
from securechat.crypto.mls.errors import DecodeError
from securechat.crypto.mls.suite import CipherSuite


class PSKType(IntEnum):
    EXTERNAL = 1
    RESUMPTION = 2


class ResumptionPSKUsage(IntEnum):
    APPLICATION = 1
    REINIT = 2
    BRANCH = 3


@dataclass(frozen=True)
class PreSharedKeyID:
    """An external PSK names `psk_id`; a resumption PSK names a group and epoch."""

    psktype: PSKType
    psk_nonce: bytes
    psk_id: bytes = b""
    usage: ResumptionPSKUsage = ResumptionPSKUsage.APPLICATION
    psk_group_id: bytes = b""
    psk_epoch: int = 0

    def encode(self) -> bytes:
        out = uint8(self.psktype)
        if self.psktype == PSKType.EXTERNAL:
            out += opaque(self.psk_id)
        else:
            out += uint8(self.usage) + opaque(self.psk_group_id) + uint64(self.psk_epoch)
        return out + opaque(self.psk_nonce)

    @classmethod
    def read(cls, r: Reader) -> Self:
        kind = r.uint8()
        if kind == PSKType.EXTERNAL:
            psk_id = r.opaque()
            return cls(PSKType.EXTERNAL, psk_id=psk_id, psk_nonce=r.opaque())
        if kind == PSKType.RESUMPTION:
            usage_value = r.uint8()
            try:
                usage = ResumptionPSKUsage(usage_value)
            except ValueError:
                raise DecodeError(f"resumption PSK usage {usage_value} is not defined") from None
            group_id, epoch = r.opaque(), r.uint64()
            return cls(
                PSKType.RESUMPTION,
                psk_group_id=group_id,
                psk_epoch=epoch,
                usage=usage,
                psk_nonce=r.opaque(),
            )
        raise DecodeError(f"PSK type {kind} is not defined")


def psk_secret(suite: CipherSuite, psks: Sequence[tuple[PreSharedKeyID, bytes]]) -> bytes:
    """psk_secret_[n] over (id, key) pairs in proposal order; all zeros when there are none."""
    zero = bytes(suite.nh)
    secret = zero
    for index, (psk_id, psk) in enumerate(psks):
        extracted = suite.kdf.extract(zero, psk)
        psk_label = psk_id.encode() + uint16(index) + uint16(len(psks))
        psk_input = labels.expand_with_label(suite, extracted, b"derived psk", psk_label, suite.nh)
        secret = suite.kdf.extract(psk_input, secret)
    return secret
