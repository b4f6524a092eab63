"""Groups of 10, 100 and 1,000 from a member's client: what one message costs its sender
and what an add and a remove cost each member, against baselines in the same run.

Issue 20's targets: the sender's cost of one group message does not depend on
the group's size (MLS protects once, whatever the number of members), and each
member of a 1,000-member group processes an add in under 50 ms.

- Sender, protect: `GroupSession.send` of a 1 KiB message against the 1:1 Double
  Ratchet's `encrypt` of the same message, rounds interleaved.
- Sender, client: `GroupSending.send_text` (the session loaded from the vault,
  protected, written back with the message, the relay's answer recorded; the
  relay is an in-memory stub) against the same at 10 members: the ratio is what
  the group's size adds. The 1:1 ratchet `encrypt` is given for scale.
- Member, client: `Groups.on_envelope` of an add and of a remove Commit (the
  session loaded, the Commit processed, the session, its history line and the
  delivery's mark written in one vault transaction) against `GroupSession`'s
  processing of the same Commit with no vault, same run (bench_groups.py has
  that one against bare MLS).

Every member shares one RSA identity key, as in bench_groups.py (a thousand
RSA-3072 keys would take minutes); each device still has its own MLS keys.

Run: .venv/bin/python -m bench group-scale
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.bench_crypto import MESSAGE, _session
from bench.bench_groups import NOW, BuiltGroup
from bench.common import Row, log, row, scratch
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.events import ConversationState
from securechat.client.group_store import Effects
from securechat.client.groups import Groups
from securechat.client.trust import Trust
from securechat.client.vault_store import Vault
from securechat.crypto import encrypt, generate_recovery_code
from securechat.crypto.identity import IdentityKeyPair
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF

SIZES = (10, 100, 1_000)
QUICK_SIZES = (10, 100)
TARGET_MS = 50.0
SIZE_TARGET = 1.2
"""A group message at n members may cost its sender at most this much its cost at 10."""
PASSWORD = "a long enough password"


def _ms(op: Callable[[], object]) -> float:
    start = time.perf_counter()
    op()
    return (time.perf_counter() - start) * 1000


def _each_ms(op: Callable[[], object], times: int) -> float:
    """Milliseconds per call of `op`, over `times` calls."""
    start = time.perf_counter()
    for _ in range(times):
        op()
    return (time.perf_counter() - start) * 1000 / times


async def _unused(*args: object) -> None:
    raise AssertionError("no relay connection here")


async def _accept(build: Callable[[int], F.ClientFrame]) -> F.ServerFrame:
    frame = build(1)
    assert isinstance(frame, GF.GroupSend)
    return F.Accepted(rid=frame.rid, eid=frame.eid)


def _client(root: Path, name: str, identity: IdentityKeyPair, size: int) -> Groups:
    """A member's `Groups` on its own vault, every member pinned, with a relay that
    accepts every send."""
    ctx = ClientContext(
        "ws://unused",
        root,
        pin_sha256=None,
        reconnect=False,
        on_envelope=_unused,
        on_push=_unused,
        on_event=lambda event: None,
    )
    ctx.vault = Vault.create(root / name, PASSWORD, generate_recovery_code(), name)
    ctx.identity, ctx.username = identity, name
    trust = Trust(ctx, lambda peer: ConversationState.NONE)
    users = [f"user{i}" for i in range(size)] + ["joiner"]
    ctx.vault.record_all([], {K.pin(user): identity.public.der for user in users})
    return Groups(ctx, trust, request=_accept)


async def _sent_ms(client: Groups, group_id: str, text: str, sends: int) -> float:
    start = time.perf_counter()
    for _ in range(sends):
        await client.sending.send_text(group_id, text)
    return (time.perf_counter() - start) * 1000 / sends


def _sender_rows(
    groups: dict[int, BuiltGroup], clients: dict[int, Groups], rounds: int, sends: int
) -> list[Row]:
    alice, _ = _session()
    ratchet = {"state": alice}

    def one_to_one() -> None:
        ratchet["state"], _ = encrypt(ratchet["state"], MESSAGE, "alice", "bob")

    senders = {n: group.creator for n, group in groups.items()}

    def protect_one(n: int) -> None:
        """As a sender does: each message moves its own chain on (the next one starts
        from there, not from the epoch's root)."""
        senders[n], _ = senders[n].send(MESSAGE)

    text = MESSAGE.hex()[:1024]
    protect: dict[int, list[float]] = {n: [] for n in groups}
    client: dict[int, list[float]] = {n: [] for n in groups}
    direct: list[float] = []
    for r in range(rounds):
        direct.append(_each_ms(one_to_one, sends))
        # Every send adds a history line: alternating the order keeps a size from
        # always meeting the fuller vault.
        for n in sorted(groups, reverse=r % 2 == 1):
            protect[n].append(_each_ms(partial(protect_one, n), sends))
            gid = f"{n:032x}"
            client[n].append(asyncio.run(_sent_ms(clients[n], gid, text, sends)))
    rows = []
    smallest = min(groups)
    for n in groups:
        result = row(
            "group-scale",
            f"n={n:,}: the sender protects one 1 KiB group message (GroupSession.send)",
            protect[n],
            "ms",
            direct,
            note="baseline: 1:1 Double Ratchet encrypt of the same message, same rounds",
        )
        if n != smallest:
            growth = statistics.median(protect[n]) / statistics.median(protect[smallest])
            result["target"] = f"independent of n: ≤ {SIZE_TARGET}x the n={smallest} cost"
            result["met"] = growth <= SIZE_TARGET
            result["note"] += f"; {growth:.2f}x the n={smallest} cost"
        rows.append(result)
    for n in groups:
        ratio_target = n != smallest
        result = row(
            "group-scale",
            f"n={n:,}: the sender's client sends one group message (vault load, protect, save)",
            client[n],
            "ms",
            client[smallest],
            target=f"≤ {SIZE_TARGET}x the n={smallest} cost" if ratio_target else "",
            note=f"baseline: the same at n={smallest}, same rounds; 1:1 ratchet encrypt "
            f"{sorted(direct)[len(direct) // 2]:.3f} ms",
        )
        if ratio_target and result.get("ratio") is not None:
            result["met"] = result["ratio"] <= SIZE_TARGET
        rows.append(result)
    return rows


def _restarted(client: Groups) -> Groups:
    """The same device after a restart: its vault as it was, nothing kept in memory."""
    return Groups(client._ctx, client._trust, request=_accept)


def _process(client: Groups, gid: str, envelope: GF.GroupEnvelope) -> float:
    """Milliseconds for `on_envelope`; a Commit refused instead of processed would time
    the wrong path, so that is an error here."""
    elapsed = _ms(partial(client.on_envelope, envelope))
    if client.store.session(gid).epoch != envelope.epoch + 1:
        raise RuntimeError(f"{envelope.eid}: the Commit was not processed")
    return elapsed


def _member_rows(n: int, group: BuiltGroup, client: Groups, repeats: int) -> list[Row]:
    gid = f"{n:032x}"
    rows = []
    for what, commit in group.commits.items():
        with_vault, cold, warmed, warming, session_only = [], [], [], [], []
        for r in range(repeats):

            def envelope(eid: str, r: int = r, commit: bytes = commit) -> GF.GroupEnvelope:
                return GF.GroupEnvelope(
                    sid=r + 1,
                    group=bytes.fromhex(gid),
                    kind="commit",
                    epoch=1,
                    sender="user0",
                    eid=eid,
                    body=commit,
                    ts=float(NOW),
                )

            client.store.save(gid, group.member, Effects(received=0.0), new=True)
            with_vault.append(_process(client, gid, envelope(f"{what}-{r}")))
            client.store.save(gid, group.member, Effects(received=0.0), new=True)
            cold.append(_process(_restarted(client), gid, envelope(f"{what}-cold-{r}")))
            client.store.save(gid, group.member, Effects(received=0.0), new=True)
            signed_in = _restarted(client)
            warming.append(_ms(signed_in.store.warm))
            warmed.append(_process(signed_in, gid, envelope(f"{what}-warm-{r}")))
            session_only.append(
                _ms(partial(group.member.receive_commit, 1, commit, now=NOW, pins=group.pins))
            )
        met = max(with_vault) < TARGET_MS if n == 1_000 else None
        rows.append(
            row(
                "group-scale",
                f"n={n:,}: a member's client processes {what} (Groups.on_envelope, vault)",
                with_vault,
                "ms",
                session_only,
                target=f"< {TARGET_MS:.0f} ms at n=1,000" if n == 1_000 else "",
                met=met,
                note="baseline: GroupSession.receive_commit of the same Commit, no vault",
            )
        )
        rows.append(
            row(
                "group-scale",
                f"n={n:,}: the same, the first Commit after a restart (tree read from the vault)",
                cold,
                "ms",
                with_vault,
                note="baseline: the same Commit with the tree kept in memory, same rounds",
            )
        )
        rows.append(
            row(
                "group-scale",
                f"n={n:,}: the same after a restart whose sign-in warmed the trees",
                warmed,
                "ms",
                with_vault,
                target=f"< {TARGET_MS:.0f} ms at n=1,000" if n == 1_000 else "",
                met=max(warmed) < TARGET_MS if n == 1_000 else None,
                note="baseline: the tree kept in memory all along; sign-in's warming "
                f"(GroupStore.warm) took {statistics.median(warming):.1f} ms",
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    sizes = QUICK_SIZES if quick else SIZES
    rounds, sends, repeats = (2, 5, 2) if quick else (6, 100, 5)
    identity = IdentityKeyPair.generate()
    groups: dict[int, BuiltGroup] = {}
    for n in sizes:
        started = time.perf_counter()
        groups[n] = BuiltGroup(n, identity)
        log(f"group of {n:,} built in {time.perf_counter() - started:.1f} s")
    rows: list[Row] = []
    with scratch("group-scale") as root:
        senders, members = {}, {}
        for n, group in groups.items():
            senders[n] = _client(root / f"s{n}", "user0", identity, n)
            senders[n].store.save(f"{n:032x}", group.creator, Effects(received=0.0), new=True)
            members[n] = _client(root / f"m{n}", f"user{n - 1}", identity, n)
        rows += _sender_rows(groups, senders, rounds, sends)
        for n, group in groups.items():
            rows += _member_rows(n, group, members[n], repeats)
        for client in (*senders.values(), *members.values()):
            vault = client._ctx.vault
            assert vault is not None
            vault.close()
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
