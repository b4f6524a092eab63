"""This device's part in every group: its MLS signing key, the credential binding
that key to our identity key, and the key packages it publishes.

The signing key and credential are made once per device (the binding costs an
RSA-3072 signature) and reused in every key package and group; the relay hands
each key package out once, like a one-time prekey.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.mls import group as g
from securechat.crypto.mls.leaf_node import Capabilities, Credential, KeyPackage
from securechat.crypto.mls.suite import DEFAULT_SUITE, get_suite
from securechat.crypto.mls.validation import Policy
from securechat.groups import credentials
from securechat.groups.credentials import DEFAULT_DEVICE
from securechat.groups.extensions import LEAF_EXTENSION_TYPES


@dataclass(frozen=True, repr=False)
class Device:
    """This device's MLS signing key and the credential binding it to our identity:
    made once per device, used in every key package and group."""

    username: str
    device: str
    suite_id: int
    signature_private: bytes
    credential: Credential


def new_device(
    identity: IdentityKeyPair,
    username: str,
    device: str = DEFAULT_DEVICE,
    *,
    suite_id: int = DEFAULT_SUITE,
) -> Device:
    suite = get_suite(suite_id)
    signature_private = suite.signature.generate()
    credential = credentials.bind_device(
        identity, username, device, suite.signature.public_key(signature_private)
    )
    return Device(username, device, suite_id, signature_private, credential)


def capabilities(suite_id: int) -> Capabilities:
    base = g.default_capabilities(get_suite(suite_id))
    return replace(base, extensions=LEAF_EXTENSION_TYPES)


def key_package(device: Device, *, now: int) -> tuple[KeyPackage, g.KeyPackagePrivate]:
    """A key package to publish; the relay hands each out once."""
    return g.make_key_package(
        device.credential,
        device.signature_private,
        now=now,
        suite_id=device.suite_id,
        capabilities=capabilities(device.suite_id),
    )


def mls_policy(now: int) -> Policy:
    return Policy(credentials.validator, now)
