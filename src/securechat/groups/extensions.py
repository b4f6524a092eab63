"""The two GroupContext extensions securechat groups carry: who administers the
group, and its name and topic (RFC 9420 §13 extensions, private-use type values).

Both live in the GroupContext rather than in application messages because every
member must agree on them epoch by epoch: the key schedule mixes the context in,
so a member with another admin list or name derives other keys and falls out at
once, a joiner receives them in the Welcome's GroupInfo, and a change is a
Commit, ordered like every other. Our groups send every handshake message as a
PrivateMessage and keep the GroupInfo inside the Welcome, so the relay sees
neither extension.

    struct {
        uint16 version = 1;
        opaque admins<V>;            // a vector of opaque username<V>, sorted, distinct
    } GroupPolicy;                   // extension type GROUP_POLICY

    struct {
        uint16 version = 1;
        opaque name<V>;              // UTF-8, 1..MAX_NAME_CHARS characters
        opaque topic<V>;             // UTF-8, 0..MAX_TOPIC_CHARS characters
    } GroupMetadata;                 // extension type GROUP_METADATA

Admins are usernames, not leaves: a user's every device acts for them, and a
leaf index is reused once its member leaves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from securechat.crypto.mls.codec import Reader, decode, opaque, uint16, vector
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.group_context import Extension
from securechat.crypto.mls.validation import RequiredCapabilities, find_extension
from securechat.groups.errors import InvalidGroupData
from securechat.protocol.limits import USERNAME_PATTERN

GROUP_POLICY = 0xF5C0
GROUP_METADATA = 0xF5C1
"""Private-use extension types (RFC 9420 §17.3 reserves 0xF000-0xFFFF)."""
EXTENSION_VERSION = 1
MAX_NAME_CHARS = 64
MAX_TOPIC_CHARS = 512

_USERNAME = re.compile(USERNAME_PATTERN)


def _version(r: Reader, what: str) -> None:
    version = r.uint16()
    if version != EXTENSION_VERSION:
        raise InvalidGroupData(f"{what} version {version} is not one we read.")


@dataclass(frozen=True)
class GroupPolicy:
    """Admins add and remove members and change the admin list; anyone may leave,
    update their own leaf, or rename the group (see groups/policy.py)."""

    admins: frozenset[str]

    def __post_init__(self) -> None:
        bad = [a for a in self.admins if not _USERNAME.match(a)]
        if bad:
            raise InvalidGroupData(f"{bad[0]!r} is not a username an admin list can hold.")

    def encode(self) -> bytes:
        return uint16(EXTENSION_VERSION) + vector(opaque(a.encode()) for a in sorted(self.admins))

    @classmethod
    def read(cls, r: Reader) -> Self:
        _version(r, "Group policy")
        names = [n.decode("utf-8") for n in r.vector(Reader.opaque)]
        if names != sorted(set(names)):
            raise InvalidGroupData("A group policy lists its admins sorted and once each.")
        return cls(frozenset(names))

    def extension(self) -> Extension:
        return Extension(GROUP_POLICY, self.encode())


@dataclass(frozen=True)
class GroupMetadata:
    name: str
    topic: str = ""

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= MAX_NAME_CHARS or not self.name.isprintable():
            raise InvalidGroupData(f"A group name has 1 to {MAX_NAME_CHARS} printable characters.")
        if len(self.topic) > MAX_TOPIC_CHARS or not self.topic.isprintable():
            raise InvalidGroupData(
                f"A group topic has at most {MAX_TOPIC_CHARS} printable characters."
            )

    def encode(self) -> bytes:
        return uint16(EXTENSION_VERSION) + opaque(self.name.encode()) + opaque(self.topic.encode())

    @classmethod
    def read(cls, r: Reader) -> Self:
        _version(r, "Group metadata")
        return cls(r.opaque().decode("utf-8"), r.opaque().decode("utf-8"))

    def extension(self) -> Extension:
        return Extension(GROUP_METADATA, self.encode())


def policy_of(extensions: tuple[Extension, ...]) -> GroupPolicy:
    """The group's policy; a securechat group without one is refused, not defaulted."""
    data = find_extension(extensions, GROUP_POLICY)
    if data is None:
        raise InvalidGroupData("The group carries no policy extension.")
    try:
        return decode(data, GroupPolicy.read)
    except (MLSError, UnicodeDecodeError):
        raise InvalidGroupData("The group's policy extension does not decode.") from None


def metadata_of(extensions: tuple[Extension, ...]) -> GroupMetadata:
    data = find_extension(extensions, GROUP_METADATA)
    if data is None:
        raise InvalidGroupData("The group carries no metadata extension.")
    try:
        return decode(data, GroupMetadata.read)
    except (MLSError, UnicodeDecodeError):
        raise InvalidGroupData("The group's metadata extension does not decode.") from None


def group_extensions(policy: GroupPolicy, metadata: GroupMetadata) -> tuple[Extension, ...]:
    """A group's context extensions: both of ours, and required_capabilities naming
    them, so MLS itself refuses a member whose client could not enforce the policy."""
    required = RequiredCapabilities(extension_types=(GROUP_POLICY, GROUP_METADATA))
    return (required.extension(), policy.extension(), metadata.extension())


LEAF_EXTENSION_TYPES = (GROUP_POLICY, GROUP_METADATA)
"""What a securechat leaf lists in its capabilities."""
