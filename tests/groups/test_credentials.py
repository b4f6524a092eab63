"""The binding of a device's MLS signature key to its user's identity key."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.mls import group as g
from securechat.crypto.mls.codec import opaque, uint16
from securechat.crypto.mls.errors import CredentialRejected
from securechat.crypto.mls.leaf_node import BASIC, X509, Credential
from securechat.crypto.mls.suite import get_suite
from securechat.groups import credentials as c
from securechat.groups.device import key_package, mls_policy, new_device
from securechat.groups.errors import InvalidCredential
from securechat.groups.session import GroupSession

SUITE = get_suite(1)
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def signing() -> tuple[bytes, bytes]:
    private = SUITE.signature.generate()
    return private, SUITE.signature.public_key(private)


def test_binding_names_user_device_and_identity(
    identities: dict[str, IdentityKeyPair], signing: tuple[bytes, bytes]
) -> None:
    alice = identities["alice"]
    credential = c.bind_device(alice, "alice", "laptop", signing[1])
    member = c.verify_binding(credential, signing[1])
    assert (member.username, member.device, member.identity) == ("alice", "laptop", alice.public)
    assert member.fingerprint == alice.public.fingerprint_hex()
    assert c.username_of(credential) == "alice"
    assert c.validator(credential, signing[1])


def test_binding_is_for_one_signature_key(
    identities: dict[str, IdentityKeyPair], signing: tuple[bytes, bytes]
) -> None:
    """A credential copied onto another signature key (a relay's own) does not verify."""
    credential = c.bind_device(identities["bob"], "bob", "1", signing[1])
    other = SUITE.signature.public_key(SUITE.signature.generate())
    assert not c.validator(credential, other)
    with pytest.raises(InvalidCredential, match="not signed by the identity key"):
        c.verify_binding(credential, other)


def _reencode(
    username: bytes, device: bytes, der: bytes, binding: bytes, version: int = 1
) -> bytes:
    return uint16(version) + opaque(username) + opaque(device) + opaque(der) + opaque(binding)


def test_a_renamed_or_redeviced_credential_fails(
    identities: dict[str, IdentityKeyPair], signing: tuple[bytes, bytes]
) -> None:
    """The username and device are under the identity key's signature."""
    bob = identities["bob"]
    good = c.bind_device(bob, "bob", "1", signing[1])
    binding = good.identity[-384:]
    for user, device in ((b"carol", b"1"), (b"bob", b"2")):
        forged = Credential(BASIC, identity=_reencode(user, device, bob.public.der, binding))
        assert not c.validator(forged, signing[1])


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        (Credential(X509, certificates=(b"x",)), "basic credential"),
        (Credential(BASIC, identity=b"\x00\x01\x05al"), "does not decode"),
        (Credential(BASIC, identity=_reencode(b"a", b"1", b"", b"")), "valid username"),
        (Credential(BASIC, identity=_reencode(b"alice", b"?", b"", b"")), "valid device"),
        (Credential(BASIC, identity=_reencode(b"alice", b"1", b"", b"", 2)), "version 2"),
        (Credential(BASIC, identity=_reencode(b"alice", b"1", b"\x30", b"s")), "not signed"),
    ],
)
def test_malformed_credentials_are_refused(
    credential: Credential, reason: str, signing: tuple[bytes, bytes]
) -> None:
    with pytest.raises(InvalidCredential, match=reason):
        c.verify_binding(credential, signing[1])
    assert isinstance(c.classify(credential, signing[1], lambda _: None), c.Refused)


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_random_credentials_raise_only_invalid_credential(data: bytes) -> None:
    with pytest.raises(InvalidCredential):
        c.verify_binding(Credential(BASIC, identity=data), b"k" * 32)


def test_classify_against_pins(
    identities: dict[str, IdentityKeyPair], signing: tuple[bytes, bytes]
) -> None:
    """Pinned and equal: trusted; nothing pinned: first seen; another key pinned: changed."""
    bob, mallory = identities["bob"], identities["mallory"]
    credential = c.bind_device(bob, "bob", "1", signing[1])
    assert isinstance(c.classify(credential, signing[1], {"bob": bob.public}.get), c.Trusted)
    first = c.classify(credential, signing[1], {}.get)
    assert isinstance(first, c.FirstSeen)
    assert first.fingerprint == bob.public.fingerprint_hex()
    changed = c.classify(credential, signing[1], {"bob": mallory.public}.get)
    assert isinstance(changed, c.KeyChanged)
    assert changed.pinned_fingerprint == mallory.public.fingerprint_hex()
    assert changed.presented_fingerprint == bob.public.fingerprint_hex()


def test_relay_cannot_pass_its_key_package_off_as_someone_elses(
    identities: dict[str, IdentityKeyPair],
) -> None:
    """Mallory's key package, asked for as bob's, names mallory: refused before the Add."""
    device = new_device(identities["mallory"], "mallory", suite_id=1)
    package, _ = key_package(device, now=NOW)
    check = c.classify_key_package(package, {}.get, expected_user="bob")
    assert isinstance(check, c.Refused)
    assert "belongs to mallory" in check.reason


def test_mls_refuses_a_leaf_whose_binding_fails(identities: dict[str, IdentityKeyPair]) -> None:
    """A key package claiming bob's identity key without his signature never enters a group."""
    alice = new_device(identities["alice"], "alice", suite_id=1)
    session = GroupSession.create(alice, "team", now=NOW)
    bob = new_device(identities["bob"], "bob", suite_id=1)
    forged_private = SUITE.signature.generate()
    forged = replace(bob, signature_private=forged_private)
    package, _ = key_package(forged, now=NOW)
    with pytest.raises(CredentialRejected):
        g.commit(session.mls, mls_policy(NOW), proposals=[g.Add(package)])
