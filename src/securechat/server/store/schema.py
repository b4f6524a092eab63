"""What the relay's database holds for a user, and how its queue is addressed.

One list says which rows belong to a user, so deleting an account and
counting the store's contents cannot forget a table that a later change
adds: both stores derive `delete_account` and `stats` from `USER_ROWS`.

The queue is addressed by inbox, `(user, device)`. An envelope's body is
stored once, in `envelopes` (its sid, sender, id, bytes and time), and each
inbox it is delivered to has a row in `deliveries` (user, device, sid, size).
A body leaves with its last delivery (a trigger in both databases). Today
every user has one device, `DEFAULT_DEVICE`, and every body one delivery;
fan-out to a group's members and linked devices adds rows, not a migration.

The tables themselves are written down once, as numbered migrations in
`sqlite/migrations.py` and `postgres/migrations.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DEVICE = 0
"""The inbox of a user's one device, until users can link more."""


@dataclass(frozen=True, slots=True)
class UserRows:
    """Rows of `table` that belong to the user bound to `$1`."""

    table: str
    where: str
    """A condition on one user, `$1` the name (SQLite reads it as `?1`)."""


USER_ROWS: tuple[UserRows, ...] = (
    UserRows("accounts", "username = $1"),
    UserRows("sessions", "username = $1"),
    UserRows("reset_tokens", "username = $1"),
    # What waits in the user's inboxes and what the user sent that waits in others';
    # the bodies follow their last delivery, and a body left without one goes too.
    UserRows("deliveries", "username = $1 OR sid IN (SELECT sid FROM envelopes WHERE sender = $1)"),
    UserRows("envelopes", "sender = $1"),
    UserRows("contacts", "a = $1 OR b = $1"),
    UserRows("identity_keys", "username = $1"),
    UserRows("one_time_prekeys", "username = $1"),
    UserRows("one_time_kem_prekeys", "username = $1"),
    UserRows("key_packages", "username = $1"),
    UserRows("group_members", "username = $1"),
    UserRows("files", "owner = $1"),
)
"""In deletion order."""

GROUP_TABLES = ("mls_groups", "group_commits")
"""A group's epoch and Commits belong to the group, not to one member: they stay when
a member's account goes (the others still fetch those Commits)."""

UNOWNED = ("throttle", "scan_cache", *GROUP_TABLES)
"""Every other table: login back-off is keyed by name and address and expires on its
own; the scan cache belongs to nobody; the group tables belong to groups."""

COUNTED = (*(rows.table for rows in USER_ROWS), *GROUP_TABLES)
"""Tables whose sizes `stats` reports (with the live sessions)."""
