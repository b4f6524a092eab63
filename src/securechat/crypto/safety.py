"""Safety numbers: what two users compare (aloud or side by side) to detect a key swap.

Modelled on Signal's numeric fingerprint: each side contributes 30 digits from SHA-512
iterated over (version || identity DER || username); the two halves are sorted so both
users see the same 60 digits whatever the argument order. The iteration count makes a
second-preimage search (a key whose digits collide with the real one) expensive.
"""

from __future__ import annotations

from securechat.crypto import primitives
from securechat.crypto.identity import IdentityPublicKey

SAFETY_ITERATIONS = 5200
_VERSION = b"\x00\x00"
_DIGITS_PER_SIDE = 30


def safety_number(
    user_a: str, key_a: IdentityPublicKey, user_b: str, key_b: IdentityPublicKey
) -> str:
    """60 decimal digits, identical for (a, b) and (b, a)."""
    halves = sorted((_side(user_a, key_a), _side(user_b, key_b)))
    return halves[0] + halves[1]


def format_safety_number(number: str) -> str:
    """Twelve space-separated groups of five digits, the shape users read aloud."""
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))


def _side(user: str, key: IdentityPublicKey) -> str:
    digest = primitives.sha512(_VERSION + key.der + user.encode())
    for _ in range(SAFETY_ITERATIONS):
        digest = primitives.sha512(digest + key.der)
    # Six 5-byte chunks, each reduced to five digits, as Signal does.
    return "".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}"
        for i in range(0, _DIGITS_PER_SIDE, 5)
    )
