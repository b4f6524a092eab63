"""Post-quantum: X-Wing against its draft's vectors, the two hybrid suites checked
against an independent computation (pq/make_kat.py), and whole groups on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.crypto.mls import group as g
from securechat.crypto.mls import hpke, key_schedule, labels, treekem
from securechat.crypto.mls.errors import InvalidMLSSignature, MissingPrimitive
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.suite import (
    DEFAULT_SUITE,
    HYBRID_MLDSA44,
    HYBRID_X25519,
    XWing,
    get_suite,
)
from tests.crypto.mls.group_helpers import NOW, POLICY, Group, identity
from tests.crypto.mls.vectors import REPO, require

XWING_VECTORS = REPO.parent / "shared" / "testvectors" / "xwing-test-vectors.json"
KAT = Path(__file__).parent / "pq" / "kat.json"
HYBRIDS = (HYBRID_X25519, HYBRID_MLDSA44)


@pytest.fixture(params=HYBRIDS, ids=lambda s: f"suite{s:#06x}")
def hybrid(request: pytest.FixtureRequest) -> int:
    """Each hybrid suite; where the library lacks ML-DSA-44 the skip names it."""
    try:
        get_suite(request.param).check_available()
    except MissingPrimitive as exc:
        pytest.skip(str(exc))
    return int(request.param)


def _xwing_vectors() -> list[dict[str, str]]:
    data: list[dict[str, str]] = json.loads(require(XWING_VECTORS).read_text())
    return data


def test_xwing_key_generation_and_decapsulation_vectors() -> None:
    """Every vector: the public key from the seed and the shared secret from the
    ciphertext. (Encapsulation cannot be derandomised with cryptography; make_kat.py
    checks the vectors' encapsulations with an independent ML-KEM.)"""
    kem = XWing()
    vectors = _xwing_vectors()
    assert len(vectors) == 3
    for v in vectors:
        sk = bytes.fromhex(v["sk"])
        assert kem.public_key(sk) == bytes.fromhex(v["pk"])
        assert kem.decapsulate(bytes.fromhex(v["ct"]), sk) == bytes.fromhex(v["ss"])


def test_xwing_encapsulation_round_trip_and_implicit_rejection() -> None:
    kem = XWing()
    sk, pk = kem.derive_key_pair(b"seed")
    ss, ct = kem.encapsulate(pk)
    assert kem.decapsulate(ct, sk) == ss and len(ct) == kem.n_enc
    tampered = bytes([ct[0] ^ 1]) + ct[1:]
    assert kem.decapsulate(tampered, sk) != ss


def _kat(suite_id: int) -> dict[str, Any]:
    case: dict[str, Any] = next(
        c for c in json.loads(KAT.read_text()) if c["cipher_suite"] == suite_id
    )
    return case


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


def test_known_answers_from_an_independent_computation(hybrid: int) -> None:
    """DeriveKeyPair, DecryptWithLabel of an independently sealed path secret, the
    node key of a path secret, the external init secret (HPKE export), the key
    schedule and exporter, and (ML-DSA suite) an ML-DSA-44 SignWithLabel."""
    suite, kat = get_suite(hybrid), _kat(hybrid)
    d = kat["derive_key_pair"]
    assert hpke.derive_key_pair(suite.dh, _b(d["ikm"])) == (_b(d["priv"]), _b(d["pub"]))
    e = kat["decrypt_with_label"]
    opened = labels.decrypt_with_label(
        suite, _b(e["priv"]), e["label"].encode(), _b(e["context"]),
        _b(e["kem_output"]), _b(e["ciphertext"]),
    )  # fmt: skip
    assert opened == _b(e["plaintext"])
    n = kat["node_key"]
    assert treekem.node_key_pair(suite, _b(n["path_secret"])) == (_b(n["priv"]), _b(n["pub"]))
    x = kat["external_init"]
    init = hpke.receive_export(
        suite, _b(x["priv"]), _b(x["kem_output"]), b"", b"MLS 1.0 external init secret",
        suite.nh,
    )  # fmt: skip
    assert init == _b(x["init_secret"])
    k = kat["key_schedule"]
    secrets = key_schedule.next_epoch(
        suite, _b(k["init_secret"]), _b(k["commit_secret"]), None, _b(k["group_context"])
    )
    assert secrets.joiner_secret == _b(k["joiner_secret"])
    assert secrets.epoch_authenticator == _b(k["epoch_authenticator"])
    exported = key_schedule.export(suite, secrets.exporter_secret, b"app", b"ctx", 32)
    assert exported == _b(k["exporter_app_ctx_32"])
    if "verify_with_label" in kat:
        v = kat["verify_with_label"]
        assert suite.signature.public_key(_b(v["priv"])) == _b(v["pub"])
        labels.verify_with_label(
            suite, _b(v["pub"]), v["label"].encode(), _b(v["content"]), _b(v["signature"])
        )
        with pytest.raises(InvalidMLSSignature):
            labels.verify_with_label(
                suite, _b(v["pub"]), v["label"].encode(), _b(v["content"]) + b"x",
                _b(v["signature"]),
            )  # fmt: skip


def test_hybrid_is_the_default_for_new_groups() -> None:
    credential, signature_private = identity(HYBRID_X25519, "alice")
    state = g.create_group(credential, signature_private, now=NOW)
    assert DEFAULT_SUITE == HYBRID_X25519
    assert state.context.cipher_suite == HYBRID_X25519
    assert len(state.tree.leaf(0).encryption_key) == 1216  # type: ignore[union-attr]


def test_hybrid_group_end_to_end(hybrid: int) -> None:
    """Adds by Welcome, an Update, a Remove, an external join, application data and a
    state round trip, all on the hybrid suite."""
    group = Group.create(hybrid, "alice", "bob", "carol")
    group.assert_agree()
    group.states["bob"], proposal = g.propose_update(group.states["bob"], private=True)
    group.deliver(proposal, sender="bob")
    group.commit("carol")
    group.commit("alice", proposals=[g.Remove(group.leaf("carol"))])
    info = g.group_info(group.states["bob"])
    credential, signature_private = identity(hybrid, "dave")
    dave, message = g.join_external(info, credential, signature_private, POLICY)
    group.deliver(message)
    group.states["dave"] = GroupState.decode(dave.encode())
    group.assert_agree()
    group.states["dave"], sealed = g.protect(group.states["dave"], b"post-quantum hello")
    for output in group.deliver(sealed, sender="dave").values():
        assert isinstance(output, g.ApplicationMessage) and output.data == b"post-quantum hello"
