"""Commands about group conversations: creating one, and changing the open one.

All but `/group new` act on the group that is open, as Signal's and Element's
group settings do: a group has no name the user could type unambiguously (two
groups may share one), so the open conversation is the one meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from securechat.tui.commands.base import Actions, Command


@dataclass(frozen=True, slots=True)
class NewGroup(Command):
    name: ClassVar[str] = "group"
    verb: ClassVar[str] = "new"
    args: ClassVar[tuple[str, ...]] = ("name", "user")
    repeat: ClassVar[bool] = True
    summary: ClassVar[str] = "create an encrypted group (a one-word name) with these users"
    palette_title: ClassVar[str] = "New group…"
    palette_help: ClassVar[str] = "create an encrypted group with some of your contacts"
    group_name: str
    users: tuple[str, ...]

    @classmethod
    def build(cls, args: list[str], flags: set[str]) -> NewGroup:
        return cls(args[0], tuple(dict.fromkeys(args[1:])))

    def run(self, actions: Actions) -> object:
        return actions.new_group(self.group_name, self.users)


@dataclass(frozen=True, slots=True)
class Invite(Command):
    name: ClassVar[str] = "invite"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "add a user to the open group (admins)"
    palette_title: ClassVar[str] = "Invite to this group…"
    palette_help: ClassVar[str] = "add a user to the open group"
    user: str

    def run(self, actions: Actions) -> object:
        return actions.invite(self.user)


@dataclass(frozen=True, slots=True)
class Remove(Command):
    name: ClassVar[str] = "remove"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "remove a member from the open group (admins)"
    palette_title: ClassVar[str] = "Remove from this group…"
    palette_help: ClassVar[str] = "remove a member from the open group"
    user: str

    def run(self, actions: Actions) -> object:
        return actions.remove_member(self.user)


@dataclass(frozen=True, slots=True)
class MakeAdmin(Command):
    name: ClassVar[str] = "admin"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "make a member of the open group an admin too (admins)"
    palette_title: ClassVar[str] = "Make an admin of this group…"
    palette_help: ClassVar[str] = "admins add and remove members"
    user: str

    def run(self, actions: Actions) -> object:
        return actions.make_admin(self.user)


@dataclass(frozen=True, slots=True)
class Leave(Command):
    name: ClassVar[str] = "leave"
    summary: ClassVar[str] = "leave the open group"
    palette_title: ClassVar[str] = "Leave this group"
    palette_help: ClassVar[str] = "after confirming; the history here stays"

    def run(self, actions: Actions) -> object:
        return actions.leave_group()


@dataclass(frozen=True, slots=True)
class Members(Command):
    name: ClassVar[str] = "members"
    summary: ClassVar[str] = "list the open group's members, their fingerprints and ✓ if verified"
    palette_title: ClassVar[str] = "Members of this group"
    palette_help: ClassVar[str] = "fingerprints, ✓ verified, admins"

    def run(self, actions: Actions) -> object:
        return actions.list_members()


@dataclass(frozen=True, slots=True)
class Rename(Command):
    name: ClassVar[str] = "rename"
    args: ClassVar[tuple[str, ...]] = ("name",)
    summary: ClassVar[str] = "rename the open group"
    rest: ClassVar[bool] = True
    palette_title: ClassVar[str] = "Rename this group…"
    palette_help: ClassVar[str] = "a new name every member sees"
    group_name: str

    def run(self, actions: Actions) -> object:
        return actions.rename_group(self.group_name)


@dataclass(frozen=True, slots=True)
class Topic(Command):
    name: ClassVar[str] = "topic"
    args: ClassVar[tuple[str, ...]] = ("text",)
    summary: ClassVar[str] = "set the open group's topic"
    rest: ClassVar[bool] = True
    palette_title: ClassVar[str] = "Set this group's topic…"
    palette_help: ClassVar[str] = "a line every member sees under the name"
    text: str

    def run(self, actions: Actions) -> object:
        return actions.set_topic(self.text)
