"""Text from other people, made safe to put on a terminal.

Peers choose every byte of their messages, usernames' display aside. Rich
markup in a `str` would be interpreted (`[bold]`, `[link=…]`), and control
characters would reach the terminal (`\\x1b[2J` clears it; OSC sequences
can set the title or the clipboard). So peer text only ever becomes a
`rich.text.Text` built here, never markup, with every control character
shown as a visible escape.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text

_ESCAPE_NAMES = {"\x1b": "␛", "\t": "    ", "\r": "␍", "\x7f": "␡"}


def visible(text: str, *, keep_newlines: bool = True) -> str:
    """The text with control and format characters replaced by visible stand-ins.

    Bidirectional overrides (category Cf) are escaped too: they can make a
    line read differently from what it holds.
    """
    out: list[str] = []
    for char in text:
        if char == "\n" and keep_newlines:
            out.append(char)
        elif char in _ESCAPE_NAMES:
            out.append(_ESCAPE_NAMES[char])
        elif unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co"} and char != "\u200d":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def safe(text: str, style: str = "", *, keep_newlines: bool = True) -> Text:
    """A Text that renders exactly the characters received, nothing interpreted."""
    return Text(visible(text, keep_newlines=keep_newlines), style=style)


def one_line(text: str, limit: int = 80) -> str:
    """A short single-line preview (toasts, desktop notifications, search results)."""
    flat = visible(text, keep_newlines=False)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
