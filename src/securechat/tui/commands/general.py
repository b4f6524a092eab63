"""Commands about the account and the app: search, links, reset, help, quit; and messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from securechat.tui.commands.base import Actions, Command


@dataclass(frozen=True, slots=True)
class Message(Command):
    """A line that is not a command: text for the open conversation."""

    text: str

    def run(self, actions: Actions) -> object:
        return actions.message(self.text)


@dataclass(frozen=True, slots=True)
class Search(Command):
    name: ClassVar[str] = "search"
    args: ClassVar[tuple[str, ...]] = ("text",)
    summary: ClassVar[str] = "search all conversations on this device"
    rest: ClassVar[bool] = True
    palette_title: ClassVar[str] = "Search history…"
    palette_help: ClassVar[str] = "search every conversation on this device"
    query: str

    def run(self, actions: Actions) -> object:
        return actions.search(self.query)


@dataclass(frozen=True, slots=True)
class Scan(Command):
    name: ClassVar[str] = "scan"
    args: ClassVar[tuple[str, ...]] = ("url",)
    summary: ClassVar[str] = "check a link; --full also asks VirusTotal and OTX through the relay"
    flags: ClassVar[tuple[str, ...]] = ("--full",)
    palette_title: ClassVar[str] = "Check a link…"
    palette_help: ClassVar[str] = "what the link check says about a URL"
    url: str
    full: bool = False

    @classmethod
    def build(cls, args: list[str], flags: set[str]) -> Scan:
        return cls(args[0], full="--full" in flags)

    def run(self, actions: Actions) -> object:
        return actions.scan(self.url, self.full)


@dataclass(frozen=True, slots=True)
class DeleteAccount(Command):
    name: ClassVar[str] = "delete-account"
    summary: ClassVar[str] = "delete your account and this device's vault"
    palette_title: ClassVar[str] = "Delete account"
    palette_help: ClassVar[str] = "delete your account and this vault"

    def run(self, actions: Actions) -> object:
        return actions.delete_account()


@dataclass(frozen=True, slots=True)
class Reset(Command):
    name: ClassVar[str] = "reset"
    args: ClassVar[tuple[str, ...]] = ("user", "token", "new_password")
    summary: ClassVar[str] = "reset a password with a recovery code or operator token"
    rest: ClassVar[bool] = True
    bare: ClassVar[bool] = True
    user: str
    token: str
    new_password: str

    def __repr__(self) -> str:
        """Keeps the password out of logs and tracebacks."""
        return f"Reset(user={self.user!r}, token=…, new_password=…)"

    def run(self, actions: Actions) -> object:
        return actions.reset(self.user, self.token, self.new_password)


@dataclass(frozen=True, slots=True)
class Help(Command):
    name: ClassVar[str] = "help"
    summary: ClassVar[str] = "list commands and keys"
    palette_title: ClassVar[str] = "Help"
    palette_help: ClassVar[str] = "list commands and keys"

    def run(self, actions: Actions) -> object:
        return actions.help()


@dataclass(frozen=True, slots=True)
class Quit(Command):
    name: ClassVar[str] = "quit"
    summary: ClassVar[str] = "leave securechat"
    palette_title: ClassVar[str] = "Quit"
    palette_help: ClassVar[str] = "leave securechat"

    def run(self, actions: Actions) -> object:
        return actions.quit()
