"""What the TUI remembers between runs that is not a setting: the last username per relay.

It lives in the data directory, not in `config.toml`, because the app writes
it on every sign-in and a person never edits it. The file is read as
untrusted: anything that is not the expected shape is ignored (the sign-in
form is then empty, as on a first run), never an error.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from securechat.protocol.limits import USERNAME_PATTERN

STATE_FILE = "tui-state.json"
VERSION = 1
MAX_RELAYS = 32
"""Relays remembered; the oldest entries go first."""
_MAX_SERVER_CHARS = 512
_USERNAME = re.compile(USERNAME_PATTERN)


class LastUsers:
    """Relay address -> the last username that signed in there from this device."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._users = self._read()

    def get(self, server: str) -> str:
        return self._users.get(server.strip(), "")

    def remember(self, server: str, username: str) -> None:
        """Saves at once, so a crash later in the session does not lose it."""
        server = server.strip()
        if self.path is None or not _USERNAME.match(username) or len(server) > _MAX_SERVER_CHARS:
            return
        self._users.pop(server, None)
        self._users[server] = username
        while len(self._users) > MAX_RELAYS:
            del self._users[next(iter(self._users))]
        data = json.dumps({"version": VERSION, "last_users": self._users}, indent=1)
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(data)
            os.replace(temporary, self.path)
        except OSError:
            # A read-only or full disk costs the convenience, never the sign-in.
            return

    def _read(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(loaded, dict) or loaded.get("version") != VERSION:
            return {}
        users = loaded.get("last_users")
        if not isinstance(users, dict):
            return {}
        return {
            server: user
            for server, user in list(users.items())[-MAX_RELAYS:]
            if isinstance(user, str)
            and _USERNAME.match(user)
            and isinstance(server, str)
            and len(server) <= _MAX_SERVER_CHARS
        }
