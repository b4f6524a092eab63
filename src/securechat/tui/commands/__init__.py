"""The input line's commands: one class per command (`people`, `groups`, `files`, `general`), the
grammar that reads them (`grammar`), and what a command needs to run (`base.Actions`).

A new command is one frozen dataclass deriving from `Command`, with its word,
arguments, help, palette entries and `run`, listed once in `grammar.COMMANDS`.
"""

from securechat.tui.commands.base import (
    Actions,
    Command,
    PaletteEntry,
    PaletteSource,
    PaletteTarget,
    ParseError,
)
from securechat.tui.commands.files import FILE_LINK, Download, SendFile
from securechat.tui.commands.general import (
    DeleteAccount,
    Help,
    Message,
    Quit,
    Reset,
    Scan,
    Search,
)
from securechat.tui.commands.grammar import (
    BARE_HINT,
    COMMANDS,
    complete,
    hint,
    is_bare_command,
    is_secret,
    list_paths,
    mask,
    parse,
    secret_span,
    suggest,
)
from securechat.tui.commands.groups import (
    Invite,
    Leave,
    MakeAdmin,
    Members,
    NewGroup,
    Remove,
    Rename,
    Topic,
)
from securechat.tui.commands.people import Delete, Open, Reject, ShareKey, Talk, Trust, Verify

__all__ = [
    "BARE_HINT",
    "COMMANDS",
    "FILE_LINK",
    "Actions",
    "Command",
    "Delete",
    "DeleteAccount",
    "Download",
    "Help",
    "Invite",
    "Leave",
    "MakeAdmin",
    "Members",
    "Message",
    "NewGroup",
    "Open",
    "PaletteEntry",
    "PaletteSource",
    "PaletteTarget",
    "ParseError",
    "Quit",
    "Reject",
    "Remove",
    "Rename",
    "Reset",
    "Scan",
    "Search",
    "SendFile",
    "ShareKey",
    "Talk",
    "Topic",
    "Trust",
    "Verify",
    "complete",
    "hint",
    "is_bare_command",
    "is_secret",
    "list_paths",
    "mask",
    "parse",
    "secret_span",
    "suggest",
]
