"""What the relay keeps, as the stores hand it over: plain frozen records."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password_hash: bytes
    recovery_hash: bytes | None
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    token_hash: bytes
    username: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class NewEnvelope:
    recipient: str
    sender: str
    eid: str
    body: bytes
    ts: float
    sid: int | None = None
    """Set when the relay took it from `QueueStore.reserve_sid` to deliver before the write."""


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    sid: int
    recipient: str
    sender: str
    eid: str
    body: bytes
    ts: float


@dataclass(frozen=True, slots=True)
class KeyBundle:
    identity: bytes
    signed_prekey: bytes
    kem_prekey: bytes
    one_time_prekey: bytes | None
    one_time_kem_prekey: bytes | None = None


@dataclass(frozen=True, slots=True)
class HandedKeyPackage:
    """A key package as `fetch_key_packages` hands it out."""

    user: str
    device: str
    key_package: bytes
    last_resort: bool
    remaining: int
    """One-time packages the device has left after this one (its owner is told when low)."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    owner: str
    size: int
    recipients: frozenset[str]
    fetched_by: frozenset[str]
    next_index: int
    complete: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Throttle:
    """Login or reset failures counted under one key (a name, an address, or both)."""

    count: int
    locked_until: float
    last: float
