"""Relay configuration: defaults, then a TOML file, then `SECURECHAT_*`, then flags.

Every setting is a field of `ServerConfig`; the environment variable for a
field is its name upper-cased with the prefix (`SECURECHAT_BCRYPT_COST`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securechat.errors import ConfigError

ENV_PREFIX = "SECURECHAT_"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: str = ""
    """Empty means platformdirs' data dir (`paths.server_dir`)."""
    store: str = ""
    """Empty means SQLite in data_dir; `postgresql://...` shares one database between nodes."""
    bus: str = ""
    """Empty means one node; `redis://...` connects nodes (routing, presence, rate limits)."""
    bus_prefix: str = "securechat"
    node_id: str = ""
    """Empty means a random id per start."""
    poll_interval: float = 1.0
    """How often to read the store for connected users while the bus is down."""
    blob_dir: str = ""
    """Where file chunks live; empty means `blobs` in data_dir. Nodes share one directory."""
    tls_cert: str = ""
    tls_key: str = ""
    bcrypt_cost: int = 12
    bcrypt_workers: int = max(1, (os.cpu_count() or 2) - 1)
    """Leave a core to the event loop: bcrypt must never starve message relay."""
    session_ttl: float = 30 * 86400
    queue_max_count: int = 10_000
    queue_max_bytes: int = 256 * 1024 * 1024
    queue_ttl: float = 30 * 86400
    max_connections_per_user: int = 5
    max_connections: int = 20_000
    commit_delay: float = 0.005
    """Seconds a group commit waits for more envelopes. On SQLite delivery does not wait
    for it (only `accepted` does, and delivery too once 64 envelopes wait for one
    commit), and what is acknowledged meanwhile is never written; on PostgreSQL
    delivery waits too. 0 commits every loop turn: more CPU per message
    (bench/README.md)."""
    frame_rate: float = 200.0
    frame_burst: float = 400.0
    auth_timeout: float = 30.0
    open_timeout: float = 10.0
    ping_interval: float = 4.0
    ping_timeout: float = 3.0
    """Also the close timeout: a connection that stops answering is closed, and its user
    shown offline to their contacts, within 10 s (interval + twice this)."""
    file_quota_bytes: int = 200 * 1024 * 1024
    file_quota_files: int = 1000
    """Files one user may hold on the relay at once: without it, empty or tiny files (and
    uploads never finished) would cost rows, directories and memory without using quota."""
    file_ttl: float = 7 * 86400
    scan_rate_per_minute: float = 30.0
    blocklists: tuple[str, ...] = ()
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0 <= self.commit_delay <= 0.1:
            raise ConfigError(
                f"commit_delay = {self.commit_delay} is out of range: use 0 to 0.1 seconds"
            )
        if self.file_quota_files < 1:
            raise ConfigError(
                f"file_quota_files = {self.file_quota_files} would refuse every file: use 1 or more"
            )


def load_config(
    file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    values: dict[str, Any] = {}
    if file:
        path = Path(file)
        try:
            values.update(tomllib.loads(path.read_text()).get("server", {}))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    environ = os.environ if env is None else env
    fields = {f.name: f for f in dataclasses.fields(ServerConfig)}
    for name in fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    defaults = ServerConfig()
    return ServerConfig(
        **{name: _coerce(name, getattr(defaults, name), value) for name, value in values.items()}
    )


def _coerce(name: str, default: Any, value: Any) -> Any:
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(v).strip() for v in items if str(v).strip())
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} = {value!r} is not a {type(default).__name__}") from None
