"""A group member's MLS credential, bound to their securechat identity key.

MLS proves that a leaf was made by the holder of its signature key; it does not
say whose key that is (RFC 9420 §5.3.1 leaves that to the application). In
securechat a person is their RSA-PSS identity key: the key `sharekey` pins and
`verify` compares. So each device's MLS signature key is signed by the identity
key, together with the username, the device id and a purpose label, and the
basic credential carries the identity key and that signature. Any member, and an
invitee who has never met the signer, can check the binding from the credential
alone, then compare the identity key with the one it pinned, exactly as a
one-to-one session does.

A leaf is a device: a user with two devices has two leaves, each with its own
signature key and binding, both naming the same user and identity key. Adding a
second device is an ordinary Add.

The checks are split in two on purpose:
- `validator` (for the MLS Policy) accepts a credential whose binding verifies.
  Every member reaches the same answer, so every member accepts or refuses the
  same Commit and the group cannot split over it.
- `classify` compares the bound identity key with this device's pins. Pins
  differ between members, so the answer is a warning shown to this user (and a
  reason to stop sending), never a reason to refuse the Commit.

Encoding (TLS presentation language, crypto/mls/codec.py), the basic
credential's `identity`:

    struct {
        uint16 version = 1;
        opaque username<V>;      // UTF-8, protocol.limits.USERNAME_PATTERN
        opaque device<V>;        // ASCII, DEVICE_PATTERN
        opaque identity_key<V>;  // canonical RSA-3072 SubjectPublicKeyInfo DER
        opaque binding<V>;       // RSA-PSS over BindingTBS
    } MemberCredential;

    BindingTBS = "securechat mls member v1" || 0x00 || username<V> || device<V>
                 || signature_key<V>
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from securechat.crypto.errors import CryptoError
from securechat.crypto.identity import IdentityKeyPair, IdentityPublicKey
from securechat.crypto.mls.codec import Reader, decode, opaque, uint16
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.leaf_node import BASIC, Credential, KeyPackage, LeafNode
from securechat.groups.errors import InvalidCredential
from securechat.protocol.limits import USERNAME_PATTERN

CREDENTIAL_VERSION = 1
BINDING_LABEL = b"securechat mls member v1\x00"
DEVICE_PATTERN = r"^[A-Za-z0-9_\-]{1,32}$"
DEFAULT_DEVICE = "1"
"""The device id of a user's first (for now, only) device."""
MAX_BINDING_BYTES = 1024
USERNAME_CACHE_SIZE = 8192
"""Credentials whose username is remembered: a few large groups' rosters (~1 KB each)."""

_USERNAME = re.compile(USERNAME_PATTERN)
_DEVICE = re.compile(DEVICE_PATTERN)

PinnedKeys = Callable[[str], IdentityPublicKey | None]
"""The identity key this device has pinned for a username, or None (never met)."""


@dataclass(frozen=True)
class MemberIdentity:
    """Who a leaf says it is: the user, the device, and the identity key vouching for it."""

    username: str
    device: str
    identity: IdentityPublicKey

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint_hex()


def _binding_tbs(username: str, device: str, signature_key: bytes) -> bytes:
    return (
        BINDING_LABEL + opaque(username.encode()) + opaque(device.encode()) + opaque(signature_key)
    )


def _check_names(username: str, device: str) -> None:
    if not _USERNAME.match(username):
        raise InvalidCredential(f"{username!r} is not a valid username.")
    if not _DEVICE.match(device):
        raise InvalidCredential(f"{device!r} is not a valid device id.")


def bind_device(
    identity: IdentityKeyPair, username: str, device: str, signature_public: bytes
) -> Credential:
    """The credential for this device's MLS signature key, signed once per device
    (an RSA-3072 signature costs milliseconds; key packages reuse the credential)."""
    _check_names(username, device)
    binding = identity.sign(_binding_tbs(username, device, signature_public))
    encoded = (
        uint16(CREDENTIAL_VERSION)
        + opaque(username.encode())
        + opaque(device.encode())
        + opaque(identity.public.der)
        + opaque(binding)
    )
    return Credential(BASIC, identity=encoded)


def _read(r: Reader) -> tuple[str, str, bytes, bytes]:
    version = r.uint16()
    if version != CREDENTIAL_VERSION:
        raise InvalidCredential(f"Member credential version {version} is not one we read.")
    username = r.opaque().decode("utf-8")
    device = r.opaque().decode("ascii")
    return username, device, r.opaque(), r.opaque()


def verify_binding(credential: Credential, signature_key: bytes) -> MemberIdentity:
    """The member a credential names, once its identity key is shown to have signed
    `signature_key` for that user and device; InvalidCredential otherwise."""
    if credential.credential_type != BASIC:
        raise InvalidCredential("A group member's credential must be a basic credential.")
    try:
        username, device, der, binding = decode(credential.identity, _read)
    except (MLSError, UnicodeDecodeError):
        raise InvalidCredential("The member credential does not decode.") from None
    _check_names(username, device)
    if len(binding) > MAX_BINDING_BYTES:
        raise InvalidCredential("The member credential's binding is too long.")
    try:
        identity = IdentityPublicKey.from_der(der)
        identity.verify(binding, _binding_tbs(username, device, signature_key))
    except CryptoError:
        raise InvalidCredential(
            f"The credential of {username} is not signed by the identity key it carries."
        ) from None
    return MemberIdentity(username, device, identity)


def validator(credential: Credential, signature_key: bytes) -> bool:
    """The MLS CredentialValidator for securechat groups: the binding verifies.
    Whether the key is the one this device pinned is `classify`'s question."""
    try:
        verify_binding(credential, signature_key)
    except InvalidCredential:
        return False
    return True


# --- what this device makes of a member ------------------------------------------


@dataclass(frozen=True)
class Trusted:
    """The bound identity key is the one pinned for this user."""

    member: MemberIdentity


@dataclass(frozen=True)
class FirstSeen:
    """No key is pinned for this user: trust on first use, showing the fingerprint."""

    member: MemberIdentity

    @property
    def fingerprint(self) -> str:
        return self.member.fingerprint


@dataclass(frozen=True)
class KeyChanged:
    """Another identity key than the pinned one: the key-change warning of one-to-one
    conversations; sending to the group stops until the user runs verify/trust."""

    member: MemberIdentity
    pinned: IdentityPublicKey

    @property
    def pinned_fingerprint(self) -> str:
        return self.pinned.fingerprint_hex()

    @property
    def presented_fingerprint(self) -> str:
        return self.member.fingerprint


@dataclass(frozen=True)
class Refused:
    """The credential binds nothing: a leaf nobody should accept."""

    reason: str


CredentialCheck = Trusted | FirstSeen | KeyChanged | Refused


def classify(credential: Credential, signature_key: bytes, pinned: PinnedKeys) -> CredentialCheck:
    """Check a leaf's credential against this device's pins (pure: `pinned` only looks)."""
    try:
        member = verify_binding(credential, signature_key)
    except InvalidCredential as exc:
        return Refused(str(exc))
    key = pinned(member.username)
    if key is None:
        return FirstSeen(member)
    if key.der != member.identity.der:
        return KeyChanged(member, key)
    return Trusted(member)


def classify_leaf(leaf: LeafNode, pinned: PinnedKeys) -> CredentialCheck:
    return classify(leaf.credential, leaf.signature_key, pinned)


def classify_key_package(
    key_package: KeyPackage, pinned: PinnedKeys, *, expected_user: str | None = None
) -> CredentialCheck:
    """Before an Add: the key package the relay handed out for `expected_user` must
    name that user, or the relay swapped it."""
    check = classify_leaf(key_package.leaf_node, pinned)
    if (
        expected_user is not None
        and not isinstance(check, Refused)
        and check.member.username != expected_user
    ):
        return Refused(
            f"The key package given for {expected_user} belongs to {check.member.username}."
        )
    return check


def username_of(credential: Credential) -> str:
    """The username a member's credential names, without checking its binding again:
    the MLS validator checked it when the leaf entered the tree, and a Commit
    touching a thousand-member group must not cost a thousand RSA verifications.
    Every Commit asks this of the whole roster (who stays, who is admin), so the
    answers are cached by the credential's bytes, which leaves share across epochs."""
    return _username(credential.identity)


@lru_cache(maxsize=USERNAME_CACHE_SIZE)
def _username(identity: bytes) -> str:
    try:
        username, _, _, _ = decode(identity, _read)
    except (MLSError, UnicodeDecodeError):
        raise InvalidCredential("The member credential does not decode.") from None
    return username


def member_of(credential: Credential) -> MemberIdentity:
    """The member a credential in the tree names (binding checked on entry, as above)."""
    try:
        username, device, der, _ = decode(credential.identity, _read)
        return MemberIdentity(username, device, IdentityPublicKey.from_der(der))
    except (MLSError, UnicodeDecodeError, CryptoError):
        raise InvalidCredential("The member credential does not decode.") from None
