"""The group (RFC 9420 §10-§12) driven through its public API, suite 1."""

from __future__ import annotations

from dataclasses import replace

import pytest

from securechat.crypto.mls import group as g
from securechat.crypto.mls.errors import (
    CredentialRejected,
    DecodeError,
    GenerationUnavailable,
    InvalidLeafNode,
    InvalidMessage,
    InvalidProposalList,
    InvalidState,
    MLSAuthenticationFailed,
    MLSError,
    WrongEpoch,
    WrongGroup,
)
from securechat.crypto.mls.framing import MLSMessage, PublicMessage
from securechat.crypto.mls.group_context import Extension
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import X509, Capabilities, Credential
from securechat.crypto.mls.psk import PreSharedKeyID, PSKType, ResumptionPSKUsage
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.validation import Policy, RequiredCapabilities
from tests.crypto.mls.group_helpers import NOW, POLICY, Group, identity, key_package

S = 1


def test_create_add_and_talk() -> None:
    """A Welcome brings three members into the creator's epoch; they all read each other."""
    group = Group.create(S, "alice", "bob", "carol", "dave")
    group.assert_agree()
    assert group.states["alice"].epoch == 1
    group.states["carol"], message = g.protect(
        group.states["carol"], b"hello", authenticated_data=b"meta"
    )
    outputs = group.deliver(message, sender="carol")
    for output in outputs.values():
        assert isinstance(output, g.ApplicationMessage)
        assert (output.sender, output.data, output.authenticated_data) == (2, b"hello", b"meta")


def test_commit_without_path_only_adds() -> None:
    """An Add-only Commit may omit the path; members still agree."""
    group = Group.create(S, "alice", "bob")
    result = group.add("bob", "carol", path=False)
    message = MLSMessage.decode(result.message).message
    assert isinstance(message, PublicMessage)
    assert message.content.content.path is None  # type: ignore[union-attr]
    group.assert_agree()


def test_path_forced_when_proposals_need_it() -> None:
    """A Remove cannot be committed without a path (§12.4): one is sent anyway."""
    group = Group.create(S, "alice", "bob", "carol")
    result = group.commit("alice", proposals=[g.Remove(group.leaf("carol"))], path=False)
    message = MLSMessage.decode(result.message).message
    assert message.content.content.path is not None  # type: ignore[union-attr]
    assert result.output.removed == (2,)
    assert "carol" not in group.states
    group.assert_agree()


def test_update_by_reference_and_private_handshake() -> None:
    """Dave's Update, sent encrypted and committed by reference, changes his leaf key."""
    group = Group.create(S, "alice", "bob", "carol", "dave")
    before = group.states["dave"].tree.leaf(3)
    group.states["dave"], proposal = g.propose_update(group.states["dave"], private=True)
    outputs = group.deliver(proposal, sender="dave")
    assert outputs["alice"] == g.ProposalReceived(3, outputs["alice"].ref, g.ProposalType.UPDATE)  # type: ignore[union-attr]
    result = group.commit("alice", private=True)
    assert result.output.updated == (3,)
    group.assert_agree()
    assert group.states["dave"].tree.leaf(3) != before


def test_self_remove_is_committed_by_another() -> None:
    """A member asks to leave; the next committer includes it, the leaver sees it."""
    group = Group.create(S, "alice", "bob", "carol")
    group.states["bob"], proposal = g.propose_self_remove(group.states["bob"])
    group.deliver(proposal, sender="bob")
    result = group.commit("carol")
    assert result.output.removed == (1,)
    assert "bob" not in group.states
    group.assert_agree()


def test_own_self_remove_is_not_committed_by_ourselves() -> None:
    """The leaver's own Commit leaves out its self-Remove: no Commit removes its committer."""
    group = Group.create(S, "alice", "bob")
    group.states["bob"], proposal = g.propose_self_remove(group.states["bob"])
    group.deliver(proposal, sender="bob")
    result = group.commit("bob")
    assert result.output.removed == ()
    group.assert_agree()


def test_external_psk_and_resumption_psk() -> None:
    """PSK proposals mix the key into the epoch; members lacking it cannot follow."""
    group = Group.create(S, "alice", "bob")
    ext = PreSharedKeyID(PSKType.EXTERNAL, b"n" * 32, psk_id=b"shared")
    with_psk = Policy(POLICY.credential_validator, NOW, {b"shared": b"k" * 32})
    previous = group.states["alice"].epoch
    res = PreSharedKeyID(
        PSKType.RESUMPTION,
        b"m" * 32,
        usage=ResumptionPSKUsage.APPLICATION,
        psk_group_id=group.states["alice"].group_id,
        psk_epoch=previous,
    )
    result = g.commit(
        group.states["alice"], with_psk, proposals=[g.PreSharedKey(ext), g.PreSharedKey(res)]
    )
    with pytest.raises(InvalidProposalList):
        g.process(group.states["bob"], result.message, POLICY)
    bob, _ = g.process(group.states["bob"], result.message, with_psk)
    assert bob.epoch_authenticator == result.state.epoch_authenticator


def test_group_context_extensions_and_required_capabilities() -> None:
    """A GroupContextExtensions proposal changes the context; members that cannot meet
    the required capabilities make it invalid."""
    group = Group.create(S, "alice", "bob")
    fine = (Extension(0xF000, b"app"),)
    group.commit("alice", proposals=[g.GroupContextExtensions(fine)])
    assert group.states["bob"].context.extensions == fine
    group.assert_agree()
    impossible = (RequiredCapabilities(extension_types=(0xF001,)).extension(),)
    with pytest.raises(InvalidProposalList, match="cannot meet"):
        g.commit(group.states["alice"], POLICY, proposals=[g.GroupContextExtensions(impossible)])


def test_reinit_closes_the_group() -> None:
    """After a ReInit commit the group takes no more messages (§11.2)."""
    group = Group.create(S, "alice", "bob")
    group.states["bob"], proposal = g.propose_reinit(group.states["bob"], b"new-group", S)
    group.deliver(proposal, sender="bob")
    result = group.commit("alice")
    assert result.output.reinit is not None
    assert group.states["bob"].reinit == result.output.reinit
    with pytest.raises(InvalidMessage, match="reinitialised"):
        g.protect(group.states["bob"], b"late")


def test_external_join_and_resync() -> None:
    """An external Commit from a published GroupInfo adds the joiner for everyone;
    a member can rejoin the same way, removing its old leaf."""
    group = Group.create(S, "alice", "bob")
    info = g.group_info(group.states["bob"])
    credential, signature_private = identity(S, "erin")
    erin, message = g.join_external(info, credential, signature_private, POLICY)
    outputs = group.deliver(message)
    assert outputs["alice"].added == (2,)  # type: ignore[union-attr]
    group.states["erin"] = erin
    group.assert_agree()
    info = g.group_info(group.states["alice"])
    bob_leaf = group.states["bob"].tree.leaf(1)
    assert bob_leaf is not None
    new_bob, message = g.join_external(
        info, bob_leaf.credential, group.states["bob"].signature_private, POLICY, remove_prior=1
    )
    del group.states["bob"]
    group.deliver(message)
    group.states["bob"] = new_bob
    group.assert_agree()


def test_exporter_and_roster() -> None:
    group = Group.create(S, "alice", "bob")
    a = g.export_secret(group.states["alice"], b"label", b"ctx", 32)
    assert a == g.export_secret(group.states["bob"], b"label", b"ctx", 32)
    assert a != g.export_secret(group.states["bob"], b"other", b"ctx", 32)
    assert [m.credential.identity for m in g.roster(group.states["bob"])] == [b"alice", b"bob"]


# --- key packages and leaf validation ----------------------------------------------


def test_expired_key_package_is_refused() -> None:
    group = Group.create(S, "alice")
    credential, signature_private = identity(S, "old")
    kp, _ = g.make_key_package(credential, signature_private, now=NOW - 200 * 86400, suite_id=S)
    with pytest.raises(InvalidLeafNode, match="lifetime"):
        g.commit(group.states["alice"], POLICY, proposals=[g.Add(kp)])


def test_credential_validator_decides() -> None:
    """The application's validator refuses mallory, in an Add and in a Welcome's tree."""
    group = Group.create(S, "alice")
    kp, _ = key_package(S, "mallory")
    with pytest.raises(CredentialRejected):
        g.propose_add(group.states["alice"], kp, POLICY)
    trusting = Policy(lambda c, k: True, NOW)
    kp_bob, private_bob = key_package(S, "bob")
    result = g.commit(group.states["alice"], trusting, proposals=[g.Add(kp), g.Add(kp_bob)])
    assert result.welcome is not None
    with pytest.raises(CredentialRejected):
        g.join_from_welcome(result.welcome, kp_bob, private_bob, POLICY)


def test_key_package_for_unsupported_suite_or_forged_is_refused() -> None:
    group = Group.create(S, "alice")
    kp, _ = key_package(3, "bob")
    with pytest.raises(MLSError):
        g.commit(group.states["alice"], POLICY, proposals=[g.Add(kp)])
    kp, _ = key_package(S, "bob")
    forged = replace(kp, init_key=bytes(32))
    with pytest.raises(MLSError):
        g.commit(group.states["alice"], POLICY, proposals=[g.Add(forged)])


def test_credential_types_must_be_supported_both_ways() -> None:
    """An X.509-only member cannot join basic-credential members (§7.3)."""
    group = Group.create(S, "alice")
    signature_private = get_suite(S).signature.generate()
    x509 = Credential(X509, certificates=(b"not parsed here",))
    caps = Capabilities((1,), (S,), (), (), (X509,))
    kp, _ = g.make_key_package(x509, signature_private, now=NOW, suite_id=S, capabilities=caps)
    with pytest.raises(InvalidLeafNode, match="credential type"):
        g.commit(group.states["alice"], POLICY, proposals=[g.Add(kp)])


def test_same_client_twice_is_refused() -> None:
    group = Group.create(S, "alice", "bob")
    bob = group.states["bob"]
    leaf = bob.tree.leaf(1)
    assert leaf is not None
    kp, _ = g.make_key_package(leaf.credential, bob.signature_private, now=NOW, suite_id=S)
    with pytest.raises(InvalidLeafNode, match="signature key"):
        g.commit(group.states["alice"], POLICY, proposals=[g.Add(kp)])


# --- proposal list validation (§12.2) ------------------------------------------------


@pytest.mark.parametrize(
    ("proposals", "reason"),
    [
        (lambda: [g.Remove(0)], "committer"),
        (lambda: [g.Remove(1), g.Remove(1)], "leaf 1"),
        (lambda: [g.Remove(5)], "blank"),
        (lambda: [g.GroupContextExtensions(()), g.GroupContextExtensions(())], "At most one"),
        (lambda: [g.ReInit(b"x", S, ()), g.Remove(1)], "ReInit"),
        (lambda: [g.ExternalInit(b"kem")], "external"),
    ],
)
def test_invalid_proposal_lists(proposals, reason: str) -> None:  # type: ignore[no-untyped-def]
    group = Group.create(S, "alice", "bob")
    with pytest.raises(InvalidProposalList, match=reason):
        g.commit(group.states["alice"], POLICY, proposals=proposals())


def test_commit_naming_an_unknown_proposal_is_refused() -> None:
    """Bob never saw the proposal Alice commits by reference: precise error, state kept."""
    group = Group.create(S, "alice", "bob", "carol")
    _, proposal = g.propose_remove(group.states["carol"], 1)
    alice, _ = g.process(group.states["alice"], proposal, POLICY)
    result = g.commit(alice, POLICY)
    before = group.states["bob"].encode()
    with pytest.raises(InvalidProposalList, match="never received"):
        g.process(group.states["bob"], result.message, POLICY)
    assert group.states["bob"].encode() == before


# --- rejection leaves the state unchanged --------------------------------------------


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]


def test_tampered_messages_are_rejected_without_change() -> None:
    group = Group.create(S, "alice", "bob")
    alice, message = g.protect(group.states["alice"], b"secret")
    result = g.commit(alice, POLICY)
    bob = group.states["bob"]
    before = bob.encode()
    for data in (message, result.message):
        for position in (len(data) - 1, len(data) // 2, 30):
            with pytest.raises((MLSAuthenticationFailed, DecodeError, InvalidMessage)):
                g.process(bob, _flip(data, position), POLICY)
            assert bob.encode() == before
    with pytest.raises(MLSAuthenticationFailed):
        g.process(bob, _flip(message, len(message) - 1), POLICY)


def test_replay_is_rejected() -> None:
    group = Group.create(S, "alice", "bob")
    group.states["alice"], message = g.protect(group.states["alice"], b"once")
    bob, _ = g.process(group.states["bob"], message, POLICY)
    with pytest.raises(GenerationUnavailable):
        g.process(bob, message, POLICY)


def test_wrong_epoch_and_wrong_group_are_named() -> None:
    group = Group.create(S, "alice", "bob")
    old_bob = group.states["bob"]
    group.commit("alice")
    group.states["alice"], message = g.protect(group.states["alice"], b"new epoch")
    with pytest.raises(WrongEpoch):
        g.process(old_bob, message, POLICY)
    other = Group.create(S, "x", "y")
    with pytest.raises(WrongGroup):
        g.process(other.states["y"], message, POLICY)


def test_removed_member_cannot_read_the_next_epoch() -> None:
    """Even with her state forged to the new epoch's number, Carol has no key for it."""
    group = Group.create(S, "alice", "bob", "carol")
    carol = group.states["carol"]
    group.commit("alice", proposals=[g.Remove(2)])
    group.states["bob"], message = g.protect(group.states["bob"], b"after carol")
    with pytest.raises(WrongEpoch):
        g.process(carol, message, POLICY)
    forged = replace(carol, context=group.states["bob"].context)
    with pytest.raises(MLSAuthenticationFailed):
        g.process(forged, message, POLICY)


def test_state_before_an_update_cannot_follow_it() -> None:
    """Post-compromise security: Dave's state from before his Update, even handed the
    Update proposal, cannot open the Commit's path nor the next epoch's messages."""
    group = Group.create(S, "alice", "bob", "carol", "dave")
    stolen = group.states["dave"]
    group.states["dave"], proposal = g.propose_update(group.states["dave"])
    group.deliver(proposal, sender="dave")
    cached = group.states["alice"].proposals
    result = group.commit("alice")
    with pytest.raises(InvalidMessage, match="No key of ours"):
        g.process(replace(stolen, proposals=cached), result.message, POLICY)
    group.states["bob"], message = g.protect(group.states["bob"], b"after the update")
    with pytest.raises(MLSAuthenticationFailed):
        g.process(replace(stolen, context=group.states["bob"].context), message, POLICY)
    _, out = g.process(group.states["dave"], message, POLICY)
    assert isinstance(out, g.ApplicationMessage) and out.data == b"after the update"


# --- state encoding -----------------------------------------------------------------------


def test_state_round_trips_and_keeps_working() -> None:
    group = Group.create(S, "alice", "bob", "carol")
    group.states["bob"], proposal = g.propose_update(group.states["bob"])
    group.deliver(proposal, sender="bob")
    group.states["alice"], message = g.protect(group.states["alice"], b"x")
    for name, state in group.states.items():
        data = state.encode()
        assert GroupState.decode(data).encode() == data
        group.states[name] = GroupState.decode(data)
    _, out = g.process(group.states["carol"], message, POLICY)
    assert isinstance(out, g.ApplicationMessage)
    group.commit("carol")
    group.assert_agree()


def test_state_decode_refuses_garbage_and_future_versions() -> None:
    data = Group.create(S, "alice", "bob").states["bob"].encode()
    with pytest.raises(InvalidState, match="version 2"):
        GroupState.decode(b"\x00\x02" + data[2:])
    for cut in (3, len(data) // 2, len(data) - 1):
        with pytest.raises(InvalidState):
            GroupState.decode(data[:cut])
    with pytest.raises(InvalidState):
        GroupState.decode(data + b"\x00")


def test_a_proposal_sent_while_a_commit_is_pending_uses_a_fresh_handshake_key() -> None:
    """The state a Commit was sent from records the handshake generation it used.

    A client keeps that state until the DS accepts the Commit; a proposal sent from
    it (a leave) must not reuse the Commit's key, or a member who reads both gets
    the second refused as a replay, and the key is used twice.
    """
    group = Group.create(S, "alice", "bob", "carol")
    result = g.commit(group.states["bob"], group.policy, private=True)
    _, proposal = g.propose_self_remove(result.current, private=True)
    alice = group.states["alice"]
    alice, received = g.process(alice, proposal, group.policy)
    assert isinstance(received, g.ProposalReceived)
    alice, applied = g.process(alice, result.message, group.policy)
    assert isinstance(applied, g.CommitApplied)
    assert alice.epoch_authenticator == result.state.epoch_authenticator


def test_an_ended_epoch_kept_for_late_messages_opens_them_and_nothing_else() -> None:
    """Bob's message of epoch 1 reaches alice after her Commit: the kept state opens
    it once, holds no secret that would derive the next epoch, and takes no Commit."""
    group = Group.create(S, "alice", "bob", "carol")
    group.states["bob"], late = g.protect(group.states["bob"], b"late")
    kept = g.for_late_messages(group.states["alice"])
    _, competing = g.propose_update(group.states["carol"])
    carol_commit = g.commit(group.states["carol"], POLICY, private=True).message
    group.commit("alice")
    assert (kept.init_secret, kept.exporter_secret, kept.membership_key) == (b"", b"", b"")
    assert list(kept.node_keys) == [2 * kept.own_leaf]
    kept, output = g.process(kept, late, POLICY)
    assert isinstance(output, g.ApplicationMessage) and output.data == b"late"
    with pytest.raises(GenerationUnavailable):
        g.process(kept, late, POLICY)
    for handshake in (carol_commit, competing):
        with pytest.raises(MLSError):
            g.process(kept, handshake, POLICY)
    assert GroupState.decode(kept.encode()) == kept


def test_a_state_kept_beside_the_next_is_written_as_its_changed_nodes() -> None:
    """After a remove (the tree shrinks) and a path update the trees differ; the
    kept state reads back equal from far fewer bytes, and corruption is InvalidState."""
    group = Group.create(S, "alice", "bob", "carol", "dave", "eve")
    for change in ({"proposals": [g.Remove(4)]}, {}):
        before = group.states["alice"]
        group.commit("alice", **change)
        after = group.states["alice"]
        assert before.tree != after.tree
        beside = before.encode_beside(after)
        assert GroupState.decode_beside(beside, after) == before
        assert len(beside) < len(before.encode()) - len(after.tree.encode()) // 2
    wide = beside[:-4] + (2**20 - 1).to_bytes(4, "big")
    for bad in (wide, beside[:-1], beside + b"\x00"):
        with pytest.raises(InvalidState):
            GroupState.decode_beside(bad, after)
