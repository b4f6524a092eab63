"""The names of the client's key/value vault entries, all in one place.

Each concern of the client keeps its state under names built here, so that a
reader sees every kind of entry a vault can hold (and a new one cannot reuse
a prefix by accident). The names are a stored format: never change one.
"""

from __future__ import annotations

IDENTITY = "identity"
PREKEYS = "prekeys"
"""`PrekeySecrets`: every private prekey this device still holds."""
TOKEN = "token"  # noqa: S105 (a vault entry name, not a secret)
"""The relay session this device holds, if any: a new login replaces it."""
PUBLISHED_SPK = "published_signed_prekey"
PUBLISHED_KEM = "published_kem_prekey"
UPLOADS = "uploads"
"""The uploads to finish (and offer) after a reconnect or a restart."""


def session(peer: str) -> str:
    """The current `RatchetState` with `peer`."""
    return f"session:{peer}"


def sessions(peer: str) -> str:
    """The peer's `SessionRecord`: session starts seen, and sessions kept for receiving."""
    return f"sessions:{peer}"


def jammed(peer: str) -> str:
    """The id of the session with `peer` that jammed (past the skip limit), if one did."""
    return f"jammed:{peer}"


def gone(peer: str) -> str:
    """Set once the relay said `peer`'s account was deleted: after a restart the relay
    no longer knows them as a contact, so the vault remembers."""
    return f"gone:{peer}"


def offered_file(blob_id: str) -> str:
    """The manifest of a file offered to us or by us."""
    return f"file:{blob_id}"


def saved_file(blob_id: str) -> str:
    """Where a received file was saved."""
    return f"saved:{blob_id}"


PIN_PREFIX = "pin:"


def pin(peer: str) -> str:
    """The key we trust for `peer`."""
    return f"{PIN_PREFIX}{peer}"


def offered_key(peer: str) -> str:
    """A different key presented for `peer`, until the user decides."""
    return f"offered:{peer}"


def verified(peer: str) -> str:
    """The key the user compared with `peer` and marked verified.

    Holding the key itself (not a flag) means any other pinned key reads as unverified.
    """
    return f"verified:{peer}"


def sent_count(peer: str) -> str:
    """The numbering of what we sent `peer` (`sequence.Counter`)."""
    return f"txseq:{peer}"


def received_window(peer: str) -> str:
    """The window of numbered messages that arrived from `peer` (`sequence.Window`)."""
    return f"rxseq:{peer}"


GROUP_DEVICE = "group_device"
"""`groups.device.Device`: this device's MLS signing key and credential (groups/stored.py)."""
GROUPS = "groups"
"""The ids (hex) of the groups this device is in, msgpack: the vault cannot list by prefix."""
GROUP_KEY_PACKAGES = "group_key_packages"
"""`group_keys.PublishedKeyPackages`: when this device's batch of key packages was
published and the references of its packages (`1` from before refreshes)."""


def group(group_id: str) -> str:
    """The stored `GroupSession` of the group with this hex id (groups/stored.py)."""
    return f"group:{group_id}"


def group_tree(group_id: str) -> str:
    """The ratchet tree of that session (`StoredTree`), apart: a message leaves it as it is."""
    return f"group_tree:{group_id}"


def key_package(ref: bytes) -> str:
    """A published key package and its private keys, by its MLS reference, until a
    Welcome uses it (the last-resort one is kept)."""
    return f"group_kp:{ref.hex()}"


GROUP_JOINS = "group_joins"
"""Ids (hex) of groups whose Welcome came as a file not yet fetched, msgpack."""


def group_join(group_id: str) -> str:
    """The `welcome` delivery naming the file that holds the group's Welcome."""
    return f"group_join:{group_id}"


def group_held_count(group_id: str) -> str:
    """How many of the group's deliveries came after its Welcome, until it is fetched."""
    return f"group_held:{group_id}"


def group_held(group_id: str, n: int) -> str:
    """The `n`th of them (from 0)."""
    return f"group_held:{group_id}:{n}"


GROUP_OUTBOX = "group_outbox"
"""Group messages not yet stored by the relay (`groups.QueuedGroupMessage`, msgpack), in
the order they were written: sealed again for the group's epoch when they go out."""
GROUP_LAST_RESORT = "group_last_resort"
"""The reference of this device's last-resort key package, which a Welcome does not use up."""
