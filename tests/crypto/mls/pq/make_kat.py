"""Known-answer values for the MLS layer of the two X-Wing suites, computed without
securechat and without `cryptography`, so that test_pq.py checks our code against an
independent computation:

- X-Wing from kyber-py (pure-Python FIPS 203, derandomised encapsulation), an
  RFC 7748 X25519 ladder written here, and hashlib's SHAKE256 / SHA3-256;
- HPKE (RFC 9180, base mode, secret export) and the MLS labelled operations and key
  schedule (RFC 9420 §5, §8) written here over hashlib/hmac;
- AES-128-GCM and ChaCha20-Poly1305 from pycryptodome; ML-DSA-44 from dilithium-py.

The generator first checks its X-Wing against xwing-test-vectors.json (encapsulation
included, which our code cannot derandomise). Run once, outside the project's venv:

    python -m venv /tmp/kat && /tmp/kat/bin/pip install kyber-py dilithium-py pycryptodome
    /tmp/kat/bin/python tests/crypto/mls/pq/make_kat.py > tests/crypto/mls/pq/kat.json
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

from Crypto.Cipher import AES, ChaCha20_Poly1305
from dilithium_py.ml_dsa import ML_DSA_44
from kyber_py.ml_kem import ML_KEM_768

P = 2**255 - 19


def x25519(k: bytes, u: bytes) -> bytes:
    """RFC 7748 §5, the Montgomery ladder."""
    scalar = bytearray(k)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    n = int.from_bytes(scalar, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


BASE = (9).to_bytes(32, "little")
LABEL = b"\\.//^\\"


def xwing_expand(sk: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    expanded = hashlib.shake_256(sk).digest(96)
    pk_m, sk_m = ML_KEM_768._keygen_internal(expanded[:32], expanded[32:64])
    sk_x = expanded[64:]
    return sk_m, sk_x, pk_m, x25519(sk_x, BASE)


def combine(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + LABEL).digest()


def xwing_public(sk: bytes) -> bytes:
    _, _, pk_m, pk_x = xwing_expand(sk)
    return pk_m + pk_x


def xwing_encaps(pk: bytes, eseed: bytes) -> tuple[bytes, bytes]:
    pk_m, pk_x = pk[:1184], pk[1184:]
    ek_x = eseed[32:64]
    ct_x = x25519(ek_x, BASE)
    ss_m, ct_m = ML_KEM_768._encaps_internal(pk_m, eseed[:32])
    return combine(ss_m, x25519(ek_x, pk_x), ct_x, pk_x), ct_m + ct_x


def xwing_decaps(ct: bytes, sk: bytes) -> bytes:
    sk_m, sk_x, _, pk_x = xwing_expand(sk)
    ss_m = ML_KEM_768._decaps_internal(sk_m, ct[:1088])
    return combine(ss_m, x25519(sk_x, ct[1088:]), ct[1088:], pk_x)


def check_xwing(path: Path) -> None:
    for v in json.loads(path.read_text()):
        sk, pk = bytes.fromhex(v["sk"]), bytes.fromhex(v["pk"])
        assert xwing_public(sk) == pk
        ss, ct = xwing_encaps(pk, bytes.fromhex(v["eseed"]))
        assert (ss.hex(), ct.hex()) == (v["ss"], v["ct"])
        assert xwing_decaps(ct, sk) == ss


class Suite:
    def __init__(self, ident: int, hash_name: str, aead: str, signature: str) -> None:
        self.id, self.hash_name, self.aead, self.signature = ident, hash_name, aead, signature
        self.nh = hashlib.new(hash_name).digest_size
        self.kdf_id = {"sha256": 1, "sha384": 2}[hash_name]
        self.aead_id, self.nk = {"aes128gcm": (1, 16), "chacha20poly1305": (3, 32)}[aead]

    def hash(self, data: bytes) -> bytes:
        return hashlib.new(self.hash_name, data).digest()

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt or bytes(self.nh), ikm, self.hash_name).digest()

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        out, block, i = b"", b"", 1
        while len(out) < length:
            block = hmac.new(prk, block + info + bytes([i]), self.hash_name).digest()
            out, i = out + block, i + 1
        return out[:length]

    def seal(self, key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
        if self.aead == "aes128gcm":
            cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
        else:
            cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
        cipher.update(aad)
        ct, tag = cipher.encrypt_and_digest(pt)
        return ct + tag


def varint(n: int) -> bytes:
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    return (n | 0x80000000).to_bytes(4, "big")


def opaque(b: bytes) -> bytes:
    return varint(len(b)) + b


def expand_with_label(s: Suite, secret: bytes, label: bytes, context: bytes, n: int) -> bytes:
    info = n.to_bytes(2, "big") + opaque(b"MLS 1.0 " + label) + opaque(context)
    return s.expand(secret, info, n)


def derive_secret(s: Suite, secret: bytes, label: bytes) -> bytes:
    return expand_with_label(s, secret, label, b"", s.nh)


def hpke_context(s: Suite, shared: bytes, info: bytes) -> tuple[bytes, bytes, bytes]:
    sid = b"HPKE" + (0x647A).to_bytes(2, "big") + s.kdf_id.to_bytes(2, "big")
    sid += s.aead_id.to_bytes(2, "big")

    def lx(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return s.extract(salt, b"HPKE-v1" + sid + label + ikm)

    def le(prk: bytes, label: bytes, inf: bytes, n: int) -> bytes:
        return s.expand(prk, n.to_bytes(2, "big") + b"HPKE-v1" + sid + label + inf, n)

    context = b"\x00" + lx(b"", b"psk_id_hash", b"") + lx(b"", b"info_hash", info)
    secret = lx(shared, b"secret", b"")
    return (
        le(secret, b"key", context, s.nk),
        le(secret, b"base_nonce", context, 12),
        le(secret, b"exp", context, s.nh),
    )


def hpke_export_secret(s: Suite, exporter: bytes, ctx: bytes, n: int) -> bytes:
    sid = b"HPKE" + (0x647A).to_bytes(2, "big") + s.kdf_id.to_bytes(2, "big")
    sid += s.aead_id.to_bytes(2, "big")
    return s.expand(exporter, n.to_bytes(2, "big") + b"HPKE-v1" + sid + b"sec" + ctx, n)


def case(s: Suite, tag: bytes) -> dict[str, object]:
    def seed(name: bytes, n: int) -> bytes:
        return hashlib.shake_256(tag + name).digest(n)

    ikm = seed(b"ikm", 32)
    priv = hashlib.shake_256(ikm).digest(32)
    pub = xwing_public(priv)
    label, context, plaintext = b"UpdatePathNode", seed(b"ctx", 40), seed(b"pt", 32)
    shared, kem_output = xwing_encaps(pub, seed(b"eseed", 64))
    info = opaque(b"MLS 1.0 " + label) + opaque(context)
    key, nonce, _ = hpke_context(s, shared, info)
    ciphertext = s.seal(key, nonce, b"", plaintext)
    path_secret = seed(b"path", s.nh)
    node_priv = hashlib.shake_256(derive_secret(s, path_secret, b"node")).digest(32)
    ext_shared, ext_kem = xwing_encaps(pub, seed(b"external", 64))
    _, _, exporter = hpke_context(s, ext_shared, b"")
    init_secret = hpke_export_secret(s, exporter, b"MLS 1.0 external init secret", s.nh)
    init, commit, group_context = seed(b"init", s.nh), seed(b"commit", s.nh), seed(b"gc", 60)
    joiner = expand_with_label(s, s.extract(init, commit), b"joiner", group_context, s.nh)
    member = s.extract(joiner, bytes(s.nh))
    epoch = expand_with_label(s, member, b"epoch", group_context, s.nh)
    exporter_secret = derive_secret(s, epoch, b"exporter")
    exported = expand_with_label(
        s, derive_secret(s, exporter_secret, b"app"), b"exported", s.hash(b"ctx"), 32
    )
    out: dict[str, object] = {
        "cipher_suite": s.id,
        "derive_key_pair": {"ikm": ikm.hex(), "priv": priv.hex(), "pub": pub.hex()},
        "decrypt_with_label": {
            "priv": priv.hex(),
            "label": label.decode(),
            "context": context.hex(),
            "kem_output": kem_output.hex(),
            "ciphertext": ciphertext.hex(),
            "plaintext": plaintext.hex(),
        },
        "node_key": {
            "path_secret": path_secret.hex(),
            "priv": node_priv.hex(),
            "pub": xwing_public(node_priv).hex(),
        },
        "external_init": {
            "priv": priv.hex(),
            "kem_output": ext_kem.hex(),
            "init_secret": init_secret.hex(),
        },
        "key_schedule": {
            "init_secret": init.hex(),
            "commit_secret": commit.hex(),
            "group_context": group_context.hex(),
            "joiner_secret": joiner.hex(),
            "epoch_authenticator": derive_secret(s, epoch, b"authentication").hex(),
            "exporter_app_ctx_32": exported.hex(),
        },
    }
    if s.signature == "mldsa44":
        sig_seed = seed(b"mldsa", 32)
        pk, sk = ML_DSA_44.key_derive(sig_seed)
        content = seed(b"content", 50)
        message = opaque(b"MLS 1.0 FramedContentTBS") + opaque(content)
        signature = ML_DSA_44.sign(sk, message, deterministic=True)
        out["verify_with_label"] = {
            "priv": sig_seed.hex(),
            "pub": pk.hex(),
            "label": "FramedContentTBS",
            "content": content.hex(),
            "signature": signature.hex(),
        }
    return out


def main() -> None:
    root = Path(__file__).resolve().parents[4]
    check_xwing(root.parent / "shared" / "testvectors" / "xwing-test-vectors.json")
    suites = [
        Suite(0xF001, "sha256", "aes128gcm", "ed25519"),
        Suite(0xF009, "sha384", "chacha20poly1305", "mldsa44"),
    ]
    json.dump([case(s, b"securechat-pq-kat") for s in suites], sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
