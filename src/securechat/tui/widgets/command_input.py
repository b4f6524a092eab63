"""The input line: commands and messages, with history, Tab completion and masking.

A `reset` line's password is masked as it is typed and the line is never
kept in the history, so it cannot be recalled with the up arrow. What Enter
will do is written under the line before it is pressed whenever it could
surprise: a bare `talk bob` runs, `verify bob` without the slash is sent.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input

from securechat.tui import commands


class CommandInput(Input):
    DEFAULT_CSS = """
    CommandInput {
        border: round $primary 50%;
        border-subtitle-color: $text-warning;
    }
    CommandInput:focus {
        border: round $primary;
    }
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    """The line's text width, for its own horizontal scrolling. Textual's default lays out
    the whole screen when it changes, so every key press re-arranged every line of the
    chat before it showed (`python -m bench chatlog`); the line's own size never changes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id)
        self.usernames: list[str] = []
        self.history: list[str] = []
        self._history_index = 0
        self._completions: list[str] = []
        self._completion_index = 0

    @property
    def _value(self) -> Text:
        """What is drawn: the value with a `reset` password replaced by bullets."""
        return Text(commands.mask(self.value), no_wrap=True, overflow="ignore", end="")

    @on(Input.Changed)
    def _show_hint(self, event: Input.Changed) -> None:
        self.border_subtitle = commands.hint(event.value) or ""

    @on(Input.Submitted)
    def _remember(self, event: Input.Submitted) -> None:
        """Keeps the line for up/down unless it holds a secret; the screen handles it next."""
        text = event.value
        repeated = bool(self.history) and self.history[-1] == text
        if text.strip() and not commands.is_secret(text) and not repeated:
            self.history.append(text)
        self._history_index = len(self.history)
        self._completions = []

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._history_index = max(0, min(len(self.history), self._history_index + step))
        self.value = (
            self.history[self._history_index] if self._history_index < len(self.history) else ""
        )
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        """Tab completes command words, usernames and `send` paths; repeated Tab cycles them."""
        if self._completions and self.value in self._completions:
            self._completion_index = (self._completion_index + 1) % len(self._completions)
        else:
            self._completions = commands.complete(self.value, self.usernames, commands.list_paths)
            self._completion_index = 0
        if not self._completions:
            self.app.bell()
            return
        self.value = self._completions[self._completion_index]
        self.cursor_position = len(self.value)
