"""The command palette's securechat commands: the same actions as the input line.

Titles can hold names a peer chose (a received file's name), and the palette
reads its strings as Textual markup, so every title is escaped first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from securechat.tui.commands import PaletteSource, PaletteTarget


class SecureChatCommands(Provider):
    def _entries(self) -> list[tuple[str, str, Callable[[], None]]]:
        screen = self.screen
        if not isinstance(screen, PaletteSource):
            return []
        return [
            (title, help, _action(screen, target))
            for title, help, target in screen.palette_entries()
        ]

    async def discover(self) -> Hits:
        for title, help, action in self._entries():
            yield DiscoveryHit(Content(title), action, text=title, help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help, action in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(escape(title)), action, text=title, help=help)


def _action(screen: PaletteSource, target: PaletteTarget) -> Callable[[], None]:
    """A text target is a command needing an argument: put it on the input line."""
    if isinstance(target, str):
        return partial(screen.prefill, target)
    if callable(target):
        return target
    return partial(screen.run_command, target)
