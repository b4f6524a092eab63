"""Commands about one user: keys, sessions, conversations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from securechat.tui.commands.base import Actions, Command


@dataclass(frozen=True, slots=True)
class ShareKey(Command):
    name: ClassVar[str] = "sharekey"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "send your identity key to a user"
    bare: ClassVar[bool] = True
    palette_title: ClassVar[str] = "Share key with…"
    palette_help: ClassVar[str] = "send your identity key to a user"
    per_peer: ClassVar[tuple[str, str] | None] = ("Share key with {peer}", "send your key")
    user: str

    def run(self, actions: Actions) -> object:
        return actions.sharekey(self.user)


@dataclass(frozen=True, slots=True)
class Talk(Command):
    name: ClassVar[str] = "talk"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "start an end-to-end session with a user"
    bare: ClassVar[bool] = True
    palette_title: ClassVar[str] = "Talk to…"
    palette_help: ClassVar[str] = "start an end-to-end session with a user"
    per_peer: ClassVar[tuple[str, str] | None] = ("Talk to {peer}", "start an end-to-end session")
    user: str

    def run(self, actions: Actions) -> object:
        return actions.talk(self.user)


@dataclass(frozen=True, slots=True)
class Open(Command):
    name: ClassVar[str] = "open"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "show the conversation with a user"
    per_peer: ClassVar[tuple[str, str] | None] = (
        "Open {peer}",
        "show the conversation with {peer}",
    )
    user: str

    def run(self, actions: Actions) -> object:
        return actions.open_conversation(self.user)


@dataclass(frozen=True, slots=True)
class Verify(Command):
    name: ClassVar[str] = "verify"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "show the safety number to compare with a user"
    per_peer: ClassVar[tuple[str, str] | None] = ("Verify {peer}", "show the safety number")
    user: str

    def run(self, actions: Actions) -> object:
        return actions.verify(self.user)


@dataclass(frozen=True, slots=True)
class Trust(Command):
    name: ClassVar[str] = "trust"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "accept a user's new key after verifying it"
    per_peer: ClassVar[tuple[str, str] | None] = ("Trust {peer}", "accept a changed key")
    user: str

    def run(self, actions: Actions) -> object:
        return actions.trust(self.user)


@dataclass(frozen=True, slots=True)
class Reject(Command):
    name: ClassVar[str] = "reject"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "keep a user's pinned key and reject the new one offered"
    per_peer: ClassVar[tuple[str, str] | None] = ("Reject {peer}'s new key", "keep the pinned key")
    user: str

    def run(self, actions: Actions) -> object:
        return actions.reject(self.user)


@dataclass(frozen=True, slots=True)
class Delete(Command):
    name: ClassVar[str] = "delete"
    args: ClassVar[tuple[str, ...]] = ("user",)
    summary: ClassVar[str] = "delete a conversation here and on the relay"
    per_peer: ClassVar[tuple[str, str] | None] = (
        "Delete conversation with {peer}",
        "after confirming",
    )
    user: str

    def run(self, actions: Actions) -> object:
        return actions.delete_conversation(self.user)
