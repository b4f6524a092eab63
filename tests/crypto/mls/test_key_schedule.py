"""Key schedule, PSKs and transcript hashes (RFC 9420 §8) against the WG's vectors."""

from __future__ import annotations

import pytest

from securechat.crypto.mls import key_schedule, transcript
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.framing import AuthenticatedContent
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.psk import PreSharedKeyID, PSKType, psk_secret
from securechat.crypto.mls.suite import CipherSuite
from tests.crypto.mls.vectors import by_suite


def test_key_schedule_vectors(suite: CipherSuite) -> None:
    """Each epoch's GroupContext, every secret, external_pub and the exporter output."""
    [case] = by_suite("key-schedule.json", suite.id)
    group_id = bytes.fromhex(case["group_id"])
    init_secret = bytes.fromhex(case["initial_init_secret"])
    for epoch, e in enumerate(case["epochs"]):
        context = GroupContext(
            suite.id,
            group_id,
            epoch,
            bytes.fromhex(e["tree_hash"]),
            bytes.fromhex(e["confirmed_transcript_hash"]),
        )
        assert context.encode().hex() == e["group_context"]
        assert GroupContext.decode(context.encode()) == context
        secrets = key_schedule.next_epoch(
            suite,
            init_secret,
            bytes.fromhex(e["commit_secret"]),
            bytes.fromhex(e["psk_secret"]),
            context.encode(),
        )
        for name in (
            "joiner_secret",
            "welcome_secret",
            "sender_data_secret",
            "encryption_secret",
            "exporter_secret",
            "external_secret",
            "confirmation_key",
            "membership_key",
            "resumption_psk",
            "epoch_authenticator",
            "init_secret",
        ):
            assert getattr(secrets, name).hex() == e[name], name
        _, external_pub = key_schedule.external_key_pair(suite, secrets.external_secret)
        assert external_pub.hex() == e["external_pub"]
        x = e["exporter"]  # the label is a string: the generator used its hex text as is
        exported = key_schedule.export(
            suite,
            secrets.exporter_secret,
            x["label"].encode(),
            bytes.fromhex(x["context"]),
            x["length"],
        )
        assert exported.hex() == x["secret"]
        init_secret = secrets.init_secret


def test_missing_commit_and_psk_secrets_are_zero(suite: CipherSuite) -> None:
    context = GroupContext(suite.id, b"g", 1, b"t", b"c").encode()
    zero = bytes(suite.nh)
    assert key_schedule.next_epoch(suite, zero, None, None, context) == (
        key_schedule.next_epoch(suite, zero, zero, zero, context)
    )


def test_psk_secret_vectors(suite: CipherSuite) -> None:
    cases = by_suite("psk_secret.json", suite.id)
    for case in cases:
        psks = [
            (
                PreSharedKeyID(
                    PSKType.EXTERNAL,
                    psk_id=bytes.fromhex(p["psk_id"]),
                    psk_nonce=bytes.fromhex(p["psk_nonce"]),
                ),
                bytes.fromhex(p["psk"]),
            )
            for p in case["psks"]
        ]
        assert psk_secret(suite, psks).hex() == case["psk_secret"]
    assert any(not c["psks"] for c in cases) and any(len(c["psks"]) > 1 for c in cases)


def test_psk_order_matters(suite: CipherSuite) -> None:
    a = (PreSharedKeyID(PSKType.EXTERNAL, psk_id=b"a", psk_nonce=b"n"), b"1")
    b = (PreSharedKeyID(PSKType.EXTERNAL, psk_id=b"b", psk_nonce=b"n"), b"2")
    assert psk_secret(suite, [a, b]) != psk_secret(suite, [b, a])


def test_transcript_hash_vectors(suite: CipherSuite) -> None:
    """The confirmation tag verifies over the new confirmed hash; both hashes match."""
    [case] = by_suite("transcript-hashes.json", suite.id)
    content = AuthenticatedContent.decode(bytes.fromhex(case["authenticated_content"]))
    assert content.encode().hex() == case["authenticated_content"]
    hashes = transcript.update(
        suite, bytes.fromhex(case["interim_transcript_hash_before"]), content
    )
    assert hashes.confirmed.hex() == case["confirmed_transcript_hash_after"]
    assert hashes.interim.hex() == case["interim_transcript_hash_after"]
    tag = key_schedule.confirmation_tag(
        suite, bytes.fromhex(case["confirmation_key"]), hashes.confirmed
    )
    assert tag == content.auth.confirmation_tag


def test_transcript_refuses_non_commit(suite: CipherSuite) -> None:
    [case] = by_suite("transcript-hashes.json", suite.id)
    content = AuthenticatedContent.decode(bytes.fromhex(case["authenticated_content"]))
    proposal_like = AuthenticatedContent(
        content.wire_format,
        type(content.content)(b"g", 0, content.content.sender, b"", b"app data"),
        content.auth,
    )
    with pytest.raises(InvalidMessage):
        transcript.update(suite, b"", proposal_like)
