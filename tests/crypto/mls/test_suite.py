"""Cipher suites 1-7, HPKE and the labelled operations against crypto-basics.json."""

from __future__ import annotations

import pytest
from cryptography.exceptions import UnsupportedAlgorithm

from securechat.crypto.mls import hpke, labels
from securechat.crypto.mls.errors import (
    InvalidMLSSignature,
    MissingPrimitive,
    MLSAuthenticationFailed,
    UnsupportedCipherSuite,
)
from securechat.crypto.mls.suite import Aead, CipherSuite, get_suite
from tests.crypto.mls.vectors import MLS_VECTORS, by_suite, require


def _case(suite: CipherSuite) -> dict[str, dict[str, str | int]]:
    [case] = by_suite("crypto-basics.json", suite.id)
    return case


def h(value: str | int) -> bytes:
    assert isinstance(value, str)
    return bytes.fromhex(value)


def s(value: str | int) -> bytes:
    assert isinstance(value, str)
    return value.encode()


def test_ref_hash(suite: CipherSuite) -> None:
    v = _case(suite)["ref_hash"]
    assert labels.ref_hash(suite, s(v["label"]), h(v["value"])) == h(v["out"])


def test_expand_with_label(suite: CipherSuite) -> None:
    v = _case(suite)["expand_with_label"]
    out = labels.expand_with_label(
        suite, h(v["secret"]), s(v["label"]), h(v["context"]), int(v["length"])
    )
    assert out == h(v["out"])


def test_derive_secret(suite: CipherSuite) -> None:
    v = _case(suite)["derive_secret"]
    assert labels.derive_secret(suite, h(v["secret"]), s(v["label"])) == h(v["out"])


def test_derive_tree_secret(suite: CipherSuite) -> None:
    v = _case(suite)["derive_tree_secret"]
    out = labels.derive_tree_secret(
        suite, h(v["secret"]), s(v["label"]), int(v["generation"]), int(v["length"])
    )
    assert out == h(v["out"])


def test_sign_with_label(suite: CipherSuite) -> None:
    """The vector's signature verifies, ours does too, and the public key derives."""
    v = _case(suite)["sign_with_label"]
    pub, label, content = h(v["pub"]), s(v["label"]), h(v["content"])
    labels.verify_with_label(suite, pub, label, content, h(v["signature"]))
    mine = labels.sign_with_label(suite, h(v["priv"]), label, content)
    labels.verify_with_label(suite, pub, label, content, mine)
    assert suite.signature.public_key(h(v["priv"])) == pub


def test_signature_fails_for_other_label_content_or_tampered_bytes(suite: CipherSuite) -> None:
    v = _case(suite)["sign_with_label"]
    pub, label, content, sig = h(v["pub"]), s(v["label"]), h(v["content"]), h(v["signature"])
    with pytest.raises(InvalidMLSSignature):
        labels.verify_with_label(suite, pub, label + b"x", content, sig)
    with pytest.raises(InvalidMLSSignature):
        labels.verify_with_label(suite, pub, label, content + b"x", sig)
    with pytest.raises(InvalidMLSSignature):
        labels.verify_with_label(suite, pub, label, content, sig[:-1] + bytes([sig[-1] ^ 1]))


def test_encrypt_with_label(suite: CipherSuite) -> None:
    """The vector decrypts, and a fresh encryption to the same key decrypts too."""
    v = _case(suite)["encrypt_with_label"]
    priv, label, context = h(v["priv"]), s(v["label"]), h(v["context"])
    opened = labels.decrypt_with_label(
        suite, priv, label, context, h(v["kem_output"]), h(v["ciphertext"])
    )
    assert opened == h(v["plaintext"])
    kem_output, ciphertext = labels.encrypt_with_label(
        suite, h(v["pub"]), label, context, h(v["plaintext"])
    )
    assert kem_output != h(v["kem_output"])
    assert labels.decrypt_with_label(suite, priv, label, context, kem_output, ciphertext) == (
        h(v["plaintext"])
    )
    assert suite.dh.public_key(priv) == h(v["pub"])


def test_decrypt_with_wrong_label_or_context_fails(suite: CipherSuite) -> None:
    v = _case(suite)["encrypt_with_label"]
    args = (h(v["kem_output"]), h(v["ciphertext"]))
    with pytest.raises(MLSAuthenticationFailed):
        labels.decrypt_with_label(suite, h(v["priv"]), b"Other", h(v["context"]), *args)
    with pytest.raises(MLSAuthenticationFailed):
        labels.decrypt_with_label(suite, h(v["priv"]), s(v["label"]), b"", *args)


def test_deterministic_encapsulation(suite: CipherSuite) -> None:
    """A fixed ephemeral seed gives fixed output that still opens; another seed differs."""
    priv, pub = hpke.derive_key_pair(suite.dh, bytes(range(suite.dh.n_sk)))
    one = hpke.seal_base(suite, pub, b"info", b"aad", b"hello", ikm_e=bytes(32))
    assert one == hpke.seal_base(suite, pub, b"info", b"aad", b"hello", ikm_e=bytes(32))
    assert one != hpke.seal_base(suite, pub, b"info", b"aad", b"hello", ikm_e=bytes([1]) * 32)
    assert hpke.open_base(suite, priv, *one[:1], b"info", b"aad", one[1]) == b"hello"
    assert len(one[0]) == suite.dh.n_enc


def test_invalid_or_low_order_hpke_public_key_is_refused(suite: CipherSuite) -> None:
    """The all-zero key is a low-order X25519/X448 point and no valid NIST encoding."""
    priv, _ = hpke.derive_key_pair(suite.dh, bytes(suite.dh.n_sk))
    with pytest.raises(MLSAuthenticationFailed):
        hpke.seal_base(suite, bytes(suite.dh.n_pk), b"", b"", b"x")
    with pytest.raises(MLSAuthenticationFailed):
        hpke.open_base(suite, priv, bytes(suite.dh.n_enc), b"", b"", bytes(32))


def test_missing_primitive_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library without ChaCha20Poly1305 makes suite 3 report exactly that."""

    def unsupported(*_: object) -> bytes:
        raise UnsupportedAlgorithm("no chacha")

    monkeypatch.setattr(Aead, "seal", unsupported)
    with pytest.raises(MissingPrimitive, match="lacks ChaCha20Poly1305 \\(cipher suite 3\\)"):
        get_suite(3).check_available()


def test_unknown_suite_is_refused() -> None:
    with pytest.raises(UnsupportedCipherSuite):
        get_suite(0x0008)


RFC9180 = MLS_VECTORS.parent.parent / "reference" / "mls" / "rfc9180-hpke.md"


def _rfc9180_base_case(heading: str) -> dict[str, str]:
    """The Base Setup block and first encryption of one RFC 9180 Appendix A section."""
    text = require(RFC9180).read_text()
    section = text[text.index(f"## {heading}\n") :]
    setup, _, encryptions = section.split("~~~", 3)[1:4]
    values: dict[str, str] = {}
    key = ""
    for line in (setup + "\n" + encryptions.split("\n\n")[0]).splitlines():
        name, sep, rest = line.partition(":")
        if sep:
            key, values[key] = name.strip(), rest.strip()
        elif line.strip():
            values[key] += line.strip()
    return values


@pytest.mark.parametrize(
    ("suite_id", "heading"),
    [
        (1, "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM"),
        (3, "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305"),
        (2, "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM"),
        (5, "DHKEM(P-521, HKDF-SHA512), HKDF-SHA512, AES-256-GCM"),
    ],
)
def test_hpke_known_answer_from_rfc9180(suite_id: int, heading: str) -> None:
    """DeriveKeyPair, deterministic encapsulation and SealBase reproduce RFC 9180 Appendix A."""
    v = _rfc9180_base_case(heading)
    suite = get_suite(suite_id)
    assert hpke.derive_key_pair(suite.dh, bytes.fromhex(v["ikmR"])) == (
        bytes.fromhex(v["skRm"]),
        bytes.fromhex(v["pkRm"]),
    )
    enc, ct = hpke.seal_base(
        suite,
        bytes.fromhex(v["pkRm"]),
        bytes.fromhex(v["info"]),
        bytes.fromhex(v["aad"]),
        bytes.fromhex(v["pt"]),
        ikm_e=bytes.fromhex(v["ikmE"]),
    )
    assert (enc.hex(), ct.hex()) == (v["enc"], v["ct"])


def test_signature_with_trailing_bytes_is_refused(suite: CipherSuite) -> None:
    """One signature, one encoding: extra bytes after a valid signature do not verify."""
    v = _case(suite)["sign_with_label"]
    with pytest.raises(InvalidMLSSignature):
        labels.verify_with_label(
            suite, h(v["pub"]), s(v["label"]), h(v["content"]), h(v["signature"]) + b"\x00"
        )
