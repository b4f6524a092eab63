"""The Textual terminal client; `make_app` builds it for the CLI and tests alike."""

from __future__ import annotations

from securechat.tui.app import SecureChatApp, make_app

__all__ = ["SecureChatApp", "make_app"]
