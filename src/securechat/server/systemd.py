"""What systemd hands a service: its directories, and the notify socket for Type=notify.

The notify protocol is one datagram on the AF_UNIX socket named by NOTIFY_SOCKET
(a leading `@` means the abstract namespace); a few lines, so no dependency.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

CONFIG_NAME = "relay.toml"


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Sends `state` (such as READY=1) to the service manager; False when not under one."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "@/":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), target)
    except OSError:
        return False  # the manager went away: nothing to tell, nothing to fail over
    return True


def _first(environ: Mapping[str, str], name: str) -> str | None:
    """systemd joins several directories with `:`; the relay uses the first."""
    value = environ.get(name, "")
    return value.split(":", 1)[0] or None


def state_directory(environ: Mapping[str, str]) -> str | None:
    """StateDirectory=: where the database and blobs go when data_dir is not set."""
    return _first(environ, "STATE_DIRECTORY")


def logs_directory(environ: Mapping[str, str]) -> Path | None:
    """LogsDirectory=: the relay also writes its JSON lines to relay.log there."""
    found = _first(environ, "LOGS_DIRECTORY")
    return Path(found) if found else None


def default_config_file(environ: Mapping[str, str]) -> Path | None:
    """ConfigurationDirectory=: relay.toml there is read when no --config is given."""
    found = _first(environ, "CONFIGURATION_DIRECTORY")
    if found and (Path(found) / CONFIG_NAME).is_file():
        return Path(found) / CONFIG_NAME
    return None
