"""Every MLS entry point that takes untrusted bytes raises only MLSError on garbage.

Random bytes and mutations of valid encodings (the working group's messages.json and
messages of a live group) go to every decoder, and to `process` and
`join_from_welcome`, which decode and then act. Anything but an MLSError (an
IndexError, ValueError, RecursionError, MemoryError...) or an input that takes over a
second is a failure. `make test` runs 1,500 inputs; `make soak` runs 100,000.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from enum import IntEnum
from functools import cache
from typing import Any

import pytest

from securechat.crypto.mls import group as g
from securechat.crypto.mls import proposals
from securechat.crypto.mls.codec import Reader, decode
from securechat.crypto.mls.errors import DecodeError, MLSError
from securechat.crypto.mls.framing import (
    ContentType,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    PublicMessage,
)
from securechat.crypto.mls.group_context import GroupContext
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.labels import sign_with_label
from securechat.crypto.mls.leaf_node import KeyPackage, LeafNode
from securechat.crypto.mls.protection import (
    decode_private_content,
    encode_private_content,
    protect_public,
)
from securechat.crypto.mls.ratchet_tree import RatchetTree, decode_ratchet_tree, encode_ratchet_tree
from securechat.crypto.mls.suite import HYBRID_X25519, get_suite
from securechat.crypto.mls.validation import validate_tree
from securechat.crypto.mls.welcome import GroupInfo, GroupSecrets, Welcome
from tests.crypto.mls.group_helpers import NOW, POLICY, Group, identity, key_package
from tests.crypto.mls.vectors import load

SLOW_INPUT_S = 1.0
"""An input taking more CPU time than this counts as a hang."""


@dataclass(frozen=True)
class Target:
    """One entry point and the valid encodings its mutations start from."""

    name: str
    run: Callable[[bytes], object]
    seeds: tuple[bytes, ...]


def _struct(kind: type) -> Callable[[bytes], object]:
    return lambda data: decode(data, kind.read)  # type: ignore[attr-defined]


@cache
def _targets() -> tuple[Target, ...]:
    """Built once per session: a live group on suite 1 and the WG's messages.json."""
    wg = load("messages.json")[:3]

    def field(name: str) -> tuple[bytes, ...]:
        return tuple(bytes.fromhex(case[name]) for case in wg)

    def body(name: str) -> tuple[bytes, ...]:
        """The bodies of a field's MLSMessage envelopes."""
        return tuple(_body(data).encode() for data in field(name))

    group = Group.create(1, "alice", "bob")
    alice, bob = group.states["alice"], group.states["bob"]
    joiner, joiner_private = key_package(1, "carol")
    added = g.commit(alice, POLICY, proposals=[g.Add(joiner)])
    assert added.welcome is not None
    _, application = g.protect(alice, b"hello")
    _, proposal = g.propose_update(alice)
    envelopes = (
        added.message,
        added.welcome,
        g.commit(alice, POLICY, private=True).message,
        application,
        proposal,
        g.group_info(alice),
        MLSMessage(joiner).encode(),
    )
    commit_message, proposal_message = _body(added.message), _body(proposal)
    assert isinstance(commit_message, PublicMessage) and isinstance(proposal_message, PublicMessage)
    commit = commit_message.content.content
    update = proposal_message.content.content
    assert isinstance(commit, proposals.Commit) and commit.path is not None
    assert isinstance(update, proposals.Update)
    private_contents = {
        ContentType.APPLICATION: encode_private_content(b"hi", FramedContentAuthData(b"s"), 3),
        ContentType.PROPOSAL: encode_private_content(update, proposal_message.auth, 0),
        ContentType.COMMIT: encode_private_content(commit, commit_message.auth, 1),
    }
    suite = get_suite(1)
    trees = (*field("ratchet_tree"), alice.tree.encode())

    def process(data: bytes) -> object:
        return g.process(bob, data, POLICY)

    def join(data: bytes) -> object:
        return g.join_from_welcome(data, joiner, joiner_private, POLICY)

    def private_content(content_type: ContentType) -> Target:
        return Target(
            f"PrivateMessageContent/{content_type.name}",
            lambda data: decode_private_content(data, content_type),
            (private_contents[content_type],),
        )

    return (
        Target("MLSMessage", MLSMessage.decode, (*envelopes, *field("mls_welcome"))),
        Target("process", process, envelopes),
        Target("join_from_welcome", join, (added.welcome,)),
        Target("Welcome", _struct(Welcome), body("mls_welcome")),
        Target("GroupInfo", _struct(GroupInfo), body("mls_group_info")),
        Target("KeyPackage", KeyPackage.decode, (joiner.encode(), *body("mls_key_package"))),
        Target("GroupSecrets", GroupSecrets.decode, field("group_secrets")),
        Target("GroupContext", GroupContext.decode, (alice.context.encode(),)),
        Target("GroupState", GroupState.decode, (alice.encode(), bob.encode())),
        Target("ratchet_tree", decode_ratchet_tree, trees),
        Target("RatchetTree", lambda data: RatchetTree.decode(suite, data), trees),
        Target("LeafNode", _struct(LeafNode), (commit.path.leaf_node.encode(),)),
        Target("UpdatePath", _struct(proposals.UpdatePath), (commit.path.encode(),)),
        Target("Commit", _struct(proposals.Commit), (commit.encode(), *field("commit"))),
        Target("proposal", _read(proposals.read_proposal), (proposals.encode_proposal(update),)),
        Target("Add", _struct(proposals.Add), field("add_proposal")),
        Target("Update", _struct(proposals.Update), field("update_proposal")),
        Target("Remove", _struct(proposals.Remove), field("remove_proposal")),
        Target("PreSharedKey", _struct(proposals.PreSharedKey), field("pre_shared_key_proposal")),
        Target("ReInit", _struct(proposals.ReInit), field("re_init_proposal")),
        Target("ExternalInit", _struct(proposals.ExternalInit), field("external_init_proposal")),
        Target(
            "GroupContextExtensions",
            _struct(proposals.GroupContextExtensions),
            field("group_context_extensions_proposal"),
        ),
        *(private_content(t) for t in ContentType if t in private_contents),
    )


def _body(data: bytes) -> Any:
    return MLSMessage.decode(data).message


def _read(reader: Callable[[Reader], object]) -> Callable[[bytes], object]:
    return lambda data: decode(data, reader)


_LENGTHS = (b"\x3f", b"\x40\x00", b"\x7f\xff", b"\x80\x00\x40\x00", b"\xbf\xff\xff\xff", b"\xff")


def _mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to three edits of the kinds that break length-prefixed formats."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(out) + 1)
        kind = rng.randrange(8)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[min(at, len(out) - 1)] = rng.choice((0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xFF))
        elif kind == 2:
            out[at:at] = rng.choice(_LENGTHS)
        elif kind == 3:
            del out[at : at + rng.randint(1, 16)]
        elif kind == 4:
            del out[at:]
        elif kind == 5:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif kind == 6 and out:
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 64)]
        else:
            other = rng.choice(pool)
            out[at:] = other[rng.randrange(len(other) + 1) :]
    return bytes(out)


def _input(rng: random.Random, target: Target, pool: list[bytes]) -> bytes:
    choice = rng.random()
    if choice < 0.2 or not pool:
        return rng.randbytes(rng.randint(0, 300))
    seeds = target.seeds if target.seeds and choice < 0.9 else pool
    return _mutate(rng, rng.choice(seeds), pool)


def fuzz(
    count: int,
    seed: int,
    targets: tuple[Target, ...] | None = None,
    slow_s: float = SLOW_INPUT_S,
) -> list[str]:
    """Feed `count` inputs round robin; return one line per input that misbehaved."""
    targets = targets or _targets()
    pool = [s for t in targets for s in t.seeds]
    rng = random.Random(seed)
    failures = []
    for i in range(count):
        target = targets[i % len(targets)]
        data = _input(rng, target, pool)
        start = time.process_time()
        try:
            target.run(data)
        except MLSError:
            pass
        except Exception as exc:  # anything else is what the fuzz hunts
            failures.append(f"{target.name} {data.hex()}: {type(exc).__name__}: {exc}")
        elapsed = time.process_time() - start
        if elapsed > slow_s:
            failures.append(f"{target.name} {data.hex()}: took {elapsed:.1f} s")
    return failures


def test_valid_seeds_decode() -> None:
    """The mutations start from valid encodings, or they would test only the first byte."""
    for target in _targets():
        if target.name not in {"process", "join_from_welcome"}:
            for data in target.seeds:
                target.run(data)


def test_the_fuzz_reports_other_exceptions_and_slow_inputs() -> None:
    """The harness itself: an IndexError and a slow decoder are both reported."""

    def slow(data: bytes) -> None:
        end = time.process_time() + 0.02
        while time.process_time() < end:
            pass
        raise DecodeError("slow but correct")

    broken = Target("broken", lambda data: data[len(data)], (b"seed",))
    failures = fuzz(4, seed=1, targets=(broken, Target("slow", slow, (b"seed",))), slow_s=0.01)
    assert [f.split()[0] for f in failures] == ["broken", "slow", "broken", "slow"]
    assert "IndexError" in failures[0] and "took" in failures[1]


def test_fuzz_decoders_quick() -> None:
    """1,500 random and mutated inputs (about 50 per entry point) raise only MLSError."""
    assert fuzz(1_500, seed=19) == []


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fuzz_decoders_soak() -> None:
    """100,000 inputs, a different stream from the quick test's."""
    assert fuzz(100_000, seed=9420) == []


# --- a member as the attacker ----------------------------------------------------------
#
# Bytes a member sends pass their signature and membership tag, so mutations of
# ciphertext-free bytes above mostly stop there. Below, the values inside a Commit, a
# KeyPackage and a ratchet tree are altered (a key of the wrong length, an index past
# the tree, a list emptied...) and then signed with the sender's own key, as a hostile
# member or joiner would: the receiver's checks past the signature must still raise
# only MLSError.


def _tweak(rng: random.Random, value: Any) -> Any:
    """`value` with one field somewhere inside it changed, keeping its Python type
    (a few tries: some choices, such as an enum's own value, change nothing)."""
    for _ in range(4):
        tweaked = _tweak_once(rng, value)
        if tweaked != value:
            break
    return tweaked


def _tweak_once(rng: random.Random, value: Any, depth: int = 0) -> Any:
    if is_dataclass(value) and not isinstance(value, type) and depth < 8:
        chosen = rng.choice([f for f in fields(value) if f.init])
        inner = getattr(value, chosen.name)
        return replace(value, **{chosen.name: _tweak_once(rng, inner, depth + 1)})
    if isinstance(value, bytes):
        return rng.choice(
            (b"", rng.randbytes(rng.randint(1, 80)), value[:-1], value + b"\x00", bytes(len(value)))
        )
    if isinstance(value, IntEnum):
        return rng.choice(list(type(value)))
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice((0, 1, value + 1, max(0, value - 1), 2**16 - 1, 2**32 - 1))
    if isinstance(value, tuple):
        if value and rng.random() < 0.7:
            i = rng.randrange(len(value))
            return (*value[:i], _tweak_once(rng, value[i], depth + 1), *value[i + 1 :])
        return rng.choice(((), (*value, *value[:1]), value[1:]))
    return value


@dataclass(frozen=True)
class Insider:
    """A two-member group and a joiner's key package, for hostile values signed properly."""

    suite_id: int
    alice: GroupState
    bob: GroupState
    commit: FramedContent
    tag: bytes
    joiner: KeyPackage
    joiner_signature: bytes


@cache
def _insider(suite_id: int) -> Insider:
    group = Group.create(suite_id, "alice", "bob")
    alice, bob = group.states["alice"], group.states["bob"]
    message = _body(g.commit(alice, POLICY).message)
    assert isinstance(message, PublicMessage) and message.auth.confirmation_tag is not None
    credential, signature_private = identity(suite_id, "carol")
    joiner, _ = g.make_key_package(credential, signature_private, now=NOW, suite_id=suite_id)
    return Insider(
        suite_id,
        alice,
        bob,
        message.content,
        message.auth.confirmation_tag,
        joiner,
        signature_private,
    )


def _hostile_commit(rng: random.Random, insider: Insider) -> Callable[[], object]:
    """Bob processes a Commit whose values Alice altered and then signed."""
    alice = insider.alice
    # Mostly the Commit itself: a changed group id or epoch is refused by the sender.
    if rng.random() < 0.8:
        content = replace(insider.commit, content=_tweak(rng, insider.commit.content))
    else:
        content = _tweak(rng, insider.commit)
    commit = content.content
    if isinstance(commit, proposals.Commit) and commit.path is not None:
        leaf = commit.path.leaf_node
        tbs = leaf.tbs(alice.group_id, alice.own_leaf)
        signature = sign_with_label(alice.suite, alice.signature_private, b"LeafNodeTBS", tbs)
        leaf = replace(leaf, signature=signature)
        path = replace(commit.path, leaf_node=leaf)
        content = replace(content, content=replace(commit, path=path))
    sealed = protect_public(
        alice.suite,
        content,
        alice.signature_private,
        alice.context,
        alice.membership_key,
        insider.tag,
    )
    data = MLSMessage(sealed).encode()
    return lambda: g.process(insider.bob, data, POLICY)


def _hostile_key_package(rng: random.Random, insider: Insider) -> Callable[[], object]:
    """Alice adds a key package whose values its owner altered and then signed; Bob
    processes the Commit if Alice made one."""
    suite, owner = insider.alice.suite, insider.joiner_signature
    key_package = _tweak(rng, insider.joiner)
    leaf = key_package.leaf_node
    leaf = replace(leaf, signature=sign_with_label(suite, owner, b"LeafNodeTBS", leaf.tbs(b"", 0)))
    key_package = replace(key_package, leaf_node=leaf)
    signature = sign_with_label(suite, owner, b"KeyPackageTBS", key_package.tbs())
    data = MLSMessage(replace(key_package, signature=signature)).encode()

    def act() -> object:
        received = MLSMessage.decode(data).message
        if not isinstance(received, KeyPackage):
            return None
        result = g.commit(insider.alice, POLICY, proposals=[g.Add(received)])
        return g.process(insider.bob, result.message, POLICY)

    return act


def _hostile_tree(rng: random.Random, insider: Insider) -> Callable[[], object]:
    """A joiner checks a tree with an altered node, under the altered tree's own hash
    (the GroupInfo signer chooses both)."""
    alice = insider.alice
    nodes = list(alice.tree.nodes)
    x = rng.choice([i for i, n in enumerate(nodes) if n is not None])
    nodes[x] = _tweak(rng, nodes[x])
    data = encode_ratchet_tree(tuple(nodes))

    def act() -> object:
        tree = RatchetTree.decode(alice.suite, data)
        validate_tree(tree, alice.group_id, tree.tree_hash(), POLICY, alice.context.extensions)
        return tree

    return act


HOSTILE = (_hostile_commit, _hostile_key_package, _hostile_tree)


def hostile(count: int, seed: int, suite_id: int) -> list[str]:
    """`count` hostile values signed by their sender; one line per non-MLSError the
    receiver raised. A value the sender's own code cannot build or encode (a lifetime
    on a commit leaf, a one-element lifetime, a negative integer) cannot be sent, so
    any failure before the receiver's part skips the value."""
    insider = _insider(suite_id)
    rng = random.Random(seed)
    failures = []
    for i in range(count):
        attack = HOSTILE[i % len(HOSTILE)]
        try:
            act = attack(rng, insider)
        except Exception:  # the sender's side: see above
            continue
        try:
            act()
        except MLSError:
            pass
        except Exception as exc:  # anything else is what the fuzz hunts
            failures.append(f"{attack.__name__} #{i}: {type(exc).__name__}: {exc}")
    return failures


@pytest.mark.parametrize("suite_id", [1, HYBRID_X25519])
def test_hostile_member_values_quick(suite_id: int) -> None:
    """150 altered and re-signed Commits, key packages and trees raise only MLSError."""
    assert hostile(150, seed=19, suite_id=suite_id) == []


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("suite_id", [1, HYBRID_X25519])
def test_hostile_member_values_soak(suite_id: int) -> None:
    assert hostile(5_000, seed=9420, suite_id=suite_id) == []
