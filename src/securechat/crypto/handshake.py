"""Session start, after Signal's PQXDH, with an RSA identity bound by signatures.

RSA cannot do Diffie-Hellman, so each identity owns an X25519 agreement key (IK_x) signed
by its RSA key; every DH below uses X25519 and every signature is checked against the
*pinned* RSA identity, so a relay that swaps keys is caught either by the pin
(IdentityKeyMismatch) or by a signature (InvalidSignature).

Initiator A, responder B, with B's bundle (IK_B, IK_B_x, SPK_B, PQSPK_B, optional OPK_B):

    DH1 = X25519(IK_A_x, SPK_B)     DH2 = X25519(EK_A, IK_B_x)
    DH3 = X25519(EK_A, SPK_B)       DH4 = X25519(EK_A, OPK_B)   (only with a one-time prekey)
    (CT, SS) = ML-KEM-768.Encaps(PQSPK_B)
    SK = HKDF-SHA-256(ikm = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4] || SS,
                      salt = 0x00*32, info = INFO, length = 32)

INFO and the session id are spelled out in docs/crypto.md; both commit to the transcript
hash, which covers both usernames, both identities and agreement keys, every prekey used
(id and public key), EK_A and CT. SK seeds the Double Ratchet with SPK_B as B's first
ratchet key, as in Signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from securechat.crypto import primitives
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.errors import IdentityKeyMismatch
from securechat.crypto.identity import IdentityDhPublic, IdentityKeyPair, IdentityPublicKey
from securechat.crypto.prekeys import PrekeyBundle, PrekeySecrets, is_one_time_kem
from securechat.crypto.ratchet import RatchetState, start_as_initiator, start_as_responder

PROTOCOL_LABEL = b"securechat PQXDH X25519 SHA-256 ML-KEM-768 v1"
_SESSION_ID_LABEL = b"securechat session-id v1"
_F = b"\xff" * 32
_SALT = b"\x00" * 32
_VERSION = 1


@dataclass(frozen=True)
class InitialMessage:
    """Sent by the initiator together with its first ratchet message."""

    identity_der: bytes
    identity_dh: IdentityDhPublic
    ephemeral: bytes
    kem_ciphertext: bytes
    signed_prekey_id: int
    kem_prekey_id: int
    one_time_prekey_id: int | None

    def to_bytes(self) -> bytes:
        w = (
            Writer(Kind.INITIAL_MESSAGE, _VERSION)
            .blob(self.identity_der)
            .blob(self.identity_dh.to_bytes())
            .fixed(self.ephemeral)
            .fixed(self.kem_ciphertext)
            .u32(self.signed_prekey_id)
            .u32(self.kem_prekey_id)
        )
        if self.one_time_prekey_id is None:
            return w.u8(0).finish()
        return w.u8(1).u32(self.one_time_prekey_id).finish()

    @classmethod
    def from_bytes(cls, data: bytes) -> InitialMessage:
        r = Reader(data, Kind.INITIAL_MESSAGE, "session request", frozenset({_VERSION}))
        identity_der = r.blob(max_size=4096)
        identity_dh = IdentityDhPublic.from_bytes(r.blob(max_size=4096))
        ephemeral = r.fixed(primitives.X25519_KEY_SIZE)
        kem_ciphertext = r.fixed(primitives.MLKEM768_CIPHERTEXT_SIZE)
        signed_prekey_id, kem_prekey_id = r.u32(), r.u32()
        one_time_prekey_id = r.u32() if r.flag() else None
        r.end()
        return cls(
            identity_der,
            identity_dh,
            ephemeral,
            kem_ciphertext,
            signed_prekey_id,
            kem_prekey_id,
            one_time_prekey_id,
        )


class InitiatorResult(NamedTuple):
    state: RatchetState
    initial: InitialMessage
    peer_identity: IdentityPublicKey
    # True when nothing was pinned (first contact): the caller must now pin peer_identity.
    newly_pinned: bool


class ResponderResult(NamedTuple):
    """Commit `secrets` and the pin only after the accompanying first message decrypts."""

    state: RatchetState
    secrets: PrekeySecrets
    peer_identity: IdentityPublicKey
    newly_pinned: bool


def initiate(
    my_identity: IdentityKeyPair,
    my_user: str,
    peer_user: str,
    pinned_peer_identity: IdentityPublicKey | None,
    bundle: PrekeyBundle,
) -> InitiatorResult:
    peer_identity = _check_pin(peer_user, pinned_peer_identity, bundle.identity_der)
    bundle.identity_dh.verify(peer_identity)
    bundle.signed_prekey.verify(peer_identity)
    bundle.kem_prekey.verify(peer_identity)

    ephemeral_private, ephemeral_public = primitives.x25519_generate()
    shared_secret, kem_ciphertext = primitives.mlkem_encapsulate(bundle.kem_prekey.public)
    spk = bundle.signed_prekey.public
    dh = [
        primitives.x25519_agree(my_identity.dh_private, spk),
        primitives.x25519_agree(ephemeral_private, bundle.identity_dh.public),
        primitives.x25519_agree(ephemeral_private, spk),
    ]
    opk = bundle.one_time_prekey
    if opk is not None:
        dh.append(primitives.x25519_agree(ephemeral_private, opk.public))

    initial = InitialMessage(
        identity_der=my_identity.public.der,
        identity_dh=my_identity.signed_dh_public(),
        ephemeral=ephemeral_public,
        kem_ciphertext=kem_ciphertext,
        signed_prekey_id=bundle.signed_prekey.prekey_id,
        kem_prekey_id=bundle.kem_prekey.prekey_id,
        one_time_prekey_id=None if opk is None else opk.prekey_id,
    )
    transcript = _transcript_hash(
        initiator_user=my_user,
        responder_user=peer_user,
        initial=initial,
        responder_identity=peer_identity,
        responder_dh=bundle.identity_dh.public,
        signed_prekey=spk,
        kem_prekey=bundle.kem_prekey.public,
        one_time_prekey=None if opk is None else opk.public,
    )
    session_id, shared_key = _derive(
        dh, shared_secret, my_user, peer_user, my_identity.public, peer_identity, transcript
    )
    return InitiatorResult(
        state=start_as_initiator(session_id, shared_key, spk),
        initial=initial,
        peer_identity=peer_identity,
        newly_pinned=pinned_peer_identity is None,
    )


def respond(
    my_identity: IdentityKeyPair,
    my_user: str,
    peer_user: str,
    pinned_peer_identity: IdentityPublicKey | None,
    secrets: PrekeySecrets,
    initial: InitialMessage,
) -> ResponderResult:
    peer_identity = _check_pin(peer_user, pinned_peer_identity, initial.identity_der)
    initial.identity_dh.verify(peer_identity)

    signed = secrets.signed_prekey(initial.signed_prekey_id)
    kem = secrets.kem_prekey(initial.kem_prekey_id)
    dh = [
        primitives.x25519_agree(signed.private, initial.identity_dh.public),
        primitives.x25519_agree(my_identity.dh_private, initial.ephemeral),
        primitives.x25519_agree(signed.private, initial.ephemeral),
    ]
    one_time_public = None
    remaining = secrets
    if initial.one_time_prekey_id is not None:
        one_time = secrets.one_time_prekey(initial.one_time_prekey_id)
        dh.append(primitives.x25519_agree(one_time.private, initial.ephemeral))
        one_time_public = primitives.x25519_public(one_time.private)
        remaining = secrets.without_one_time_prekey(one_time.prekey_id)
    if is_one_time_kem(kem.prekey_id):
        remaining = remaining.without_one_time_kem_prekey(kem.prekey_id)
    shared_secret = primitives.mlkem_decapsulate(kem.seed, initial.kem_ciphertext)

    transcript = _transcript_hash(
        initiator_user=peer_user,
        responder_user=my_user,
        initial=initial,
        responder_identity=my_identity.public,
        responder_dh=my_identity.dh_public,
        signed_prekey=primitives.x25519_public(signed.private),
        kem_prekey=primitives.mlkem_public_from_seed(kem.seed),
        one_time_prekey=one_time_public,
    )
    session_id, shared_key = _derive(
        dh, shared_secret, peer_user, my_user, peer_identity, my_identity.public, transcript
    )
    return ResponderResult(
        state=start_as_responder(session_id, shared_key, signed.private),
        secrets=remaining,
        peer_identity=peer_identity,
        newly_pinned=pinned_peer_identity is None,
    )


def _check_pin(
    user: str, pinned: IdentityPublicKey | None, offered_der: bytes
) -> IdentityPublicKey:
    offered = IdentityPublicKey.from_der(offered_der)
    if pinned is not None and not primitives.constant_time_equal(pinned.der, offered.der):
        raise IdentityKeyMismatch(user, pinned.fingerprint_hex(), offered.fingerprint_hex())
    return offered


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _transcript_hash(
    *,
    initiator_user: str,
    responder_user: str,
    initial: InitialMessage,
    responder_identity: IdentityPublicKey,
    responder_dh: bytes,
    signed_prekey: bytes,
    kem_prekey: bytes,
    one_time_prekey: bytes | None,
) -> bytes:
    one_time_id = initial.one_time_prekey_id
    fields = [
        PROTOCOL_LABEL,
        initiator_user.encode(),
        responder_user.encode(),
        initial.identity_der,
        initial.identity_dh.public,
        responder_identity.der,
        responder_dh,
        initial.signed_prekey_id.to_bytes(4, "big"),
        signed_prekey,
        initial.kem_prekey_id.to_bytes(4, "big"),
        kem_prekey,
        b"" if one_time_id is None else one_time_id.to_bytes(4, "big"),
        b"" if one_time_prekey is None else one_time_prekey,
        initial.ephemeral,
        initial.kem_ciphertext,
    ]
    return primitives.sha256(b"".join(_lp(f) for f in fields))


def _derive(
    dh: list[bytes],
    kem_secret: bytes,
    initiator_user: str,
    responder_user: str,
    initiator_identity: IdentityPublicKey,
    responder_identity: IdentityPublicKey,
    transcript: bytes,
) -> tuple[bytes, bytes]:
    """(session id, SK) from the DH outputs, the KEM secret and the transcript hash."""
    info = b"".join(
        (
            PROTOCOL_LABEL,
            _lp(initiator_user.encode()),
            _lp(responder_user.encode()),
            initiator_identity.fingerprint(),
            responder_identity.fingerprint(),
            transcript,
        )
    )
    shared_key = primitives.hkdf_sha256(_F + b"".join(dh) + kem_secret, _SALT, info, 32)
    return primitives.sha256(_SESSION_ID_LABEL + transcript), shared_key
