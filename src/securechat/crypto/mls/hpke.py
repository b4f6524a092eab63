"""HPKE base mode (RFC 9180) with the DHKEMs of MLS cipher suites 1-7 and X-Wing.

Only the single-shot Seal/Open of mode_base (§6.1) is needed by MLS: every HPKE
context encrypts exactly one message, so the nonce is the base nonce (sequence 0).
Encapsulation normally draws a fresh ephemeral key; passing `ikm_e` derives it
with DeriveKeyPair instead, as RFC 9180's own test vectors do, so tests can fix it.
"""

from __future__ import annotations

from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.suite import CipherSuite, Dh, Kdf, Kem, XWing, random_bytes

_VERSION = b"HPKE-v1"
_MODE_BASE = b"\x00"


def _labeled_extract(kdf: Kdf, suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return kdf.extract(salt, _VERSION + suite_id + label + ikm)


def _labeled_expand(
    kdf: Kdf, suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int
) -> bytes:
    labeled_info = length.to_bytes(2, "big") + _VERSION + suite_id + label + info
    return kdf.expand(prk, labeled_info, length)


def _kem_suite_id(dh: Kem) -> bytes:
    return b"KEM" + dh.kem_id.to_bytes(2, "big")


def derive_key_pair(dh: Kem, ikm: bytes) -> tuple[bytes, bytes]:
    """DeriveKeyPair (RFC 9180 §7.1.3): (private, public), both serialised."""
    if isinstance(dh, XWing):
        return dh.derive_key_pair(ikm)
    sid = _kem_suite_id(dh)
    dkp_prk = _labeled_extract(dh.kdf, sid, b"", b"dkp_prk", ikm)
    if not dh.is_nist:
        private = _labeled_expand(dh.kdf, sid, dkp_prk, b"sk", b"", dh.n_sk)
        return private, dh.public_key(private)
    for counter in range(256):
        candidate = bytearray(
            _labeled_expand(dh.kdf, sid, dkp_prk, b"candidate", bytes([counter]), dh.n_sk)
        )
        candidate[0] &= dh.candidate_bitmask
        scalar = int.from_bytes(candidate, "big")
        if 0 < scalar < dh.order:
            private = bytes(candidate)
            return private, dh.public_key(private)
    raise MLSError("DeriveKeyPair found no valid scalar.")  # pragma: no cover (p ~ 2^-256)


def generate_key_pair(dh: Kem) -> tuple[bytes, bytes]:
    return derive_key_pair(dh, random_bytes(dh.n_sk))


def _extract_and_expand(dh: Dh, shared: bytes, kem_context: bytes) -> bytes:
    sid = _kem_suite_id(dh)
    eae_prk = _labeled_extract(dh.kdf, sid, b"", b"eae_prk", shared)
    return _labeled_expand(dh.kdf, sid, eae_prk, b"shared_secret", kem_context, dh.n_secret)


def encap(dh: Kem, public_r: bytes, ikm_e: bytes | None = None) -> tuple[bytes, bytes]:
    """(shared_secret, enc) for the holder of `public_r` (RFC 9180 §4.1). X-Wing's
    shared secret is used as it comes, as the draft's "Use in HPKE" says."""
    if isinstance(dh, XWing):
        if ikm_e is not None:
            raise ValueError("X-Wing encapsulation cannot be derandomised with cryptography")
        return dh.encapsulate(public_r)
    private_e, enc = derive_key_pair(dh, ikm_e) if ikm_e is not None else generate_key_pair(dh)
    shared = dh.dh(private_e, public_r)
    return _extract_and_expand(dh, shared, enc + public_r), enc


def decap(dh: Kem, enc: bytes, private_r: bytes) -> bytes:
    if isinstance(dh, XWing):
        return dh.decapsulate(enc, private_r)
    shared = dh.dh(private_r, enc)
    return _extract_and_expand(dh, shared, enc + dh.public_key(private_r))


def _key_schedule_base(
    suite: CipherSuite, shared_secret: bytes, info: bytes
) -> tuple[bytes, bytes]:
    """(key, base_nonce) of KeySchedule<ROLE>(mode_base, ...) (RFC 9180 §5.1)."""
    key, base_nonce, _ = _key_schedule_full(suite, shared_secret, info)
    return key, base_nonce


def _key_schedule_full(
    suite: CipherSuite, shared_secret: bytes, info: bytes
) -> tuple[bytes, bytes, bytes]:
    """(key, base_nonce, exporter_secret) of KeySchedule<ROLE>(mode_base, ...)."""
    kdf, sid = suite.kdf, suite.hpke_suite_id()
    psk_id_hash = _labeled_extract(kdf, sid, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(kdf, sid, b"", b"info_hash", info)
    context = _MODE_BASE + psk_id_hash + info_hash
    secret = _labeled_extract(kdf, sid, shared_secret, b"secret", b"")
    key = _labeled_expand(kdf, sid, secret, b"key", context, suite.aead.nk)
    base_nonce = _labeled_expand(kdf, sid, secret, b"base_nonce", context, suite.aead.nn)
    exporter = _labeled_expand(kdf, sid, secret, b"exp", context, suite.nh)
    return key, base_nonce, exporter


def _export(suite: CipherSuite, exporter_secret: bytes, context: bytes, length: int) -> bytes:
    """Context.Export (RFC 9180 §5.3)."""
    return _labeled_expand(
        suite.kdf, suite.hpke_suite_id(), exporter_secret, b"sec", context, length
    )


def send_export(
    suite: CipherSuite,
    public_r: bytes,
    info: bytes,
    exporter_context: bytes,
    length: int,
    *,
    ikm_e: bytes | None = None,
) -> tuple[bytes, bytes]:
    """SetupBaseS then Export: (enc, exported secret), as an external joiner needs (§8.3)."""
    shared, enc = encap(suite.dh, public_r, ikm_e)
    _, _, exporter = _key_schedule_full(suite, shared, info)
    return enc, _export(suite, exporter, exporter_context, length)


def receive_export(
    suite: CipherSuite,
    private_r: bytes,
    enc: bytes,
    info: bytes,
    exporter_context: bytes,
    length: int,
) -> bytes:
    """SetupBaseR then Export: the secret `send_export` produced for `enc`."""
    shared = decap(suite.dh, enc, private_r)
    _, _, exporter = _key_schedule_full(suite, shared, info)
    return _export(suite, exporter, exporter_context, length)


def seal_base(
    suite: CipherSuite,
    public_r: bytes,
    info: bytes,
    aad: bytes,
    plaintext: bytes,
    *,
    ikm_e: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Single-shot SealBase: (enc, ciphertext)."""
    shared, enc = encap(suite.dh, public_r, ikm_e)
    key, nonce = _key_schedule_base(suite, shared, info)
    return enc, suite.aead.seal(key, nonce, aad, plaintext)


def open_base(
    suite: CipherSuite, private_r: bytes, enc: bytes, info: bytes, aad: bytes, ciphertext: bytes
) -> bytes:
    """Single-shot OpenBase; MLSAuthenticationFailed when the ciphertext does not open."""
    shared = decap(suite.dh, enc, private_r)
    key, nonce = _key_schedule_base(suite, shared, info)
    return suite.aead.open(key, nonce, aad, ciphertext)
