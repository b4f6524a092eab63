"""Builders shared by the crypto tests (fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from securechat.crypto import (
    IdentityKeyPair,
    PrekeyBundle,
    PrekeySecrets,
    RatchetState,
    generate_kem_prekey,
    generate_one_time_prekeys,
    generate_signed_prekey,
)


def publish(identity: IdentityKeyPair, one_time: int = 3) -> tuple[PrekeySecrets, PrekeyBundle]:
    """Prekeys for `identity` and a bundle carrying its first one-time prekey."""
    signed_secret, signed_public = generate_signed_prekey(identity, 1, created_at=1_700_000_000)
    kem_secret, kem_public = generate_kem_prekey(identity, 1)
    otk_secrets, otk_publics = generate_one_time_prekeys(1, one_time)
    secrets = (
        PrekeySecrets()
        .with_signed_prekey(signed_secret)
        .with_kem_prekey(kem_secret)
        .with_one_time_prekeys(otk_secrets)
    )
    bundle = PrekeyBundle(
        identity.public.der,
        identity.signed_dh_public(),
        signed_public,
        kem_public,
        otk_publics[0] if otk_publics else None,
    )
    return secrets, bundle


@dataclass(frozen=True)
class Session:
    alice: RatchetState
    bob: RatchetState
