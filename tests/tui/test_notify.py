"""Desktop notifications without a terminal: what is sent, where, and that peer text is inert."""

from __future__ import annotations

from securechat.tui.notify import channel, desktop_sequence, notification, notify_send_argv


def test_sender_only_unless_the_text_is_asked_for() -> None:
    """A locked screen shows notifications: by default only who wrote."""
    assert notification("bob", "the secret", False).body == "New message from bob"
    assert notification("bob", "the secret", True).body == "the secret"


def test_a_group_message_names_the_group_and_the_sender() -> None:
    """ "bob" alone would not say which conversation to open: a group's name comes with it."""
    assert notification("bob", "hi", False, "night shift").body == (
        "New message from bob in night shift"
    )
    assert notification("bob", "hi", True, "night shift").title == "securechat: bob in night shift"
    hostile = notification("bob", "", False, "x\x1b]0;owned\x07;y")
    assert "\x1b" not in desktop_sequence(hostile, {"TERM_PROGRAM": "WezTerm"})[1:-1]


def test_channel_prefers_a_known_terminal_then_notify_send() -> None:
    """OSC where the terminal reads it; inside tmux or an unknown terminal, notify-send."""
    assert channel({"TERM_PROGRAM": "WezTerm"}, True) == "osc"
    assert channel({"VTE_VERSION": "7600"}, True) == "osc"
    assert channel({"TERM_PROGRAM": "tmux", "TMUX": "x", "VTE_VERSION": "7600"}, True) == (
        "notify-send"
    )
    assert channel({"TERM": "xterm-256color"}, True) == "notify-send"
    assert channel({"TERM": "xterm-256color"}, False) == "osc"


def test_notify_send_gets_inert_arguments() -> None:
    """No option can be smuggled in, and markup in the body is escaped."""
    argv = notify_send_argv(notification("bob", "--icon=/x <a href='y'>z</a>\x1b[2J", True))
    assert argv[:3] == ["notify-send", "--app-name=securechat", "--"]
    assert argv[4].startswith("--icon=/x &lt;a href='y'&gt;z&lt;/a&gt;")
    assert "\x1b" not in argv[4]


def test_tmux_passthrough_doubles_every_escape() -> None:
    """tmux forwards `ESC P tmux; … ESC \\` with the inner ESCs doubled."""
    note = notification("bob", "", False)
    plain = desktop_sequence(note, {"TERM_PROGRAM": "WezTerm"})
    wrapped = desktop_sequence(note, {"TERM_PROGRAM": "WezTerm", "TMUX": "x"})
    assert wrapped == "\x1bPtmux;" + plain.replace("\x1b", "\x1b\x1b") + "\x1b\\"
