"""Known-answer and negative tests for the wrappers in crypto/primitives.py (Wycheproof)."""

from __future__ import annotations

from typing import Any

import pytest

from securechat.crypto import primitives
from securechat.crypto.errors import AuthenticationFailed, InvalidKeyMaterial, InvalidSignature

# AES-GCM nonces the library refuses outright (it takes 8 to 128 bytes).
_GCM_NONCE_RANGE = range(8, 129)


@pytest.mark.wycheproof("aes_gcm_test.json")
def test_aes_gcm(case: dict[str, Any]) -> None:
    """AES-GCM seal and open agree with Wycheproof; every modified tag is rejected."""
    key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["iv"])
    aad, msg = bytes.fromhex(case["aad"]), bytes.fromhex(case["msg"])
    sealed = bytes.fromhex(case["ct"] + case["tag"])
    if len(iv) not in _GCM_NONCE_RANGE:
        if case["result"] == "valid":
            pytest.skip(f"cryptography refuses {len(iv)}-byte GCM nonces (it takes 8-128)")
        with pytest.raises(ValueError):
            primitives.AesGcm(key).open(iv, sealed, aad)
        return
    aead = primitives.AesGcm(key)
    if case["result"] == "valid":
        assert aead.seal(iv, msg, aad) == sealed
        assert aead.open(iv, sealed, aad) == msg
    else:
        with pytest.raises(AuthenticationFailed):
            aead.open(iv, sealed, aad)


@pytest.mark.wycheproof("x25519_test.json")
def test_x25519(case: dict[str, Any]) -> None:
    """X25519 matches Wycheproof; low-order ("acceptable") points may only be refused cleanly."""
    private, public = bytes.fromhex(case["private"]), bytes.fromhex(case["public"])
    shared = bytes.fromhex(case["shared"])
    if case["result"] == "valid":
        assert primitives.x25519_agree(private, public) == shared
        return
    try:
        result = primitives.x25519_agree(private, public)
    except InvalidKeyMaterial:
        assert shared == bytes(32), "only all-zero (low-order) results may be refused"
    else:
        assert result == shared


@pytest.mark.wycheproof("mlkem_768_test.json")
def test_mlkem_768(case: dict[str, Any]) -> None:
    """Seed keygen gives the expected ek, decaps gives K; malformed inputs never give K."""
    seed, ciphertext = bytes.fromhex(case["seed"]), bytes.fromhex(case["c"])
    if case["result"] == "valid":
        assert primitives.mlkem_public_from_seed(seed) == bytes.fromhex(case["ek"])
        assert primitives.mlkem_decapsulate(seed, ciphertext) == bytes.fromhex(case["K"])
        return
    with pytest.raises(InvalidKeyMaterial):
        primitives.mlkem_decapsulate(seed, ciphertext)


def test_mlkem_encapsulation_round_trip() -> None:
    """Encapsulation has no vectors (it is randomised), so check it against decapsulation."""
    seed, public = primitives.mlkem_generate()
    secret, ciphertext = primitives.mlkem_encapsulate(public)
    assert primitives.mlkem_decapsulate(seed, ciphertext) == secret
    assert primitives.mlkem_public_from_seed(seed) == public


def test_mlkem_tampered_ciphertext_gives_another_secret() -> None:
    """Implicit rejection: a flipped ciphertext bit yields an unrelated secret, not an error."""
    seed, public = primitives.mlkem_generate()
    secret, ciphertext = primitives.mlkem_encapsulate(public)
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    assert primitives.mlkem_decapsulate(seed, tampered) != secret


def test_mlkem_rejects_wrong_size_public_key() -> None:
    """A truncated encapsulation key is refused before it reaches the library."""
    _, public = primitives.mlkem_generate()
    with pytest.raises(InvalidKeyMaterial):
        primitives.mlkem_encapsulate(public[:-1])


@pytest.mark.wycheproof("rsa_pss_2048_sha256_mgf1_32_test.json")
def test_rsa_pss_2048(case: dict[str, Any]) -> None:
    """RSA-PSS verification (2048-bit) accepts exactly Wycheproof's valid signatures."""
    _check_pss(case)


@pytest.mark.wycheproof("rsa_pss_3072_sha256_mgf1_32_test.json")
def test_rsa_pss_3072(case: dict[str, Any]) -> None:
    """RSA-PSS verification (3072-bit, our identity size) matches Wycheproof."""
    _check_pss(case)


def _check_pss(case: dict[str, Any]) -> None:
    der, msg, sig = (bytes.fromhex(case[f]) for f in ("publicKeyDer", "msg", "sig"))
    if case["result"] == "valid":
        primitives.rsa_pss_verify(der, sig, msg)
    else:
        with pytest.raises(InvalidSignature):
            primitives.rsa_pss_verify(der, sig, msg)


@pytest.mark.wycheproof("hkdf_sha256_test.json")
def test_hkdf_sha256(case: dict[str, Any]) -> None:
    """HKDF-SHA-256 output matches; an over-long output request is refused."""
    ikm, salt, info = (bytes.fromhex(case[f]) for f in ("ikm", "salt", "info"))
    if case["result"] == "valid":
        assert primitives.hkdf_sha256(ikm, salt, info, case["size"]) == bytes.fromhex(case["okm"])
    else:
        with pytest.raises(ValueError):
            primitives.hkdf_sha256(ikm, salt, info, case["size"])


def test_rsa_sign_verify_round_trip() -> None:
    """Our signing parameters are the ones the verifier (and the vectors above) use."""
    key = primitives.RsaPrivateKey.generate(2048)
    signature = key.sign(b"data")
    primitives.rsa_pss_verify(key.public_spki(), signature, b"data")
    with pytest.raises(InvalidSignature):
        primitives.rsa_pss_verify(key.public_spki(), signature, b"Data")


def test_rsa_rejects_short_and_non_rsa_keys() -> None:
    """Keys below 2048 bits or of another algorithm are refused as key material."""
    short = primitives.RsaPrivateKey.generate(1024)
    with pytest.raises(InvalidKeyMaterial):
        primitives.rsa_pss_verify(short.public_spki(), short.sign(b"x"), b"x")
    with pytest.raises(InvalidKeyMaterial):
        primitives.rsa_public_canonical(b"\x30\x03\x02\x01\x00")


def test_one_shot_aes_gcm_requires_256_bit_keys() -> None:
    """Message keys and key wraps are AES-256 only; a short key is a bug, not a downgrade."""
    with pytest.raises(InvalidKeyMaterial):
        primitives.aes_gcm_seal(bytes(16), bytes(12), b"", b"")
    with pytest.raises(InvalidKeyMaterial):
        primitives.aes_gcm_open(bytes(16), bytes(12), bytes(16), b"")


def test_hmac_sha256_rfc4231_case_2() -> None:
    """HMAC-SHA-256 known answer (RFC 4231, test case 2); Wycheproof has no HMAC file here."""
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert primitives.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == expected
