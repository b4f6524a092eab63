"""Commands about files: sending one, saving a received one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from securechat.tui.commands.base import Actions, Command, ParseError

FILE_LINK = "securechat://file/"
"""How a received file is shown in the chat; `download` accepts the link as typed."""
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True, slots=True)
class SendFile(Command):
    name: ClassVar[str] = "send"
    args: ClassVar[tuple[str, ...]] = ("path",)
    summary: ClassVar[str] = "send a file (up to 25 MB) to the open conversation"
    rest: ClassVar[bool] = True
    palette_title: ClassVar[str] = "Send a file…"
    palette_help: ClassVar[str] = "send a file to the open conversation"
    path: str

    @classmethod
    def build(cls, args: list[str], flags: set[str]) -> SendFile:
        """Terminals quote a dropped file's path; the quotes are not part of the name."""
        path = args[0]
        if len(path) >= 2 and path[0] == path[-1] and path[0] in "'\"":
            path = path[1:-1]
        return cls(path)

    def run(self, actions: Actions) -> object:
        return actions.send_file(self.path)


@dataclass(frozen=True, slots=True)
class Download(Command):
    """A file in the open conversation: by the number shown next to it, or by its id."""

    name: ClassVar[str] = "download"
    args: ClassVar[tuple[str, ...]] = ("n",)
    summary: ClassVar[str] = "save a received file: its number [n] in the chat, or its id"
    palette_title: ClassVar[str] = "Download a file…"
    palette_help: ClassVar[str] = "save a received file by its number"
    number: int | None = None
    file_id: str = ""

    @classmethod
    def build(cls, args: list[str], flags: set[str]) -> Download:
        arg = args[0]
        if arg.isdigit():
            if int(arg) < 1:
                raise ParseError(
                    "files are numbered from 1: type the number shown next to the file"
                )
            return cls(number=int(arg))
        file_id = arg.removeprefix(FILE_LINK)
        if not _FILE_ID.match(file_id):
            raise ParseError(
                f"`{arg}` is not a file number or id: type the number shown next to the file, "
                "like `/download 1`"
            )
        return cls(file_id=file_id)

    @classmethod
    def for_file(cls, number: int, name: str) -> tuple[str, str, Command | str]:
        """The palette entry for one received file in the open conversation."""
        title = f"Download [{number}] {name}"
        return (title, "save this file from the open conversation", cls(number))

    def run(self, actions: Actions) -> object:
        return actions.download(self.number, self.file_id)
