"""What the input line means: text in, a `Command` or a `ParseError` out.

Pure and Textual-free, so every rule (which lines are commands, how many
arguments each takes, what to say when they are wrong, how to complete and
mask them) is tested on its own. It knows no command by name but `reset`
(its token and password have a shape of their own): every other rule reads
the command classes in `COMMANDS`.

Commands start with `/` (`/talk bob`), as in every terminal chat client, so
a sentence that happens to start with a command word ("search for it") is a
message. The three commands of the first release keep working without the
slash, but only when the whole line has their exact shape (`talk <user>`,
`sharekey <user>`, `reset <user> <token> <password>`), and `hint` says so
before Enter. A leading space sends any line as text, and `//` sends a line
that starts with `/`. With a slash, an unknown word is an error rather than
a message, so `/tlak` is never sent to anyone.

Path completion for `send` is the one place that reads the file system; it
takes the directory lister as an argument so tests can give it a fake one.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable

from securechat.protocol.limits import USERNAME_PATTERN
from securechat.tui.commands.base import Command, ParseError
from securechat.tui.commands.files import Download, SendFile
from securechat.tui.commands.general import DeleteAccount, Help, Message, Quit, Reset, Scan, Search
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

COMMANDS: dict[str, type[Command]] = {
    c.name: c
    for c in (
        ShareKey,
        Talk,
        Open,
        Verify,
        Trust,
        Reject,
        Search,
        SendFile,
        Download,
        Scan,
        Delete,
        NewGroup,
        Invite,
        Remove,
        MakeAdmin,
        Leave,
        Members,
        Rename,
        Topic,
        DeleteAccount,
        Reset,
        Help,
        Quit,
    )
}
"""Every command, in the order help and completion list them."""

_USERNAME = re.compile(USERNAME_PATTERN)
_RESET_TOKEN = re.compile(r"^(op-\S{8,}|(?:[0-9A-Za-z]-?){23}[0-9A-Za-z])$")
"""An operator token or a recovery code (24 characters, dashes optional): a bare
`reset` line runs only with one, so "reset my password please" stays a message."""
BARE_HINT = "runs the command; start with a space to send it as text"
USER_ARGUMENT_COMMANDS = frozenset(n for n, c in COMMANDS.items() if c.args == ("user",))


def parse(text: str) -> Command:
    """Turns one submitted line into a command; raises ParseError with a usable sentence."""
    stripped = text.strip()
    if not stripped:
        raise ParseError("type a message, or `/help` for the commands")
    if text[0].isspace() or stripped.startswith("//"):
        return Message(stripped.removeprefix("/") if stripped.startswith("//") else stripped)
    if stripped.startswith("/"):
        return _command(stripped[1:])
    if is_bare_command(stripped):
        return _command(stripped)
    return Message(stripped)


def is_bare_command(text: str) -> bool:
    """A line without the slash that still runs: a `bare` command in exactly its shape."""
    if text[:1].isspace():
        return False
    words = text.split()
    command = COMMANDS.get(words[0]) if words else None
    if command is None or not command.bare:
        return False
    if command is Reset:
        return (
            len(words) >= 4
            and _USERNAME.match(words[1]) is not None
            and _RESET_TOKEN.match(words[2]) is not None
        )
    return len(words) == 2 and _USERNAME.match(words[1]) is not None


def hint(text: str) -> str | None:
    """What Enter will do with `text`, said before it is pressed, when that may surprise.

    A bare command runs (the user may have meant a sentence); a line that would
    be a command with a slash is sent as a message (the user may have meant the
    command); a slash command shows its usage while it is typed.
    """
    stripped = text.strip()
    if not stripped or text[0].isspace() or stripped.startswith("//"):
        return None
    if stripped.startswith("/"):
        command = COMMANDS.get(stripped[1:].split(" ", 1)[0].lower())
        return f"{command.usage()} — {command.summary}" if command is not None else None
    if is_bare_command(stripped):
        return BARE_HINT
    try:
        _command(stripped)
    except ParseError:
        return None
    # Names the command, not the line: it may hold a password (`reset … <password>`).
    return f"sent as a message; start with `/{stripped.split()[0].lower()}` to run the command"


def _command(line: str) -> Command:
    """The command on a line whose slash, if any, is already gone."""
    word, _, rest = line.partition(" ")
    name = word.lower()
    command = COMMANDS.get(name)
    if command is None:
        raise ParseError(f"unknown command `/{word}`.{_did_you_mean(name)} Type `/help`.")
    args = _split(command, rest.strip())
    if command.verb and (not args or args.pop(0).lower() != command.verb):
        raise ParseError(f"`/{name}` needs `{command.verb}`. Usage: {command.usage()}")
    flags: set[str] = set()
    while command.flags and args and args[0].startswith("--"):
        flag = args.pop(0).lower()
        if flag not in command.flags:
            raise ParseError(f"`/{name}` has no option `{flag}`. Usage: {command.usage()}")
        flags.add(flag)
    if len(args) != len(command.args) and not (command.repeat and len(args) > len(command.args)):
        raise ParseError(_arity_message(command, len(args)))
    names = command.args + command.args[-1:] * (len(args) - len(command.args))
    for arg_name, value in zip(names, args, strict=True):
        if arg_name == "user" and not _USERNAME.match(value):
            raise ParseError(
                f"`{value}` is not a username: 3 to 32 of a-z, 0-9, `_`, `.` and `-`. "
                f"Usage: {command.usage()}"
            )
    return command.build(args, flags)


def _split(command: type[Command], rest: str) -> list[str]:
    if not rest:
        return []
    if command.rest:
        return rest.split(maxsplit=len(command.args) - 1)
    return rest.split()


def _arity_message(command: type[Command], given: int) -> str:
    if not command.args:
        return f"`/{command.name}` takes no arguments. Start with a space to send it as text."
    missing = command.args[given:] if given < len(command.args) else ()
    if missing:
        what = "missing " + ", ".join(f"<{m}>" for m in missing)
    else:
        what = f"too many arguments ({given} given)"
    return f"{what}. Usage: {command.usage()} — {command.summary}"


def _did_you_mean(word: str) -> str:
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    return f" Did you mean `/{close[0]}`?" if close else ""


def suggest(word: str) -> str | None:
    """The command a mistyped first word probably meant, if any."""
    close = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.75)
    return close[0] if close else None


# --- secrets on the input line -----------------------------------------------------


def secret_span(text: str) -> tuple[int, int] | None:
    """Where the password of a `reset` line sits, so the input can mask it as it is typed.

    Everything from the start of the third argument to the end of the line is
    secret: a password may contain spaces, and masking too much is harmless. A
    line sent as text (leading space, a bare `reset` without a token) is shown
    as it will be sent.
    """
    match = re.match(r"^(/?)reset\s+\S+\s+(\S+)\s", text, re.IGNORECASE)
    if match is None:
        return None
    if not match.group(1) and not (text.startswith("reset") and _RESET_TOKEN.match(match[2])):
        return None
    return match.end(), len(text)


def is_secret(text: str) -> bool:
    """Lines that must never be kept in the input history."""
    return re.match(r"^\s*/?reset(\s|$)", text, re.IGNORECASE) is not None


def mask(text: str, bullet: str = "•") -> str:
    """The line as it is shown: the secret span replaced one-for-one, so the cursor still fits."""
    span = secret_span(text)
    if span is None:
        return text
    start, end = span
    return text[:start] + bullet * (end - start) + text[end:]


# --- completion --------------------------------------------------------------------


PathLister = Callable[[str], list[str]]


def complete(text: str, usernames: list[str], list_paths: PathLister | None = None) -> list[str]:
    """Whole-line completions for `text`: command words, usernames (the members of a new
    group too), and paths for `send`."""
    if " " not in text.lstrip():
        word = text.strip().removeprefix("/").lower()
        return [f"/{name} " for name in COMMANDS if name.startswith(word) and word != name]
    head, _, partial = text.rpartition(" ")
    words = head.split()
    name = words[0].removeprefix("/").lower() if words else ""
    wants_user = len(words) == 1 and (name in USER_ARGUMENT_COMMANDS or name == Reset.name)
    if wants_user or (name == NewGroup.name and len(words) >= 3):
        return [f"{head} {user}" for user in sorted(usernames) if user.startswith(partial)]
    word, _, path = text.lstrip().partition(" ")
    if word.removeprefix("/").lower() == SendFile.name and list_paths is not None:
        prefix = text[: len(text) - len(path)]
        return [prefix + candidate for candidate in list_paths(path)]
    return []


def list_paths(partial: str) -> list[str]:
    """Entries of the directory `partial` points into that start with its last part.

    `~` stays as typed; directories end with `/` so Tab can go on into them.
    Hidden entries appear only once their leading dot is typed.
    """
    directory, _, stem = partial.rpartition("/")
    base = os.path.expanduser(directory + "/" if directory else ".")
    if partial.startswith("/") and not directory:
        base = "/"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    shown = f"{directory}/" if directory or partial.startswith("/") else ""
    out = []
    for name in names:
        if not name.startswith(stem) or (name.startswith(".") and not stem.startswith(".")):
            continue
        is_dir = os.path.isdir(os.path.join(base, name))
        out.append(shown + name + ("/" if is_dir else ""))
    return out
