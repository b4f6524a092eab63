"""A checkbox whose state reads without colour: a ✓ when ticked, blank when not.

Textual's Checkbox draws the same `X` either way and tells the states apart
by colour alone, which a colour-blind user, a monochrome terminal or a
screen reader's text capture cannot see.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        button = super()._button
        inner = "✓" if self.value else " "
        return Content.assemble(button[:1], (inner, button.get_style_at_offset(1)), button[2:])
