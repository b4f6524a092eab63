"""What the input line means: text in, a `Command` or a `ParseError` out.

Pure and Textual-free, so every rule (which lines are commands, how many
arguments each takes, what to say when they are wrong, how to complete and
mask them) is tested on its own.

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
from dataclasses import dataclass

from securechat.protocol.limits import USERNAME_PATTERN

_USERNAME = re.compile(USERNAME_PATTERN)
FILE_LINK = "securechat://file/"
"""How a received file is shown in the chat; `download` accepts the link as typed."""
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_RESET_TOKEN = re.compile(r"^(op-\S{8,}|(?:[0-9A-Za-z]-?){23}[0-9A-Za-z])$")
"""An operator token or a recovery code (24 characters, dashes optional): a bare
`reset` line runs only with one, so "reset my password please" stays a message."""
BARE_COMMANDS = ("sharekey", "talk", "reset")
"""The commands that also run without the slash, when the line has exactly their shape."""
BARE_HINT = "runs the command; start with a space to send it as text"


class ParseError(ValueError):
    """The text was meant as a command but cannot run; str() says how to fix it."""


@dataclass(frozen=True, slots=True)
class Message:
    text: str


@dataclass(frozen=True, slots=True)
class ShareKey:
    user: str


@dataclass(frozen=True, slots=True)
class Talk:
    user: str


@dataclass(frozen=True, slots=True)
class Open:
    user: str


@dataclass(frozen=True, slots=True)
class Reset:
    user: str
    token: str
    new_password: str

    def __repr__(self) -> str:
        """Keeps the password out of logs and tracebacks."""
        return f"Reset(user={self.user!r}, token=…, new_password=…)"


@dataclass(frozen=True, slots=True)
class Verify:
    user: str


@dataclass(frozen=True, slots=True)
class Trust:
    user: str


@dataclass(frozen=True, slots=True)
class Reject:
    user: str


@dataclass(frozen=True, slots=True)
class SendFile:
    path: str


@dataclass(frozen=True, slots=True)
class Download:
    """A file in the open conversation: by the number shown next to it, or by its id."""

    number: int | None = None
    file_id: str = ""


@dataclass(frozen=True, slots=True)
class Scan:
    url: str
    full: bool = False


@dataclass(frozen=True, slots=True)
class Search:
    query: str


@dataclass(frozen=True, slots=True)
class Delete:
    user: str


@dataclass(frozen=True, slots=True)
class DeleteAccount:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


Command = (
    Message
    | ShareKey
    | Talk
    | Open
    | Reset
    | Verify
    | Trust
    | Reject
    | SendFile
    | Download
    | Scan
    | Search
    | Delete
    | DeleteAccount
    | Help
    | Quit
)


@dataclass(frozen=True, slots=True)
class Spec:
    """One command word: its arguments (for usage lines and completion) and what it does."""

    name: str
    args: tuple[str, ...]
    summary: str
    rest: bool = False
    """The last argument takes the rest of the line (search text, a path with spaces)."""
    flags: tuple[str, ...] = ()
    """Optional `--words` allowed before the arguments."""

    @property
    def usage(self) -> str:
        return " ".join(
            [f"/{self.name}", *(f"[{f}]" for f in self.flags), *(f"<{a}>" for a in self.args)]
        )

    @property
    def bare_usage(self) -> str | None:
        """The form without the slash, for the commands that keep one."""
        return self.usage.removeprefix("/") if self.name in BARE_COMMANDS else None


SPECS: dict[str, Spec] = {
    s.name: s
    for s in [
        Spec("sharekey", ("user",), "send your identity key to a user"),
        Spec("talk", ("user",), "start an end-to-end session with a user"),
        Spec("open", ("user",), "show the conversation with a user"),
        Spec("verify", ("user",), "show the safety number to compare with a user"),
        Spec("trust", ("user",), "accept a user's new key after verifying it"),
        Spec("reject", ("user",), "keep a user's pinned key and reject the new one offered"),
        Spec("search", ("text",), "search all conversations on this device", rest=True),
        Spec("send", ("path",), "send a file (up to 25 MB) to the open conversation", rest=True),
        Spec("download", ("n",), "save a received file: its number [n] in the chat, or its id"),
        Spec(
            "scan",
            ("url",),
            "check a link; --full also asks VirusTotal and OTX through the relay",
            flags=("--full",),
        ),
        Spec("delete", ("user",), "delete a conversation here and on the relay"),
        Spec("delete-account", (), "delete your account and this device's vault"),
        Spec(
            "reset",
            ("user", "token", "new_password"),
            "reset a password with a recovery code or operator token",
            rest=True,
        ),
        Spec("help", (), "list commands and keys"),
        Spec("quit", (), "leave securechat"),
    ]
}

USER_ARGUMENT_COMMANDS = frozenset(n for n, s in SPECS.items() if s.args == ("user",))


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
    """A line without the slash that still runs: one of `BARE_COMMANDS` in exactly its shape."""
    if text[:1].isspace():
        return False
    words = text.split()
    if not words or words[0] not in BARE_COMMANDS:
        return False
    if words[0] == "reset":
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
        spec = SPECS.get(stripped[1:].split(" ", 1)[0].lower())
        return f"{spec.usage} — {spec.summary}" if spec is not None else None
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
    spec = SPECS.get(name)
    if spec is None:
        raise ParseError(f"unknown command `/{word}`.{_did_you_mean(name)} Type `/help`.")
    args = _split(spec, rest.strip())
    flags: set[str] = set()
    while spec.flags and args and args[0].startswith("--"):
        flag = args.pop(0).lower()
        if flag not in spec.flags:
            raise ParseError(f"`/{name}` has no option `{flag}`. Usage: {spec.usage}")
        flags.add(flag)
    if len(args) != len(spec.args):
        raise ParseError(_arity_message(spec, len(args)))
    for arg_name, value in zip(spec.args, args, strict=True):
        if arg_name == "user" and not _USERNAME.match(value):
            raise ParseError(
                f"`{value}` is not a username: 3 to 32 of a-z, 0-9, `_`, `.` and `-`. "
                f"Usage: {spec.usage}"
            )
    return _build(name, args, flags)


def _split(spec: Spec, rest: str) -> list[str]:
    if not rest:
        return []
    if spec.rest:
        return rest.split(maxsplit=len(spec.args) - 1)
    return rest.split()


def _arity_message(spec: Spec, given: int) -> str:
    if not spec.args:
        return f"`/{spec.name}` takes no arguments. Start with a space to send it as text."
    missing = spec.args[given:] if given < len(spec.args) else ()
    if missing:
        what = "missing " + ", ".join(f"<{m}>" for m in missing)
    else:
        what = f"too many arguments ({given} given)"
    return f"{what}. Usage: {spec.usage} — {spec.summary}"


def _did_you_mean(word: str) -> str:
    close = difflib.get_close_matches(word, SPECS, n=1, cutoff=0.6)
    return f" Did you mean `/{close[0]}`?" if close else ""


def suggest(word: str) -> str | None:
    """The command a mistyped first word probably meant, if any."""
    close = difflib.get_close_matches(word.lower(), SPECS, n=1, cutoff=0.75)
    return close[0] if close else None


def _build(name: str, args: list[str], flags: set[str]) -> Command:
    match name:
        case "sharekey":
            return ShareKey(args[0])
        case "talk":
            return Talk(args[0])
        case "open":
            return Open(args[0])
        case "verify":
            return Verify(args[0])
        case "trust":
            return Trust(args[0])
        case "reject":
            return Reject(args[0])
        case "search":
            return Search(args[0])
        case "send":
            return SendFile(_unquote(args[0]))
        case "download":
            return _download(args[0])
        case "scan":
            return Scan(args[0], full="--full" in flags)
        case "delete":
            return Delete(args[0])
        case "delete-account":
            return DeleteAccount()
        case "reset":
            return Reset(args[0], args[1], args[2])
        case "help":
            return Help()
        case _:
            return Quit()


def _unquote(path: str) -> str:
    """Terminals quote a dropped file's path; the quotes are not part of the name."""
    if len(path) >= 2 and path[0] == path[-1] and path[0] in "'\"":
        return path[1:-1]
    return path


def _download(arg: str) -> Download:
    if arg.isdigit():
        if int(arg) < 1:
            raise ParseError("files are numbered from 1: type the number shown next to the file")
        return Download(number=int(arg))
    file_id = arg.removeprefix(FILE_LINK)
    if not _FILE_ID.match(file_id):
        raise ParseError(
            f"`{arg}` is not a file number or id: type the number shown next to the file, "
            "like `/download 1`"
        )
    return Download(file_id=file_id)


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
    """Whole-line completions for `text`: command words, usernames, and paths for `send`."""
    if " " not in text.lstrip():
        word = text.strip().removeprefix("/").lower()
        return [f"/{name} " for name in SPECS if name.startswith(word) and word != name]
    head, _, partial = text.rpartition(" ")
    words = head.split()
    name = words[0].removeprefix("/").lower() if words else ""
    if len(words) == 1 and (name in USER_ARGUMENT_COMMANDS or name == "reset"):
        return [f"{head} {user}" for user in sorted(usernames) if user.startswith(partial)]
    word, _, path = text.lstrip().partition(" ")
    if word.removeprefix("/").lower() == "send" and list_paths is not None:
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
