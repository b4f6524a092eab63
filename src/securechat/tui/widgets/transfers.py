"""Files on their way up or down: one progress bar each, above the input line.

The panel only draws. The screen starts a row when a transfer begins, feeds
it the core's `TransferProgress` numbers and finishes it when the transfer
ends, whichever way it ends; with no transfer the panel takes no space.

What a person sees is timed: a bar appears once its transfer has run for
`SHOW_AFTER` seconds (a quicker one would only flicker), and a bar that was
seen stays, full, for `HOLD` seconds after the end, so a transfer of over
half a second always leaves a bar on screen long enough to read.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static


class TransferRow(Horizontal):
    DEFAULT_CSS = """
    TransferRow {
        height: 1;
    }
    TransferRow > .transfer-label {
        width: 1fr;
        height: 1;
        text-overflow: ellipsis;
        text-wrap: nowrap;
    }
    TransferRow > ProgressBar {
        width: auto;
        height: 1;
    }
    """

    def __init__(self, label: Text) -> None:
        super().__init__()
        self.label = label
        self.done = 0
        self.total: int | None = None
        self.finished = False
        self.display = False

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="transfer-label")
        yield ProgressBar(total=None, show_eta=False)

    def on_mount(self) -> None:
        self._draw()

    def set_progress(self, done: int, total: int) -> None:
        """Remembered until the bar is mounted: a small file may finish before that."""
        self.done, self.total = (done, total) if total else (1, 1)
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        """No-op while the bar is not there (not composed yet, or already being removed)."""
        for bar in self.query(ProgressBar):
            if self.total is not None:
                bar.update(total=self.total, progress=self.done)

    @property
    def bar(self) -> ProgressBar:
        return self.query_one(ProgressBar)


class TransferPanel(Vertical):
    DEFAULT_CSS = """
    TransferPanel {
        height: auto;
        max-height: 5;
        padding: 0 1;
        display: none;
    }
    TransferPanel.-busy {
        display: block;
    }
    """
    SHOW_AFTER: ClassVar[float] = 0.5
    HOLD: ClassVar[float] = 1.0

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[int, TransferRow] = {}
        self._keys = itertools.count(1)

    def start(self, label: Text) -> int:
        """Adds a bar (indeterminate until the first progress) and returns its key."""
        key = next(self._keys)
        row = TransferRow(label)
        self._rows[key] = row
        self.mount(row)
        self.set_timer(self.SHOW_AFTER, lambda: self._reveal(row))
        return key

    def _reveal(self, row: TransferRow) -> None:
        if not row.finished and row.parent is self:
            row.display = True
            self._update_busy()

    def _update_busy(self) -> None:
        self.set_class(any(row.display for row in self.query_children(TransferRow)), "-busy")

    def progress(self, key: int, done: int, total: int) -> None:
        row = self._rows.get(key)
        if row is not None:
            row.set_progress(done, total)

    def finish(self, key: int) -> None:
        """A bar never shown goes at once; a shown one fills up and stays for `HOLD` seconds."""
        row = self._rows.pop(key, None)
        if row is None:
            return
        row.finished = True
        if not row.display:
            row.remove()
            return
        if row.total is not None:
            row.set_progress(row.total, row.total)
        self.set_timer(self.HOLD, lambda: self._drop(row))

    def _drop(self, row: TransferRow) -> None:
        row.display = False
        row.remove()
        self._update_busy()

    def bars(self) -> dict[int, tuple[str, ProgressBar]]:
        """Transfers still running, shown or not yet: key -> (label, bar)."""
        return {
            key: (row.label.plain, bar)
            for key, row in self._rows.items()
            for bar in row.query(ProgressBar)
        }
