"""Prekeys: what a user publishes so others can start a session while they are offline.

Three kinds, after Signal's PQXDH:
- the signed prekey (X25519), rotated every few days, signed by the RSA identity;
- the KEM prekey (ML-KEM-768), signed by the RSA identity, reused until rotated
  (Signal's "last-resort" post-quantum prekey);
- one-time prekeys (X25519), each handed out once by the relay and deleted on use;
- one-time KEM prekeys (ML-KEM-768, signed like the KEM prekey), also handed out once
  and deleted on use; PQXDH prefers them to the last-resort one, which then only serves
  when the relay has run out. Their ids start at ONE_TIME_KEM_FIRST_ID, so an id alone
  says which kind a session request used.

Public halves are opaque blobs to the relay. Private halves live in PrekeySecrets, which
keeps the previous signed and KEM prekeys for a while so that handshakes started against a
bundle fetched just before a rotation still complete.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from securechat.crypto import primitives
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.errors import DuplicateMessage, InvalidKeyMaterial
from securechat.crypto.identity import IdentityDhPublic, IdentityKeyPair, IdentityPublicKey

SIGNED_PREKEY_MAX_AGE = 7 * 24 * 3600
PREKEYS_KEPT = 2
ONE_TIME_LOW_WATER = 20
ONE_TIME_KEM_LOW_WATER = 5
ONE_TIME_KEM_FIRST_ID = 0x8000_0000
_MAX_ONE_TIME = 10_000
_MAX_ONE_TIME_KEM = 1_000

_VERSION = 1
_VERSIONS = frozenset({_VERSION})
_SECRETS_VERSION = 2
"""Version 2 of the private store adds the one-time KEM prekeys; version 1 still loads."""
_SECRETS_VERSIONS = frozenset({_VERSION, _SECRETS_VERSION})
_SPK_LABEL = b"securechat signed-prekey v1\x00"
_KEM_LABEL = b"securechat kem-prekey v1\x00"
_ID_TIME = struct.Struct(">IQ")


@dataclass(frozen=True)
class SignedPrekeyPublic:
    prekey_id: int
    public: bytes
    created_at: int
    signature: bytes

    def verify(self, identity: IdentityPublicKey) -> None:
        """Raise InvalidSignature unless `identity` signed this prekey."""
        identity.verify(
            self.signature, _spk_signed_data(self.prekey_id, self.created_at, self.public)
        )

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.SIGNED_PREKEY, _VERSION)
            .u32(self.prekey_id)
            .u64(self.created_at)
            .fixed(self.public)
            .blob(self.signature)
            .finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedPrekeyPublic:
        r = Reader(data, Kind.SIGNED_PREKEY, "signed prekey", _VERSIONS)
        prekey_id, created_at = r.u32(), r.u64()
        public = r.fixed(primitives.X25519_KEY_SIZE)
        signature = r.blob(max_size=1024)
        r.end()
        return cls(prekey_id, public, created_at, signature)


@dataclass(frozen=True)
class KemPrekeyPublic:
    prekey_id: int
    public: bytes
    signature: bytes

    def verify(self, identity: IdentityPublicKey) -> None:
        """Raise InvalidSignature unless `identity` signed this KEM prekey."""
        identity.verify(self.signature, _kem_signed_data(self.prekey_id, self.public))

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.KEM_PREKEY, _VERSION)
            .u32(self.prekey_id)
            .fixed(self.public)
            .blob(self.signature)
            .finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> KemPrekeyPublic:
        r = Reader(data, Kind.KEM_PREKEY, "KEM prekey", _VERSIONS)
        prekey_id = r.u32()
        public = r.fixed(primitives.MLKEM768_PUBLIC_SIZE)
        signature = r.blob(max_size=1024)
        r.end()
        return cls(prekey_id, public, signature)


@dataclass(frozen=True)
class OneTimePrekeyPublic:
    prekey_id: int
    public: bytes

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.ONE_TIME_PREKEY, _VERSION).u32(self.prekey_id).fixed(self.public).finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OneTimePrekeyPublic:
        r = Reader(data, Kind.ONE_TIME_PREKEY, "one-time prekey", _VERSIONS)
        prekey_id = r.u32()
        public = r.fixed(primitives.X25519_KEY_SIZE)
        r.end()
        return cls(prekey_id, public)


@dataclass(frozen=True)
class PrekeyBundle:
    """What the relay returns for a user; signatures are checked by handshake.initiate."""

    identity_der: bytes
    identity_dh: IdentityDhPublic
    signed_prekey: SignedPrekeyPublic
    kem_prekey: KemPrekeyPublic
    one_time_prekey: OneTimePrekeyPublic | None

    @classmethod
    def from_blobs(
        cls,
        identity_der: bytes,
        identity_dh: bytes,
        signed_prekey: bytes,
        kem_prekey: bytes,
        one_time_prekey: bytes | None,
    ) -> PrekeyBundle:
        """Assemble a bundle from the separate blobs the relay stores."""
        return cls(
            identity_der,
            IdentityDhPublic.from_bytes(identity_dh),
            SignedPrekeyPublic.from_bytes(signed_prekey),
            KemPrekeyPublic.from_bytes(kem_prekey),
            None if one_time_prekey is None else OneTimePrekeyPublic.from_bytes(one_time_prekey),
        )

    def to_bytes(self) -> bytes:
        w = (
            Writer(Kind.PREKEY_BUNDLE, _VERSION)
            .blob(self.identity_der)
            .blob(self.identity_dh.to_bytes())
            .blob(self.signed_prekey.to_bytes())
            .blob(self.kem_prekey.to_bytes())
        )
        if self.one_time_prekey is None:
            return w.u8(0).finish()
        return w.u8(1).blob(self.one_time_prekey.to_bytes()).finish()

    @classmethod
    def from_bytes(cls, data: bytes) -> PrekeyBundle:
        r = Reader(data, Kind.PREKEY_BUNDLE, "prekey bundle", _VERSIONS)
        identity_der = r.blob(max_size=4096)
        identity_dh, signed, kem = r.blob(), r.blob(), r.blob()
        one_time = r.blob() if r.flag() else None
        r.end()
        return cls.from_blobs(identity_der, identity_dh, signed, kem, one_time)


@dataclass(frozen=True, repr=False)
class SignedPrekeySecret:
    prekey_id: int
    private: bytes
    created_at: int


@dataclass(frozen=True, repr=False)
class KemPrekeySecret:
    prekey_id: int
    seed: bytes


@dataclass(frozen=True, repr=False)
class OneTimePrekeySecret:
    prekey_id: int
    private: bytes


@dataclass(frozen=True, repr=False)
class PrekeySecrets:
    """The private prekeys of one device, oldest first in each tuple."""

    signed: tuple[SignedPrekeySecret, ...] = ()
    kem: tuple[KemPrekeySecret, ...] = ()
    one_time: tuple[OneTimePrekeySecret, ...] = ()
    # Ids are never reused, even after the keys holding them were consumed, so a stale
    # bundle can never point at a newer key with the same id.
    next_one_time_id: int = 1
    one_time_kem: tuple[KemPrekeySecret, ...] = ()
    next_one_time_kem_id: int = ONE_TIME_KEM_FIRST_ID

    def __repr__(self) -> str:
        return (
            f"PrekeySecrets(signed={[s.prekey_id for s in self.signed]}, "
            f"kem={[k.prekey_id for k in self.kem]}, one_time={len(self.one_time)}, "
            f"one_time_kem={len(self.one_time_kem)})"
        )

    @property
    def latest_signed(self) -> SignedPrekeySecret | None:
        return self.signed[-1] if self.signed else None

    @property
    def next_signed_id(self) -> int:
        return self.signed[-1].prekey_id + 1 if self.signed else 1

    @property
    def next_kem_id(self) -> int:
        return self.kem[-1].prekey_id + 1 if self.kem else 1

    def with_signed_prekey(
        self, secret: SignedPrekeySecret, keep: int = PREKEYS_KEPT
    ) -> PrekeySecrets:
        return replace(self, signed=(*self.signed, secret)[-keep:])

    def with_kem_prekey(self, secret: KemPrekeySecret, keep: int = PREKEYS_KEPT) -> PrekeySecrets:
        return replace(self, kem=(*self.kem, secret)[-keep:])

    def with_one_time_prekeys(self, secrets: list[OneTimePrekeySecret]) -> PrekeySecrets:
        next_id = max([self.next_one_time_id, *(s.prekey_id + 1 for s in secrets)])
        return replace(self, one_time=(*self.one_time, *secrets), next_one_time_id=next_id)

    def with_one_time_kem_prekeys(self, secrets: list[KemPrekeySecret]) -> PrekeySecrets:
        next_id = max([self.next_one_time_kem_id, *(s.prekey_id + 1 for s in secrets)])
        return replace(
            self, one_time_kem=(*self.one_time_kem, *secrets), next_one_time_kem_id=next_id
        )

    def without_one_time_kem_prekey(self, prekey_id: int) -> PrekeySecrets:
        kept = tuple(s for s in self.one_time_kem if s.prekey_id != prekey_id)
        return replace(self, one_time_kem=kept)

    def without_one_time_prekey(self, prekey_id: int) -> PrekeySecrets:
        return replace(self, one_time=tuple(s for s in self.one_time if s.prekey_id != prekey_id))

    def signed_prekey(self, prekey_id: int) -> SignedPrekeySecret:
        for secret in self.signed:
            if secret.prekey_id == prekey_id:
                return secret
        raise InvalidKeyMaterial(
            "The session request uses a signed prekey that has expired; "
            "your contact's app will retry with your current keys."
        )

    def kem_prekey(self, prekey_id: int) -> KemPrekeySecret:
        """The last-resort or one-time KEM prekey with this id (see `is_one_time_kem`)."""
        for secret in (*self.kem, *self.one_time_kem):
            if secret.prekey_id == prekey_id:
                return secret
        if is_one_time_kem(prekey_id):
            raise DuplicateMessage(
                "The session request reuses a one-time post-quantum prekey that was already "
                "consumed, so it was ignored as a replay."
            )
        raise InvalidKeyMaterial(
            "The session request uses a post-quantum prekey that has expired; "
            "your contact's app will retry with your current keys."
        )

    def one_time_prekey(self, prekey_id: int) -> OneTimePrekeySecret:
        for secret in self.one_time:
            if secret.prekey_id == prekey_id:
                return secret
        raise DuplicateMessage(
            "The session request reuses a one-time prekey that was already consumed, "
            "so it was ignored as a replay."
        )

    def to_bytes(self) -> bytes:
        w = Writer(Kind.PREKEY_SECRETS, _SECRETS_VERSION).u32(self.next_one_time_id)
        w.u32(len(self.signed))
        for s in self.signed:
            w.u32(s.prekey_id).u64(s.created_at).fixed(s.private)
        w.u32(len(self.kem))
        for k in self.kem:
            w.u32(k.prekey_id).fixed(k.seed)
        w.u32(len(self.one_time))
        for o in self.one_time:
            w.u32(o.prekey_id).fixed(o.private)
        w.u32(self.next_one_time_kem_id).u32(len(self.one_time_kem))
        for k in self.one_time_kem:
            w.u32(k.prekey_id).fixed(k.seed)
        return w.finish()

    @classmethod
    def from_bytes(cls, data: bytes) -> PrekeySecrets:
        r = Reader(data, Kind.PREKEY_SECRETS, "prekey store", _SECRETS_VERSIONS)
        next_one_time_id = r.u32()
        signed: list[SignedPrekeySecret] = []
        for _ in range(_count(r, 64)):
            prekey_id, created_at = r.u32(), r.u64()
            signed.append(SignedPrekeySecret(prekey_id, r.fixed(32), created_at))
        kem: list[KemPrekeySecret] = []
        for _ in range(_count(r, 64)):
            prekey_id = r.u32()
            kem.append(KemPrekeySecret(prekey_id, r.fixed(primitives.MLKEM768_SEED_SIZE)))
        one_time: list[OneTimePrekeySecret] = []
        for _ in range(_count(r, _MAX_ONE_TIME)):
            prekey_id = r.u32()
            one_time.append(OneTimePrekeySecret(prekey_id, r.fixed(32)))
        next_one_time_kem_id = ONE_TIME_KEM_FIRST_ID
        one_time_kem: list[KemPrekeySecret] = []
        if r.version >= _SECRETS_VERSION:
            next_one_time_kem_id = r.u32()
            for _ in range(_count(r, _MAX_ONE_TIME_KEM)):
                prekey_id = r.u32()
                seed = r.fixed(primitives.MLKEM768_SEED_SIZE)
                one_time_kem.append(KemPrekeySecret(prekey_id, seed))
        r.end()
        return cls(
            tuple(signed),
            tuple(kem),
            tuple(one_time),
            next_one_time_id,
            tuple(one_time_kem),
            next_one_time_kem_id,
        )


def is_one_time_kem(prekey_id: int) -> bool:
    """One-time KEM prekeys have ids of their own range; last-resort ones count up from 1."""
    return prekey_id >= ONE_TIME_KEM_FIRST_ID


def _count(r: Reader, limit: int) -> int:
    count = r.u32()
    if count > limit:
        raise r.fail("too many entries")
    return count


def _spk_signed_data(prekey_id: int, created_at: int, public: bytes) -> bytes:
    return _SPK_LABEL + _ID_TIME.pack(prekey_id, created_at) + public


def _kem_signed_data(prekey_id: int, public: bytes) -> bytes:
    return _KEM_LABEL + prekey_id.to_bytes(4, "big") + public


def generate_signed_prekey(
    identity: IdentityKeyPair, prekey_id: int, created_at: int
) -> tuple[SignedPrekeySecret, SignedPrekeyPublic]:
    private, public = primitives.x25519_generate()
    signature = identity.sign(_spk_signed_data(prekey_id, created_at, public))
    return (
        SignedPrekeySecret(prekey_id, private, created_at),
        SignedPrekeyPublic(prekey_id, public, created_at, signature),
    )


def generate_kem_prekey(
    identity: IdentityKeyPair, prekey_id: int
) -> tuple[KemPrekeySecret, KemPrekeyPublic]:
    seed, public = primitives.mlkem_generate()
    signature = identity.sign(_kem_signed_data(prekey_id, public))
    return KemPrekeySecret(prekey_id, seed), KemPrekeyPublic(prekey_id, public, signature)


def generate_one_time_kem_prekeys(
    identity: IdentityKeyPair, start_id: int, count: int
) -> tuple[list[KemPrekeySecret], list[KemPrekeyPublic]]:
    """Signed like the last-resort KEM prekey: PQXDH signs every post-quantum prekey."""
    pairs = [
        generate_kem_prekey(identity, prekey_id) for prekey_id in range(start_id, start_id + count)
    ]
    return [secret for secret, _ in pairs], [public for _, public in pairs]


def generate_one_time_prekeys(
    start_id: int, count: int
) -> tuple[list[OneTimePrekeySecret], list[OneTimePrekeyPublic]]:
    secrets: list[OneTimePrekeySecret] = []
    publics: list[OneTimePrekeyPublic] = []
    for prekey_id in range(start_id, start_id + count):
        private, public = primitives.x25519_generate()
        secrets.append(OneTimePrekeySecret(prekey_id, private))
        publics.append(OneTimePrekeyPublic(prekey_id, public))
    return secrets, publics


def needs_rotation(created_at: int, now: int, max_age: int = SIGNED_PREKEY_MAX_AGE) -> bool:
    """True once the signed prekey is `max_age` seconds old (times are Unix seconds)."""
    return now - created_at >= max_age


def needs_replenish(remaining: int, low_water: int = ONE_TIME_LOW_WATER) -> bool:
    """True when the relay holds `low_water` or fewer one-time prekeys for us."""
    return remaining <= low_water
