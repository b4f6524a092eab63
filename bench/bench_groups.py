"""Group sessions (src/securechat/groups): what securechat adds on top of MLS when a
member processes another member's Commit, against the bare MLS processing of the
same Commit in the same run.

The session adds the policy check (usernames of the roster before and after), the
membership events and the comparison of each new leaf's identity key with the
member's pins. Issue 20's target: a member of a 1,000-member group processes an
add in under 50 ms. Every member here shares one RSA identity key (making a
thousand RSA-3072 keys would take minutes); each device still has its own MLS
signing key and binding, so the cost per leaf is the real one.

Run: .venv/bin/python -m bench groups
"""

from __future__ import annotations

import time

from bench.common import Row, log, row, timed_ms
from securechat.crypto.identity import IdentityKeyPair, IdentityPublicKey
from securechat.crypto.mls import group as g
from securechat.crypto.mls.suite import HYBRID_X25519
from securechat.groups.device import Device, key_package, mls_policy, new_device
from securechat.groups.outputs import AddMembers, RemoveMember, SendCommit
from securechat.groups.session import GroupSession

NOW = int(time.time())
"""The clock of the whole run: a client (bench_group_scale.py) checks key package
lifetimes against the real clock, so a fixed date would have every add refused."""
SIZES = (10, 100, 1_000)
QUICK_SIZES = (10, 100)
SUITES = {"suite 1": 1, "X-Wing hybrid": HYBRID_X25519}
TARGET_MS = 50.0


class BuiltGroup:
    """A group of `size` built by one bulk add: its creator, its last member, and an add
    and a remove Commit by the creator for that member to process (bench_group_scale.py
    uses it too)."""

    def __init__(self, size: int, identity: IdentityKeyPair, suite_id: int = 1) -> None:
        def pins(user: str) -> IdentityPublicKey:
            return identity.public

        self.pins = pins

        def device(user: str) -> Device:
            return new_device(identity, user, suite_id=suite_id)

        creator = GroupSession.create(device("user0"), "g", now=NOW)
        members = [(f"user{i}", key_package(device(f"user{i}"), now=NOW)) for i in range(1, size)]
        creator, outputs = creator.request(
            AddMembers(tuple((user, kp) for user, (kp, _) in members)), now=NOW, pins=pins
        )
        action = next(o for o in outputs if isinstance(o, SendCommit))
        self.creator, _ = creator.accepted(action.epoch, now=NOW)
        assert action.welcome is not None
        kp, private = members[-1][1]
        self.member, _ = GroupSession.join(action.welcome, kp, private, epoch=1, now=NOW, pins=pins)
        joiner, _ = key_package(device("joiner"), now=NOW)
        self.commits = {
            "an add": self._commit(AddMembers((("joiner", joiner),))),
            "a remove": self._commit(RemoveMember("user1")),
        }

    def _commit(self, intent: AddMembers | RemoveMember) -> bytes:
        _, outputs = self.creator.request(intent, now=NOW, pins=self.pins)
        return next(o for o in outputs if isinstance(o, SendCommit)).commit


def _one_size(
    label: str, suite_id: int, size: int, identity: IdentityKeyPair, repeats: int
) -> list[Row]:
    start = time.perf_counter()
    group = BuiltGroup(size, identity, suite_id)
    other, pins = group.member, group.pins
    log(f"{label} n={size}: group built in {time.perf_counter() - start:.1f} s")
    rows = []
    for what, body in group.commits.items():
        session = [timed_ms(lambda b=body: other.receive_commit(1, b, now=NOW, pins=pins), repeats)]
        bare = timed_ms(lambda b=body: g.process(other.mls, b, mls_policy(NOW)), repeats)
        met = None
        if what == "an add" and size == 1_000:
            met = max(session[0]) < TARGET_MS
        rows.append(
            row(
                "groups",
                f"{label}, n={size:,}: a member processes {what} (GroupSession)",
                session[0],
                "ms",
                bare,
                target=f"< {TARGET_MS:.0f} ms at n=1,000" if size == 1_000 else "",
                met=met,
                note="baseline: bare MLS process of the same Commit, same run",
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 5
    identity = IdentityKeyPair.generate()
    rows: list[Row] = []
    for label, suite_id in SUITES.items():
        for size in QUICK_SIZES if quick else SIZES:
            rows += _one_size(label, suite_id, size, identity, repeats)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
