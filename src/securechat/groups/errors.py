"""Errors raised by securechat.groups (group conversations on MLS).

    GroupError                  base: securechat.errors.SecureChatError
    ├── InvalidCredential       a member credential that is not a valid identity binding
    ├── PolicyViolation         a Commit or proposal the group's policy does not allow
    ├── InvalidGroupData        group extension or payload bytes that do not decode
    └── GroupBusy               an operation that must wait (a Commit is pending, sending
                                is blocked by an unresolved key change)

MLS failures keep their own types (securechat.crypto.mls.errors); these are the
rules securechat adds on top. Every message is a sentence the UI can show.
"""

from __future__ import annotations

from securechat.errors import SecureChatError


class GroupError(SecureChatError):
    """Base of every failure raised by securechat.groups."""


class InvalidCredential(GroupError):
    """The credential does not bind its MLS signature key to an identity key."""


class PolicyViolation(GroupError):
    """The group's policy forbids what a Commit or proposal does."""


class InvalidGroupData(GroupError):
    """A group context extension or group payload that does not decode."""


class GroupBusy(GroupError):
    """The group cannot do this now; the message says what it waits for."""
