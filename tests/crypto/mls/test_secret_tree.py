"""The secret tree (RFC 9420 §9) against secret-tree.json, and its deletion and window rules."""

from __future__ import annotations

import pytest

from securechat.crypto.mls.errors import GenerationUnavailable, InvalidMessage
from securechat.crypto.mls.protection import sender_data_key_nonce
from securechat.crypto.mls.secret_tree import RatchetType, SecretTree
from securechat.crypto.mls.suite import CipherSuite
from tests.crypto.mls.vectors import by_suite

HS, APP = RatchetType.HANDSHAKE, RatchetType.APPLICATION


def test_secret_tree_vectors(suite: CipherSuite) -> None:
    """Sender-data key/nonce and every listed leaf's handshake/application key and nonce."""
    cases = by_suite("secret-tree.json", suite.id)
    checked = 0
    for case in cases:
        sd = case["sender_data"]
        key, nonce = sender_data_key_nonce(
            suite, bytes.fromhex(sd["sender_data_secret"]), bytes.fromhex(sd["ciphertext"])
        )
        assert (key.hex(), nonce.hex()) == (sd["key"], sd["nonce"])
        tree = SecretTree.create(
            suite, bytes.fromhex(case["encryption_secret"]), len(case["leaves"])
        )
        for leaf, generations in enumerate(case["leaves"]):
            for g in generations:
                tree, hs = tree.key_for(leaf, HS, g["generation"])
                tree, app = tree.key_for(leaf, APP, g["generation"])
                assert (hs.key.hex(), hs.nonce.hex()) == (g["handshake_key"], g["handshake_nonce"])
                assert (app.key.hex(), app.nonce.hex()) == (
                    g["application_key"],
                    g["application_nonce"],
                )
                checked += 1
    assert checked > 0


def _tree(suite: CipherSuite, **kwargs: int) -> SecretTree:
    return SecretTree.create(suite, bytes(range(suite.nh)), 4, **kwargs)


def test_sender_and_receiver_agree_and_keys_are_single_use(suite: CipherSuite) -> None:
    sender, sent = _tree(suite).next_key(2, APP)
    receiver, received = _tree(suite).key_for(2, APP, 0)
    assert (sent.key, sent.nonce) == (received.key, received.nonce)
    with pytest.raises(GenerationUnavailable):
        receiver.key_for(2, APP, 0)
    sender, second = sender.next_key(2, APP)
    assert second.generation == 1 and second.key != sent.key


def test_used_secrets_are_deleted(suite: CipherSuite) -> None:
    """After leaf 0 is derived only its copath's secrets remain (§9.2)."""
    tree, _ = _tree(suite).key_for(0, HS, 0)
    assert set(tree.nodes) == {2, 5}
    tree, _ = tree.key_for(1, HS, 0)
    assert set(tree.nodes) == {5}


def test_out_of_order_within_window(suite: CipherSuite) -> None:
    tree, late = _tree(suite, window=4).key_for(1, APP, 5)
    tree, early = tree.key_for(1, APP, 3)
    assert late.generation == 5 and early.generation == 3
    with pytest.raises(GenerationUnavailable):
        tree.key_for(1, APP, 3)
    with pytest.raises(GenerationUnavailable, match="already used or has expired"):
        tree.key_for(1, APP, 1)


def test_too_far_ahead_is_refused(suite: CipherSuite) -> None:
    with pytest.raises(GenerationUnavailable, match="ahead"):
        _tree(suite, max_forward=10).key_for(0, APP, 11)


def test_unknown_leaf_is_refused(suite: CipherSuite) -> None:
    with pytest.raises(InvalidMessage):
        _tree(suite).key_for(4, APP, 0)


def test_a_refused_request_leaves_the_tree_usable(suite: CipherSuite) -> None:
    """State is a value: the failed call returned nothing, the original still works."""
    tree = _tree(suite, max_forward=2)
    with pytest.raises(GenerationUnavailable):
        tree.key_for(0, APP, 3)
    _, key = tree.key_for(0, APP, 2)
    assert key.generation == 2
