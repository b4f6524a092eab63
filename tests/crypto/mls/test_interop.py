"""The passive-client harness, fed a scenario our own group code records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from securechat.crypto.mls import group as g
from securechat.crypto.mls.interop import main
from securechat.crypto.mls.psk import PreSharedKeyID, PSKType
from securechat.crypto.mls.validation import Policy
from tests.crypto.mls.group_helpers import NOW, POLICY, Group, key_package


def record_passive_client(suite_id: int) -> dict[str, Any]:
    """A group of three that a passive member joins, then six epochs of adds, removes,
    updates, PSKs and proposals by reference, some encrypted, as FORMAT.md lays out."""
    policy = Policy(POLICY.credential_validator, NOW, {b"ext": b"s" * 32})
    group = Group.create(suite_id, "alice", "bob", "carol")
    group.policy = policy
    kp, private = key_package(suite_id, "passive")
    result = g.commit(group.states["alice"], policy, proposals=[g.Add(kp)])
    group.states["alice"] = result.state
    group.deliver(result.message, sender="alice")
    assert result.welcome is not None
    case: dict[str, Any] = {
        "cipher_suite": suite_id,
        "external_psks": [{"psk_id": b"ext".hex(), "psk": (b"s" * 32).hex()}],
        "key_package": g.MLSMessage(kp).encode().hex(),
        "signature_priv": private.signature_private.hex(),
        "encryption_priv": private.encryption_private.hex(),
        "init_priv": private.init_private.hex(),
        "welcome": result.welcome.hex(),
        "ratchet_tree": None,
        "initial_epoch_authenticator": result.state.epoch_authenticator.hex(),
        "epochs": [],
    }

    def epoch(committer: str, sent: list[bytes], **kwargs: Any) -> None:
        result = g.commit(group.states[committer], policy, **kwargs)
        group.states[committer] = result.state
        group.deliver(result.message, sender=committer)
        case["epochs"].append(
            {
                "proposals": [p.hex() for p in sent],
                "commit": result.message.hex(),
                "epoch_authenticator": result.state.epoch_authenticator.hex(),
            }
        )

    epoch("bob", [])
    group.states["carol"], update = g.propose_update(group.states["carol"], private=True)
    group.deliver(update, sender="carol")
    epoch("alice", [update], private=True)
    psk = PreSharedKeyID(PSKType.EXTERNAL, b"n" * 32, psk_id=b"ext")
    epoch("carol", [], proposals=[g.PreSharedKey(psk)], path=False)
    group.states["bob"], remove = g.propose_remove(group.states["bob"], group.leaf("carol"))
    group.deliver(remove, sender="bob")
    epoch("alice", [remove])
    kp_dave, _ = key_package(suite_id, "dave")
    epoch("bob", [], proposals=[g.Add(kp_dave)], path=False)
    return case


def test_passive_client_follows_our_own_group(tmp_path: Path, capsys: Any) -> None:
    """Every epoch authenticator the passive client computes matches; exit 0."""
    path = tmp_path / "passive.json"
    path.write_text(json.dumps([record_passive_client(1), record_passive_client(3)]))
    assert main(["passive-client", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["2 passed, 0 failed"]


def test_passive_client_reports_the_failing_case(tmp_path: Path, capsys: Any) -> None:
    """A changed authenticator, a forged commit and a wrong private key each fail
    their own case, by name, and the exit code says so."""
    good = record_passive_client(1)
    wrong_auth = json.loads(json.dumps(good))
    wrong_auth["epochs"][2]["epoch_authenticator"] = "00" * 32
    forged = json.loads(json.dumps(good))
    commit = bytearray.fromhex(forged["epochs"][0]["commit"])
    commit[-5] ^= 1
    forged["epochs"][0]["commit"] = commit.hex()
    wrong_key = dict(good, init_priv="11" * 32)
    path = tmp_path / "passive.json"
    path.write_text(json.dumps([good, wrong_auth, forged, wrong_key]))
    assert main(["passive-client", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1 passed, 3 failed"
    assert lines[0].startswith("case 1 (suite 1): CaseFailed: epoch 2: epoch authenticator")
    assert lines[1].startswith("case 2 (suite 1): MLSAuthenticationFailed")
    assert lines[2].startswith("case 3 (suite 1): CaseFailed: init_priv does not match")


def test_module_entry_point(tmp_path: Path) -> None:
    """`python -m securechat.crypto.mls.interop` runs the harness; a non-file is exit 2."""
    path = tmp_path / "passive.json"
    path.write_text(json.dumps(record_passive_client(1)))
    command = [sys.executable, "-m", "securechat.crypto.mls.interop", "passive-client"]
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "1 passed, 0 failed\n")
    done = subprocess.run(
        [*command, str(tmp_path / "missing.json")], capture_output=True, check=False
    )
    assert done.returncode == 2
