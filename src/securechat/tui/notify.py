"""Desktop notifications: terminal escape sequences, or `notify-send` where they cannot reach.

The terminal turns OSC 9 / OSC 777 into system notifications with nothing
else needed on the machine: iTerm2, WezTerm, Windows Terminal, kitty and
ghostty read OSC 9, while foot, urxvt and VTE terminals read OSC 777 (sending
both would notify twice where both work). Inside tmux the sequence is wrapped
in tmux's passthrough (`ESC P tmux; … ESC \\`, with `allow-passthrough on`),
but tmux does not say which terminal is outside it, so there, and in a
terminal not known to read either sequence, libnotify's `notify-send` is
used when it is installed. It is a subprocess with a fixed argument list:
no shell, and `--` so a message starting with `-` is not read as an option.
(The desktop-notifier package would cover the same ground with a D-Bus stack
per platform; one optional command line is enough for a fallback.)

By default a notification names the sender only ("New message from bob", and
the group for a group message: "New message from bob in night shift"):
a desktop notification shows on a locked screen and to anyone near it, so
the text appears only with `notification_text = true`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from securechat.tui.safe_text import one_line

_OSC9_TERMINALS = {"iTerm.app", "WezTerm", "ghostty", "kitty"}
NOTIFY_SEND = "notify-send"


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    body: str


def notification(peer: str, text: str, show_text: bool, group: str = "") -> Notification:
    """What a new message from `peer` says on the desktop: the sender, and the text if asked.

    A group message names the group too (`group`, its name as members set it):
    "bob" alone would not say which conversation to look at.
    """
    sender = f"{peer} in {group}" if group else peer
    if show_text:
        return Notification(f"securechat: {sender}", text)
    return Notification("securechat", f"New message from {sender}")


def channel(env: Mapping[str, str], have_notify_send: bool) -> Literal["osc", "notify-send"]:
    """Escape sequences where the terminal is known to show them, else notify-send if present."""
    if "TMUX" not in env and _known_terminal(env):
        return "osc"
    return "notify-send" if have_notify_send else "osc"


def _known_terminal(env: Mapping[str, str]) -> bool:
    return (
        _reads_osc9(env)
        or "VTE_VERSION" in env
        or env.get("TERM", "").startswith(("foot", "rxvt-unicode"))
    )


def _reads_osc9(env: Mapping[str, str]) -> bool:
    program = env.get("TERM_PROGRAM", "")
    return program in _OSC9_TERMINALS or "WT_SESSION" in env or env.get("TERM") == "xterm-kitty"


def desktop_sequence(note: Notification, env: Mapping[str, str]) -> str:
    """The escape sequence for one notification, with peer text made inert.

    `one_line` turns ESC and BEL into visible characters, so a message cannot
    end the sequence early and smuggle its own escapes to the terminal.
    """
    title, body = one_line(note.title, 60).replace(";", ","), one_line(note.body, 200)
    if _reads_osc9(env):
        sequence = f"\x1b]9;{title}: {body}\x07"
    else:
        sequence = f"\x1b]777;notify;{title};{body}\x07"
    if "TMUX" in env:
        # tmux passes a DCS `tmux;` payload through with each ESC doubled.
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence


def notify_send_argv(note: Notification) -> list[str]:
    """The `notify-send` command line: fixed options, then `--`, then the two texts.

    Notification servers may read the body as markup (links, images), so its
    `&`, `<` and `>` are escaped: a peer's text is shown, never interpreted.
    """
    return [
        NOTIFY_SEND,
        "--app-name=securechat",
        "--",
        one_line(note.title, 60),
        html.escape(one_line(note.body, 200), quote=False),
    ]
