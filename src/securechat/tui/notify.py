"""Desktop notifications as terminal escape sequences (OSC 9 and OSC 777).

The terminal turns them into system notifications; nothing else is needed
on the machine. Which one to send depends on the terminal: iTerm2, WezTerm,
Windows Terminal, kitty and ghostty read OSC 9, while foot, urxvt and VTE
terminals read OSC 777. Sending both would notify twice where both work.
"""

from __future__ import annotations

from collections.abc import Mapping

from securechat.tui.safe_text import one_line

_OSC9_TERMINALS = {"iTerm.app", "WezTerm", "ghostty", "kitty"}


def desktop_sequence(title: str, body: str, env: Mapping[str, str]) -> str:
    """The escape sequence for one notification, with peer text made inert.

    `one_line` turns ESC and BEL into visible characters, so a message cannot
    end the sequence early and smuggle its own escapes to the terminal.
    """
    title, body = one_line(title, 60).replace(";", ","), one_line(body, 200)
    program = env.get("TERM_PROGRAM", "")
    if program in _OSC9_TERMINALS or "WT_SESSION" in env or env.get("TERM") == "xterm-kitty":
        return f"\x1b]9;{title}: {body}\x07"
    return f"\x1b]777;notify;{title};{body}\x07"
