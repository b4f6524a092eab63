"""What a command is: a word, its arguments, its help, its palette entries, and what it does.

A command is one frozen dataclass carrying all of that, so a new command is
written in one place (its module) and listed once (`registry.COMMANDS`). The
grammar (`grammar.py`) reads the class attributes to parse, explain, complete
and mask; the main screen runs a parsed command by handing it the `Actions` it
needs; the palette asks each class for its entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol, Self, TypeAlias, runtime_checkable


class ParseError(ValueError):
    """The text was meant as a command but cannot run; str() says how to fix it."""


class Actions(Protocol):
    """What commands do on the main screen: each method starts one command's work."""

    def message(self, text: str) -> object: ...
    def sharekey(self, user: str) -> object: ...
    def talk(self, user: str) -> object: ...
    def open_conversation(self, user: str) -> object: ...
    def verify(self, user: str) -> object: ...
    def trust(self, user: str) -> object: ...
    def reject(self, user: str) -> object: ...
    def send_file(self, path: str) -> object: ...
    def download(self, number: int | None, file_id: str) -> object: ...
    def scan(self, url: str, full: bool) -> object: ...
    def search(self, query: str) -> object: ...
    def delete_conversation(self, user: str) -> object: ...
    def delete_account(self) -> object: ...
    def reset(self, user: str, token: str, new_password: str) -> object: ...
    def new_group(self, name: str, users: tuple[str, ...]) -> object: ...
    def invite(self, user: str) -> object: ...
    def remove_member(self, user: str) -> object: ...
    def make_admin(self, user: str) -> object: ...
    def leave_group(self) -> object: ...
    def list_members(self) -> object: ...
    def rename_group(self, name: str) -> object: ...
    def set_topic(self, text: str) -> object: ...
    def help(self) -> object: ...
    def quit(self) -> object: ...


class Command:
    """A typed command; subclasses are frozen dataclasses whose fields are its arguments."""

    name: ClassVar[str] = ""
    args: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    verb: ClassVar[str] = ""
    """A fixed word after the name (`/group new`): typed, checked, and not an argument."""
    rest: ClassVar[bool] = False
    """The last argument takes the rest of the line (search text, a path with spaces)."""
    repeat: ClassVar[bool] = False
    """The last argument may be given more than once (`/group new <name> <user> [<user>...]`)."""
    flags: ClassVar[tuple[str, ...]] = ()
    """Optional `--words` allowed before the arguments."""
    bare: ClassVar[bool] = False
    """Also runs without the slash when the line has exactly its shape (the seed's three)."""
    palette_title: ClassVar[str] = ""
    """The palette entry that starts this command (prefilled when it needs arguments)."""
    palette_help: ClassVar[str] = ""
    per_peer: ClassVar[tuple[str, str] | None] = None
    """(title with {peer}, help): the palette entry that runs it for each conversation."""

    @classmethod
    def usage(cls) -> str:
        words = [f"/{cls.name}", *([cls.verb] if cls.verb else []), *(f"[{f}]" for f in cls.flags)]
        words += [f"<{a}>" for a in cls.args]
        if cls.repeat:
            words.append(f"[<{cls.args[-1]}>...]")
        return " ".join(words)

    @classmethod
    def bare_usage(cls) -> str | None:
        """The form without the slash, for the commands that keep one."""
        return cls.usage().removeprefix("/") if cls.bare else None

    @classmethod
    def build(cls, args: list[str], flags: set[str]) -> Self:
        """The command from its checked arguments; commands with more to check override it."""
        return cls(*args)

    @classmethod
    def palette(cls, peers: list[str]) -> list[tuple[str, str, Command | str]]:
        out: list[tuple[str, str, Command | str]] = []
        if cls.palette_title:
            typed = " ".join([f"/{cls.name}", *([cls.verb] if cls.verb else [])]) + " "
            target: Command | str = typed if cls.args else cls.build([], set())
            out.append((cls.palette_title, cls.palette_help, target))
        if cls.per_peer is not None:
            title, help = cls.per_peer
            out += [
                (title.format(peer=p), help.format(peer=p), cls.build([p], set())) for p in peers
            ]
        return out

    def run(self, actions: Actions) -> object:
        raise NotImplementedError


PaletteTarget: TypeAlias = Command | str | Callable[[], None]
"""A command to run, text to put on the input line, or an action such as a setting flip."""
PaletteEntry: TypeAlias = tuple[str, str, PaletteTarget]
"""(title, help, target)."""


@runtime_checkable
class PaletteSource(Protocol):
    """A screen that offers palette entries and can run them (the main screen)."""

    def palette_entries(self) -> list[PaletteEntry]: ...
    def prefill(self, text: str) -> None: ...
    def run_command(self, command: Command) -> None: ...
