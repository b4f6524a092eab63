"""Checks against the MLS working group's interop test vectors that need a whole group.

    python -m securechat.crypto.mls.interop passive-client FILE.json

reads a passive-client scenario file (an array of cases, FORMAT.md "Passive Client
Scenarios"), joins each case's group from its Welcome, follows every epoch and
compares the epoch authenticators. It prints one line per failing case and a last
line "N passed, M failed", and exits 1 if any case failed (2 if the file is not a
vector file at all). `check_passive_client` is the pure part; `main` the shell.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from securechat.crypto.mls import group
from securechat.crypto.mls.errors import InvalidMessage, MLSError
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.leaf_node import Credential, KeyPackage
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.validation import Policy


class CaseFailed(Exception):
    """A case whose computed values differ from the vector's."""


def _accept_any(credential: Credential, signature_key: bytes) -> bool:
    """Interop vectors carry test credentials no application would know."""
    return True


def _hex(case: Mapping[str, Any], key: str) -> bytes:
    value = case[key]
    if not isinstance(value, str):
        raise CaseFailed(f"{key} is not a hex string")
    return bytes.fromhex(value)


def _key_package(data: bytes) -> KeyPackage:
    """FORMAT.md says KeyPackage; the WG's files wrap it in an MLSMessage. Take either."""
    try:
        message = MLSMessage.decode(data).message
    except MLSError:
        return KeyPackage.decode(data)
    if not isinstance(message, KeyPackage):
        raise CaseFailed("key_package is an MLSMessage but not a KeyPackage")
    return message


def check_passive_client(case: Mapping[str, Any]) -> None:
    """Raise CaseFailed or an MLSError unless the passive client follows the case."""
    suite = get_suite(int(case["cipher_suite"]))
    key_package = _key_package(_hex(case, "key_package"))
    signature_priv = _hex(case, "signature_priv")
    encryption_priv = _hex(case, "encryption_priv")
    init_priv = _hex(case, "init_priv")
    leaf = key_package.leaf_node
    if suite.signature.public_key(signature_priv) != leaf.signature_key:
        raise CaseFailed("signature_priv does not match the key package's signature key")
    if suite.dh.public_key(encryption_priv) != leaf.encryption_key:
        raise CaseFailed("encryption_priv does not match the key package's encryption key")
    if suite.dh.public_key(init_priv) != key_package.init_key:
        raise CaseFailed("init_priv does not match the key package's init key")
    psks = {_hex(p, "psk_id"): _hex(p, "psk") for p in case.get("external_psks") or ()}
    policy = Policy(_accept_any, None, psks)
    tree = case.get("ratchet_tree")
    state = group.join_from_welcome(
        _hex(case, "welcome"),
        key_package,
        group.KeyPackagePrivate(init_priv, encryption_priv, signature_priv),
        policy,
        ratchet_tree=None if tree is None else bytes.fromhex(tree),
    )
    if state.epoch_authenticator != _hex(case, "initial_epoch_authenticator"):
        raise CaseFailed("initial epoch authenticator differs")
    for number, epoch in enumerate(case["epochs"]):
        for proposal in epoch.get("proposals") or ():
            state, _ = group.process(state, bytes.fromhex(proposal), policy)
        state, output = group.process(state, _hex(epoch, "commit"), policy)
        if not isinstance(output, group.CommitApplied):
            raise InvalidMessage(f"epoch {number}: the commit gave {type(output).__name__}")
        if state.epoch_authenticator != _hex(epoch, "epoch_authenticator"):
            raise CaseFailed(f"epoch {number}: epoch authenticator differs")


def run_passive_client(cases: Sequence[Mapping[str, Any]]) -> tuple[list[str], int]:
    """One line per failing case, and the number that passed."""
    failures, passed = [], 0
    for index, case in enumerate(cases):
        try:
            check_passive_client(case)
        except (CaseFailed, MLSError, KeyError, TypeError, ValueError) as exc:
            suite = case.get("cipher_suite", "?") if isinstance(case, Mapping) else "?"
            failures.append(f"case {index} (suite {suite}): {type(exc).__name__}: {exc}")
        else:
            passed += 1
    return failures, passed


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "passive-client":
        print("usage: python -m securechat.crypto.mls.interop passive-client FILE.json")
        return 2
    try:
        with open(args[1], encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args[1]}: {exc}")
        return 2
    cases = data if isinstance(data, list) else [data]
    failures, passed = run_passive_client(cases)
    for line in failures:
        print(line)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
