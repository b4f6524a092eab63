"""Search results across every conversation; Enter jumps to the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from securechat.client.records import StoredMessage
from securechat.client.vault_messages import words
from securechat.tui.safe_text import visible


def context(text: str, query: str, width: int = 60) -> Text:
    """A window of `text` around the first word of `query`, that word highlighted."""
    flat = visible(text, keep_newlines=False)
    lowered = flat.casefold()
    positions = [lowered.find(w) for w in sorted(words(query)) if lowered.find(w) >= 0]
    at = min(positions) if positions else 0
    start = max(0, at - width // 3)
    snippet = flat[start : start + width]
    line = Text(("…" if start else "") + snippet + ("…" if start + width < len(flat) else ""))
    for word in words(query):
        line.highlight_words([word], style="bold reverse", case_sensitive=False)
    return line


class SearchScreen(ModalScreen[StoredMessage | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(
        self,
        query: str,
        results: list[StoredMessage],
        time_format: Callable[[float], str],
        title: Callable[[str], str] = str,
    ) -> None:
        """`title` names a conversation by its key: a group's key is not its name."""
        super().__init__()
        self.query_text = query
        self.results = results
        self._time_format = time_format
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            count = len(self.results)
            title = Text.assemble(
                (f"{count} result{'s' if count != 1 else ''} for ", "bold"),
                (visible(self.query_text, keep_newlines=False), "bold italic"),
            )
            yield Static(title, classes="dialog-title")
            if not self.results:
                yield Static("Nothing found. Search matches whole words, in any conversation.")
            yield OptionList(*self._options(), id="search-results")
            yield Static(Text("Enter jumps to the message · Esc closes", style="dim"))

    def _options(self) -> list[Option]:
        options = []
        for message in self.results:
            record = message.record
            where = self._title(record.peer)
            if record.outgoing:
                who = f"you → {where}"
            elif record.conversation_id.is_direct:
                who = where
            else:
                who = f"{record.sender or 'securechat'} in {where}"
            prompt = Text.assemble(
                (self._time_format(record.ts), "dim"), " ", (who, "bold"), "\n  "
            )
            prompt.append_text(context(record.text, self.query_text))
            options.append(Option(prompt, id=str(message.id)))
        return options

    def on_mount(self) -> None:
        self.query_one("#search-results").focus()

    @on(OptionList.OptionSelected, "#search-results")
    def _jump(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.results[event.option_index])

    def action_close(self) -> None:
        self.dismiss(None)
