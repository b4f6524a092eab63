"""The one place that decides where securechat keeps files.

Flags win over `SECURECHAT_DATA_DIR` / `SECURECHAT_CONFIG_DIR`, which win over
platformdirs, so tests and two-users-on-one-machine setups never share state
by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "securechat"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Directory for databases, vaults and downloads."""
    chosen = override or os.environ.get("SECURECHAT_DATA_DIR")
    path = Path(chosen) if chosen else Path(platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def config_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding `config.toml`."""
    chosen = override or os.environ.get("SECURECHAT_CONFIG_DIR")
    path = Path(chosen) if chosen else Path(platformdirs.user_config_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def server_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The relay's own data directory: kept apart from any client's."""
    if override:
        path = Path(override)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
    return _child(data_dir(), "server")


def client_dir(username: str, override: str | os.PathLike[str] | None = None) -> Path:
    """One user's client state (vault, history, outbox)."""
    return _child(data_dir(override), "users", username)


def downloads_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where received files land."""
    return _child(data_dir(override), "downloads")


def _child(base: Path, *parts: str) -> Path:
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def runtime_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Sockets and other files that live as long as a login session (mode 0700)."""
    chosen = override or os.environ.get("SECURECHAT_RUNTIME_DIR")
    path = Path(chosen) if chosen else Path(platformdirs.user_runtime_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def daemon_socket(username: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Where `securechat-cli daemon` listens for `username` unless told otherwise."""
    return runtime_dir(override) / f"{username}.sock"
