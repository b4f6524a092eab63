"""The two KDF chains of the Double Ratchet (Signal spec, section 5.2 recommendations).

The root chain mixes each DH ratchet output into the root key with HKDF-SHA-256 and yields
a new chain key; a symmetric chain steps with HMAC-SHA-256 under distinct constants, so a
message key never reveals the chain key it came from (forward secrecy inside a chain).
"""

from __future__ import annotations

from securechat.crypto import primitives

_ROOT_INFO = b"securechat ratchet root v1"
_MESSAGE_KEY_INPUT = b"\x01"
_CHAIN_KEY_INPUT = b"\x02"


def kdf_root(root_key: bytes, dh_output: bytes) -> tuple[bytes, bytes]:
    """(new root key, new chain key) from the current root key and a DH output."""
    out = primitives.hkdf_sha256(dh_output, salt=root_key, info=_ROOT_INFO, length=64)
    return out[:32], out[32:]


def kdf_chain(chain_key: bytes) -> tuple[bytes, bytes]:
    """(next chain key, message key) from a sending or receiving chain key."""
    return primitives.hmac_sha256_pair(chain_key, _CHAIN_KEY_INPUT, _MESSAGE_KEY_INPUT)
