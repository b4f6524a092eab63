"""The key schedule (RFC 9420 §8): from one epoch's init_secret to the next.

    init_secret_[n-1] + commit_secret  -> joiner_secret      (bound to GroupContext_[n])
    joiner_secret + psk_secret         -> welcome_secret, epoch_secret
    epoch_secret                       -> the secrets below and init_secret_[n]

The epoch_secret itself is not returned: nothing needs it once its children exist,
and §9.2's deletion schedule asks that it not be kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from securechat.crypto.mls import hpke, labels
from securechat.crypto.mls.suite import CipherSuite


@dataclass(frozen=True, repr=False)
class EpochSecrets:
    """The secrets of one epoch (§8, Table 4)."""

    joiner_secret: bytes
    welcome_secret: bytes
    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    epoch_authenticator: bytes
    init_secret: bytes


def joiner_secret(
    suite: CipherSuite, init_secret: bytes, commit_secret: bytes | None, group_context: bytes
) -> bytes:
    """A Commit without a path contributes an all-zero commit_secret."""
    prk = suite.kdf.extract(
        init_secret, bytes(suite.nh) if commit_secret is None else commit_secret
    )
    return labels.expand_with_label(suite, prk, b"joiner", group_context, suite.nh)


def _member_prk(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    return suite.kdf.extract(joiner, bytes(suite.nh) if psk_secret is None else psk_secret)


def welcome_secret(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    """The secret a Welcome's GroupInfo is encrypted under; it needs no GroupContext."""
    return labels.derive_secret(suite, _member_prk(suite, joiner, psk_secret), b"welcome")


def from_joiner(
    suite: CipherSuite, joiner: bytes, psk_secret: bytes | None, group_context: bytes
) -> EpochSecrets:
    """The epoch's secrets from its joiner_secret; a new member starts here (§12.4.3)."""
    member_prk = _member_prk(suite, joiner, psk_secret)
    epoch = labels.expand_with_label(suite, member_prk, b"epoch", group_context, suite.nh)

    def derive(label: bytes) -> bytes:
        return labels.derive_secret(suite, epoch, label)

    return EpochSecrets(
        joiner_secret=joiner,
        welcome_secret=labels.derive_secret(suite, member_prk, b"welcome"),
        sender_data_secret=derive(b"sender data"),
        encryption_secret=derive(b"encryption"),
        exporter_secret=derive(b"exporter"),
        external_secret=derive(b"external"),
        confirmation_key=derive(b"confirm"),
        membership_key=derive(b"membership"),
        resumption_psk=derive(b"resumption"),
        epoch_authenticator=derive(b"authentication"),
        init_secret=derive(b"init"),
    )


def next_epoch(
    suite: CipherSuite,
    init_secret: bytes,
    commit_secret: bytes | None,
    psk_secret: bytes | None,
    group_context: bytes,
) -> EpochSecrets:
    """The secrets of the epoch that `group_context` (encoded) describes."""
    joiner = joiner_secret(suite, init_secret, commit_secret, group_context)
    return from_joiner(suite, joiner, psk_secret, group_context)


def external_key_pair(suite: CipherSuite, external_secret: bytes) -> tuple[bytes, bytes]:
    """The HPKE key pair external joiners encrypt to (§8.3): (private, public)."""
    return hpke.derive_key_pair(suite.dh, external_secret)


def export(
    suite: CipherSuite, exporter_secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """MLS-Exporter (§8.5): a secret for the application, separated by label."""
    secret = labels.derive_secret(suite, exporter_secret, label)
    return labels.expand_with_label(suite, secret, b"exported", suite.kdf.hash(context), length)


def confirmation_tag(
    suite: CipherSuite, confirmation_key: bytes, confirmed_transcript_hash: bytes
) -> bytes:
    """The MAC by which a Commit proves the sender reached the same epoch (§6.1)."""
    return suite.kdf.mac(confirmation_key, confirmed_transcript_hash)
