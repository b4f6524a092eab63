"""App-wide Textual messages: the ones that cross screens rather than belong to one widget."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from securechat.client.events import Event


@dataclass
class CoreEvent(Message):
    """One event from `ChatClient.events`, carried into Textual's message queue."""

    event: Event


@dataclass
class SignedIn(Message):
    """The sign-in screen has an unlocked, logged-in client: show the main screen."""

    username: str


@dataclass
class SignedOut(Message):
    """The session ended (account deleted, logged out): back to the sign-in screen."""

    reason: str
