"""Opening a Welcome (RFC 9420 §12.4.3.1) against welcome.json."""

from __future__ import annotations

from dataclasses import replace

import pytest

from securechat.crypto.mls import key_schedule
from securechat.crypto.mls.errors import (
    InvalidMessage,
    InvalidMLSSignature,
    MLSAuthenticationFailed,
)
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.suite import CipherSuite
from securechat.crypto.mls.welcome import Welcome, open_group_info, open_group_secrets
from tests.crypto.mls.vectors import by_suite


def _case(suite: CipherSuite) -> tuple[Welcome, KeyPackage, bytes, bytes]:
    [v] = by_suite("welcome.json", suite.id)
    welcome = MLSMessage.decode(bytes.fromhex(v["welcome"])).message
    key_package = MLSMessage.decode(bytes.fromhex(v["key_package"])).message
    assert isinstance(welcome, Welcome) and isinstance(key_package, KeyPackage)
    return welcome, key_package, bytes.fromhex(v["init_priv"]), bytes.fromhex(v["signer_pub"])


def test_welcome_vectors(suite: CipherSuite) -> None:
    """GroupSecrets and GroupInfo decrypt, the signature verifies, the tag confirms."""
    welcome, key_package, init_priv, signer_pub = _case(suite)
    secrets = open_group_secrets(suite, welcome, key_package, init_priv)
    info = open_group_info(suite, welcome, secrets.joiner_secret, None)
    info.verify(suite, signer_pub)
    epoch = key_schedule.from_joiner(
        suite, secrets.joiner_secret, None, info.group_context.encode()
    )
    info.verify_confirmation_tag(suite, epoch.confirmation_key)
    assert info.group_context.cipher_suite == suite.id


def test_welcome_for_another_key_package_or_key_fails(suite: CipherSuite) -> None:
    welcome, key_package, init_priv, _ = _case(suite)
    with pytest.raises(InvalidMessage):
        open_group_secrets(suite, replace(welcome, secrets=()), key_package, init_priv)
    other_priv = bytes(len(init_priv) - 1) + b"\x01"
    with pytest.raises(MLSAuthenticationFailed):
        open_group_secrets(suite, welcome, key_package, other_priv)


def test_group_info_signed_by_another_or_wrong_tag_fails(suite: CipherSuite) -> None:
    welcome, key_package, init_priv, _ = _case(suite)
    secrets = open_group_secrets(suite, welcome, key_package, init_priv)
    info = open_group_info(suite, welcome, secrets.joiner_secret, None)
    other = suite.signature.public_key(suite.signature.generate())
    with pytest.raises(InvalidMLSSignature):
        info.verify(suite, other)
    with pytest.raises(MLSAuthenticationFailed):
        info.verify_confirmation_tag(suite, bytes(suite.nh))
    with pytest.raises(MLSAuthenticationFailed):
        open_group_info(suite, welcome, secrets.joiner_secret, bytes([1]) * suite.nh)


def test_key_package_signatures(suite: CipherSuite) -> None:
    """The Welcome's key package verifies; one with a changed init key does not."""
    _, key_package, _, _ = _case(suite)
    key_package.verify(suite)
    with pytest.raises(InvalidMLSSignature):
        replace(key_package, init_key=bytes(len(key_package.init_key))).verify(suite)
