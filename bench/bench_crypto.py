"""Crypto benchmarks: what the Double Ratchet costs over bare AES-GCM, plus session start
and vault unlock times.

Ratchet and raw AES-GCM run in the same process on the same 1 KiB message, so the ratio is
meaningful on any machine even when absolute numbers are not. Three baselines are shown:
one AES-GCM key reused, a fresh key per message (every ratchet message has its own key),
that plus one of our chain steps on each side (the floor: the ratchet's own overhead is its
ratio to it), and a lower bound for any design with a key per message in this Python: a
fresh key plus the cheapest keyed PRF on hand (one BLAKE2b call per side gives both the next
chain key and the message key), with no nonce, header or state at all. When that bound is
already near 3x the reused key, the 3x target cannot be met without giving up the key per
message.

Run: .venv/bin/python bench/bench_crypto.py
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from securechat.crypto import (
    IdentityKeyPair,
    PrekeyBundle,
    PrekeySecrets,
    RatchetState,
    VaultHeader,
    decrypt,
    encrypt,
    generate_kem_prekey,
    generate_one_time_prekeys,
    generate_recovery_code,
    generate_signed_prekey,
    initiate,
    primitives,
    respond,
)
from securechat.crypto.chains import kdf_chain

REPEATS = 5
MESSAGE = bytes(range(256)) * 4
AD = bytes(80)  # about the size of the ratchet's associated data


Row = dict[str, Any]


def _measure(name: str, op: Callable[[], object], per_repeat: int) -> Row:
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(per_repeat):
            op()
        rates.append(per_repeat / (time.perf_counter() - start))
    median = statistics.median(rates)
    return {
        "name": name,
        "ops_per_s": round(median, 1),
        "ms_per_op": round(1000 / median, 4),
        "spread_pct": round(100 * (max(rates) - min(rates)) / median, 1),
    }


def _session() -> tuple[RatchetState, RatchetState]:
    alice, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    secrets, bundle = _publish(bob)
    started = initiate(alice, "alice", "bob", None, bundle)
    accepted = respond(bob, "bob", "alice", None, secrets, started.initial)
    return started.state, accepted.state


def _publish(identity: IdentityKeyPair) -> tuple[PrekeySecrets, PrekeyBundle]:
    signed_secret, signed = generate_signed_prekey(identity, 1, created_at=0)
    kem_secret, kem = generate_kem_prekey(identity, 1)
    one_time_secrets, one_time = generate_one_time_prekeys(1, 1)
    secrets = (
        PrekeySecrets()
        .with_signed_prekey(signed_secret)
        .with_kem_prekey(kem_secret)
        .with_one_time_prekeys(one_time_secrets)
    )
    bundle = PrekeyBundle(
        identity.public.der, identity.signed_dh_public(), signed, kem, one_time[0]
    )
    return secrets, bundle


def run() -> list[dict[str, Any]]:
    rows: list[Row] = []

    aead = primitives.AesGcm(primitives.random_bytes(32))

    def raw_reused_key() -> None:
        nonce = primitives.random_bytes(12)
        aead.open(nonce, aead.seal(nonce, MESSAGE, AD), AD)

    def raw_fresh_key() -> None:
        key, nonce = primitives.random_bytes(32), primitives.random_bytes(12)
        primitives.aes_gcm_open(key, nonce, primitives.aes_gcm_seal(key, nonce, MESSAGE, AD), AD)

    chain_key = primitives.random_bytes(32)

    def per_message_key_floor() -> None:
        # The least any ratchet with a key per message does: a chain step on each
        # side and a fresh AES-GCM key to seal and to open. The rest of the ratchet's
        # time is its bookkeeping (header, associated data, counters, new state).
        _, key = kdf_chain(chain_key)
        nonce = primitives.random_bytes(12)
        sealed = primitives.aes_gcm_seal(key, nonce, MESSAGE, AD)
        _, key = kdf_chain(chain_key)
        primitives.aes_gcm_open(key, nonce, sealed, AD)

    zero_nonce = bytes(12)

    def per_message_key_bound() -> None:
        key = hashlib.blake2b(b"\x01", key=chain_key).digest()[:32]
        sealed = primitives.aes_gcm_seal(key, zero_nonce, MESSAGE, AD)
        key = hashlib.blake2b(b"\x01", key=chain_key).digest()[:32]
        primitives.aes_gcm_open(key, zero_nonce, sealed, AD)

    alice, bob = _session()
    states = {"alice": alice, "bob": bob}

    def ratchet_one_way() -> None:
        states["alice"], message = encrypt(states["alice"], MESSAGE, "alice", "bob")
        states["bob"], _ = decrypt(states["bob"], message, "alice", "bob")

    turn = ["alice", "bob"]

    def ratchet_alternating() -> None:
        sender, receiver = turn
        states[sender], message = encrypt(states[sender], MESSAGE, sender, receiver)
        states[receiver], _ = decrypt(states[receiver], message, sender, receiver)
        turn.reverse()

    reused = _measure("aes-gcm 1KiB seal+open, reused key", raw_reused_key, 20_000)
    fresh = _measure("aes-gcm 1KiB seal+open, fresh key", raw_fresh_key, 20_000)
    floor = _measure(
        "aes-gcm 1KiB, fresh key and a chain step per side (floor)", per_message_key_floor, 20_000
    )
    bound = _measure(
        "aes-gcm 1KiB, fresh key and one keyed BLAKE2b per side (lower bound)",
        per_message_key_bound,
        20_000,
    )
    ratchet = _measure("ratchet 1KiB encrypt+decrypt", ratchet_one_way, 20_000)
    for baseline in (reused, fresh, floor, bound):
        baseline["ratchet_slowdown"] = round(baseline["ops_per_s"] / ratchet["ops_per_s"], 2)
        if baseline is not reused:
            baseline["over_reused"] = round(reused["ops_per_s"] / baseline["ops_per_s"], 2)
    rows += [reused, fresh, floor, bound, ratchet]
    rows.append(_measure("ratchet 1KiB, DH step each message", ratchet_alternating, 1_000))

    bob_identity = IdentityKeyPair.generate()
    secrets, bundle = _publish(bob_identity)
    alice_identity = IdentityKeyPair.generate()

    def handshake() -> None:
        started = initiate(alice_identity, "alice", "bob", None, bundle)
        respond(bob_identity, "bob", "alice", None, secrets, started.initial)

    rows.append(_measure("handshake initiate+respond", handshake, 20))

    header, _ = VaultHeader.create("benchmark password", generate_recovery_code())
    rows.append(
        _measure(
            "vault unlock (scrypt n=2^17 r=8 p=1)",
            lambda: header.unlock_password("benchmark password"),
            1,
        )
    )
    return rows


def main() -> None:
    rows = run()
    print(f"{'benchmark':<40} {'ops/s':>12} {'ms/op':>10} {'spread':>8} {'ratchet is':>11}")
    for row in rows:
        slowdown = f"{row['ratchet_slowdown']}x" if "ratchet_slowdown" in row else ""
        print(
            f"{row['name']:<40} {row['ops_per_s']:>12} {row['ms_per_op']:>10} "
            f"{row['spread_pct']:>7}% {slowdown:>11}"
        )


if __name__ == "__main__":
    main()
