"""Wire frames for group conversations (MLS), served by the relay (server/groups.py).

The relay is MLS's delivery service: it hands out key packages, orders each
group's Commits (one per epoch, the first valid one wins) and fans each group
message out to the members. It reads none of it: key packages, Commits,
Welcomes and messages are opaque MLS bytes, and every handshake message is a
PrivateMessage. What the relay needs to route, it is told in the frame: the
group's random id, the epoch, and which users a Commit adds and removes.

These frames follow protocol/frames.py's rules (they share its base classes in
frame_base.py: strict client frames, lenient server frames, `rid` on requests)
and are part of its unions. `docs/protocol.md` ("Groups") describes them.

An `epoch` here is the relay's: the number of Commits it accepted for the group
before. It equals the MLS epoch unless members refused a Commit (see
groups/session.py).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from securechat.protocol import limits as L
from securechat.protocol.frame_base import (
    Body,
    EnvelopeId,
    FileId,
    Username,
    _ClientFrame,
    _ServerFrame,
)

MAX_KEY_PACKAGE_BYTES = 16 * 1024
"""A key package with a post-quantum suite's keys and our RSA-bound credential."""
MAX_KEY_PACKAGES = 100
"""Key packages in one `publish_key_packages`."""
MAX_FETCH_USERS = 100
"""Users in one `fetch_key_packages` (a group is created or grown in batches)."""
MAX_WELCOME_BYTES = L.MAX_BODY_BYTES
"""A Welcome carries the whole ratchet tree; past this size (a few hundred members
on the hybrid suite) the tree will have to travel as an encrypted file."""
MAX_MEMBER_CHANGES = 1000
"""Users one Commit adds or removes (the default members-per-group limit)."""

GroupId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=64)]
Epoch = Annotated[int, msgspec.Meta(ge=0, le=L.MAX_REQUEST_ID)]
DeviceId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]{1,32}$")]
KeyPackageBlob = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_KEY_PACKAGE_BYTES)]
WelcomeBlob = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_WELCOME_BYTES)]
MemberChanges = Annotated[list[Username], msgspec.Meta(max_length=MAX_MEMBER_CHANGES)]

# --- key packages -----------------------------------------------------------------


class PublishKeyPackages(_ClientFrame, tag="publish_key_packages", frozen=True, omit_defaults=True):
    """One-time key packages of one device, and optionally its last-resort package,
    which is handed out when none is left and kept (it replaces the previous one).
    `replace`: these one-time packages take the place of the device's others (a device
    refreshing packages whose lifetime runs out)."""

    device: DeviceId
    key_packages: Annotated[list[KeyPackageBlob], msgspec.Meta(max_length=MAX_KEY_PACKAGES)]
    last_resort: KeyPackageBlob | None = None
    replace: bool = False


class FetchKeyPackages(_ClientFrame, tag="fetch_key_packages", frozen=True):
    """One key package per device of each user; each one-time package is handed out once."""

    users: Annotated[list[Username], msgspec.Meta(min_length=1, max_length=MAX_FETCH_USERS)]


# --- groups ------------------------------------------------------------------------------


class GroupCommit(_ClientFrame, tag="group_commit", frozen=True, omit_defaults=True):
    """A Commit for `epoch`. The relay accepts it only if `epoch` is the group's
    current one (and then counts one more), else answers `group_conflict`. A Commit
    at epoch 0 for a group id the relay does not know creates the group with the
    sender as its first member. The Welcome goes to `added`; `removed` stop
    receiving the group's messages once this Commit is delivered to them."""

    group: GroupId
    epoch: Epoch
    eid: EnvelopeId
    """Chosen by the sender; re-sending the same (sender, eid) is answered as before."""
    commit: Body
    welcome: WelcomeBlob | None = None
    welcome_file: FileId | None = None
    """A Welcome too large to travel inline: the sender's finished upload of it, readable
    by every added user (`file_begin` ... `file_chunk`), in place of `welcome`."""
    added: MemberChanges = msgspec.field(default_factory=list)
    removed: MemberChanges = msgspec.field(default_factory=list)


class GroupSend(_ClientFrame, tag="group_send", frozen=True):
    """One body for every other member (a message or a proposal of `epoch`), stored
    once; answered `accepted`, or `group_conflict` when `epoch` is not current."""

    group: GroupId
    epoch: Epoch
    eid: EnvelopeId
    body: Body


class GroupFetch(_ClientFrame, tag="group_fetch", frozen=True):
    """The group's Commits from epoch `since` on, after a conflict or a gap."""

    group: GroupId
    since: Epoch


GroupClientFrame = PublishKeyPackages | FetchKeyPackages | GroupCommit | GroupSend | GroupFetch

# --- from the relay ------------------------------------------------------------------------


class KeyPackageEntry(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    device: str
    key_package: bytes
    last_resort: bool = False


class KeyPackages(_ServerFrame, tag="key_packages", frozen=True):
    """Answer to `fetch_key_packages`; `missing` users have no device with a package."""

    rid: int
    packages: list[KeyPackageEntry]
    missing: list[str]


class KeyPackagesLow(_ServerFrame, tag="key_packages_low", frozen=True):
    """Push: this device's one-time key packages are running out; publish more."""

    device: str
    remaining: int


class GroupAccepted(_ServerFrame, tag="group_accepted", frozen=True):
    """The Commit is the group's Commit for `epoch`; the group is now at `epoch + 1`."""

    rid: int
    group: bytes
    epoch: int
    eid: str


class GroupConflict(_ServerFrame, tag="group_conflict", frozen=True):
    """The Commit or send named an epoch that is not current: fetch from the epoch
    you hold (`group_fetch`), process, and build the change again."""

    rid: int
    group: bytes
    epoch: int
    """The group's current epoch at the relay."""


class CommitEntry(msgspec.Struct, frozen=True, kw_only=True):
    epoch: int
    sender: str
    commit: bytes


class GroupCommits(_ServerFrame, tag="group_commits", frozen=True):
    """Answer to `group_fetch`: the Commits in epoch order, and the current epoch."""

    rid: int
    group: bytes
    epoch: int
    commits: list[CommitEntry]


DeliveryKind = Literal["commit", "welcome", "message"]


class GroupEnvelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One delivery of a group: a Commit (of `epoch`), a Welcome (into `epoch`) or a
    message (of `epoch`). A member's queue holds a group's Commits before the
    messages of the epoch they start."""

    sid: int
    group: bytes
    kind: DeliveryKind
    epoch: int
    sender: str
    """Stamped by the relay from the authenticated connection."""
    eid: str
    body: bytes
    ts: float
    file: str | None = None
    """A Welcome sent as a file (`group_commit.welcome_file`): fetch it with `file_get`;
    `body` is empty. Left out otherwise."""


class GroupDeliver(_ServerFrame, tag="group_deliver", frozen=True):
    """Group deliveries, oldest first; acknowledged with `ack` like `deliver`."""

    envelopes: list[GroupEnvelope]


GroupServerFrame = (
    KeyPackages | KeyPackagesLow | GroupAccepted | GroupConflict | GroupCommits | GroupDeliver
)

GROUP_REQUEST_TYPES: Final = frozenset(
    cls.__struct_config__.tag
    for cls in (PublishKeyPackages, FetchKeyPackages, GroupCommit, GroupSend, GroupFetch)
)

# --- what the relay reads of a group_send body ---------------------------------------------

_MLS10_PRIVATE_MESSAGE = b"\x00\x01\x00\x02"
"""MLSMessage (RFC 9420 §6): version mls10, then wire format `mls_private_message`."""
_PROPOSAL, _COMMIT = 2, 3
"""A PrivateMessage's `content_type`, after its group id and 8-byte epoch."""


def is_handshake(group: bytes, body: bytes) -> bool:
    """Whether a `group_send` body is a proposal or a Commit of `group`.

    A PrivateMessage leaves its content type in clear (RFC 9420 §6.3, and the
    AEAD authenticates it), so the delivery service can tell a handshake message
    from application data without reading either. The relay withholds a message
    from a member whose queue is full, never a handshake message: a member who
    misses a proposal cannot process the Commit that names it, and loses the group.
    Anything else (another group's message, another wire format, a truncated body)
    is application data. A member can pass a full queue only with what has the
    header of a proposal or a Commit, which the recipient's MLS then opens as one
    and drops unless it is one, as it drops a bogus Commit, which passes it too.
    """
    # `opaque group_id<V>`: 16 to 64 bytes, a one-byte length below 64, else two.
    length = len(group)
    prefix = bytes([length]) if length < 64 else (length | 0x4000).to_bytes(2, "big")
    start = len(_MLS10_PRIVATE_MESSAGE) + len(prefix) + length
    return (
        len(body) > start + 8
        and body.startswith(_MLS10_PRIVATE_MESSAGE)
        and body[len(_MLS10_PRIVATE_MESSAGE) : start] == prefix + group
        and body[start + 8] in (_PROPOSAL, _COMMIT)
    )
