"""Relay configuration: defaults, then a TOML file, then `SECURECHAT_*`, then flags.

Every setting is a field of `ServerConfig`, typed and range-checked with msgspec
constraints, so one definition drives validation, `config show` and
docs/configuration.md. The environment variable for a field is its name
upper-cased with the prefix (`SECURECHAT_BCRYPT_COST`). A mistake in any source
becomes one `ConfigError` sentence naming the setting and where it came from:
an operator reads one line, not a traceback from whatever used the value first.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from securechat.errors import ConfigError
from securechat.protocol.group_frames import MAX_WELCOME_BYTES
from securechat.server import systemd

ENV_PREFIX = "SECURECHAT_"
TABLE = "server"
DAY = 86400


def _setting(description: str, **bounds: Any) -> msgspec.Meta:
    return msgspec.Meta(description=description, **bounds)


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: Annotated[str, _setting("Address to listen on for clients.", min_length=1)] = "127.0.0.1"
    port: Annotated[int, _setting("TCP port for clients (0 picks a free one).", ge=0, le=65535)] = (
        8765
    )
    data_dir: Annotated[
        str, _setting("Where the relay keeps its database; empty means the platform's data dir.")
    ] = ""
    store: Annotated[
        str,
        _setting(
            "Empty means SQLite in data_dir; `sqlite:PATH`, or `postgresql://...` to share "
            "one database between nodes."
        ),
    ] = ""
    bus: Annotated[
        str,
        _setting(
            "Empty means one node; `redis://host:port/db` connects nodes (routing, presence, "
            "rate limits)."
        ),
    ] = ""
    bus_prefix: Annotated[
        str,
        _setting(
            "Prefix of every Redis key and channel, so several clusters can share one Redis.",
            pattern=r"^[A-Za-z0-9_.:-]+$",
            max_length=64,
        ),
    ] = "securechat"
    node_id: Annotated[
        str,
        _setting(
            "This node's name on the bus; empty means a random id per start.",
            pattern=r"^[A-Za-z0-9_.-]*$",
            max_length=64,
        ),
    ] = ""
    poll_interval: Annotated[
        float,
        _setting(
            "Seconds between reads of the store for connected users while the bus is down.",
            ge=0.05,
            le=60,
        ),
    ] = 1.0
    blob_dir: Annotated[
        str,
        _setting(
            "Where file chunks live; empty means `blobs` in data_dir. Nodes share one directory."
        ),
    ] = ""
    tls_cert: Annotated[
        str, _setting("PEM certificate chain: serve wss:// (empty serves plain ws://).")
    ] = ""
    tls_key: Annotated[str, _setting("PEM private key for tls_cert, if not in the same file.")] = ""
    bcrypt_cost: Annotated[
        int, _setting("bcrypt work factor for passwords (each step doubles the cost).", ge=4, le=31)
    ] = 12
    bcrypt_workers: Annotated[
        int,
        _setting(
            "Threads hashing passwords (bcrypt releases the GIL): the default uses every core "
            "for a login storm; more logins queue.",
            ge=1,
            le=256,
        ),
    ] = min(os.cpu_count() or 2, 256)
    session_ttl: Annotated[
        float, _setting("Seconds a login token stays valid.", ge=60, le=365 * DAY)
    ] = 30.0 * DAY
    queue_max_count: Annotated[
        int,
        _setting(
            "Envelopes waiting for one recipient at most, group copies included: a group "
            "message skips a full member (the sender is told); Commits and proposals pass.",
            ge=1,
            le=10_000_000,
        ),
    ] = 10_000
    queue_max_bytes: Annotated[
        int,
        _setting(
            "Bytes waiting for one recipient at most, counted as `queue_max_count` is.",
            ge=1024,
            le=1 << 40,
        ),
    ] = 256 * 1024 * 1024
    queue_ttl: Annotated[
        float,
        _setting(
            "Seconds an undelivered envelope is kept (a group's copies too).",
            ge=60,
            le=365 * DAY,
        ),
    ] = 30.0 * DAY
    max_connections_per_user: Annotated[
        int, _setting("Simultaneous sessions of one user.", ge=1, le=1000)
    ] = 5
    max_connections: Annotated[
        int, _setting("Simultaneous connections to this node.", ge=1, le=10_000_000)
    ] = 20_000
    commit_delay: Annotated[
        float,
        _setting(
            "Seconds a write batch waits for more envelopes. On SQLite delivery does not wait "
            "for it (only `accepted` does, and delivery too once 64 envelopes wait for one "
            "commit), and what is acknowledged meanwhile is never written; on PostgreSQL "
            "delivery waits too. 0 commits every loop turn: more CPU per message "
            "(bench/README.md).",
            ge=0,
            le=0.1,
        ),
    ] = 0.005
    group_commit_delay: Annotated[
        float,
        _setting(
            "Seconds a group write batch waits for more group messages. Their copies are "
            "delivered only after the commit, so this is added to every group message's "
            "latency. 0 commits at the next loop turn, with whatever arrived meanwhile: at "
            "5,000 copies a second in groups of 10 the p99 was 3 ms, against 9-11 ms at 5 ms, "
            "for 1.6x the CPU per copy at that rate (bench/README.md).",
            ge=0,
            le=0.1,
        ),
    ] = 0.0
    frame_rate: Annotated[
        float, _setting("Frames per second one connection may send.", gt=0, le=1e7)
    ] = 200.0
    frame_burst: Annotated[
        float, _setting("Frames one connection may send at once.", ge=1, le=1e7)
    ] = 400.0
    auth_timeout: Annotated[
        float, _setting("Seconds a connection may stay without logging in.", gt=0, le=3600)
    ] = 30.0
    open_timeout: Annotated[
        float, _setting("Seconds for the TLS and websocket handshakes.", gt=0, le=600)
    ] = 10.0
    ping_interval: Annotated[
        float, _setting("Seconds between keep-alive pings.", gt=0, le=3600)
    ] = 4.0
    ping_timeout: Annotated[
        float,
        _setting(
            "Seconds without a pong before a connection is dropped; also the close timeout, "
            "so a silent connection is closed, and its user shown offline, within "
            "ping_interval + twice this.",
            gt=0,
            le=3600,
        ),
    ] = 3.0
    file_quota_bytes: Annotated[
        int,
        _setting("Bytes of files one user may hold on the relay at once.", ge=0, le=1 << 50),
    ] = 200 * 1024 * 1024
    file_quota_files: Annotated[
        int,
        _setting(
            "Files one user may hold on the relay at once: without it, empty or tiny files "
            "(and uploads never finished) would cost rows, directories and memory without "
            "using quota.",
            ge=1,
            le=10_000_000,
        ),
    ] = 1000
    file_ttl: Annotated[
        float, _setting("Seconds an uploaded file is kept.", ge=60, le=365 * DAY)
    ] = 7.0 * DAY
    group_max_members: Annotated[
        int,
        _setting(
            "Members of one group at most: a Commit that would add more is refused.",
            ge=2,
            le=100_000,
        ),
    ] = 1000
    group_max_per_user: Annotated[
        int,
        _setting(
            "Groups one user may be a member of at once (creating or being added to one "
            "more is refused).",
            ge=1,
            le=1_000_000,
        ),
    ] = 1000
    group_commits_kept: Annotated[
        int,
        _setting(
            "Commits kept per group for members who catch up with `group_fetch`; a member "
            "further behind than this must be added again.",
            ge=16,
            le=1_000_000,
        ),
    ] = 1000
    group_welcome_max_bytes: Annotated[
        int,
        _setting(
            "Bytes of one Welcome at most (it carries the group's whole ratchet tree, about "
            "3.4 KB a member).",
            ge=1024,
            le=MAX_WELCOME_BYTES,
        ),
    ] = MAX_WELCOME_BYTES
    scan_rate_per_minute: Annotated[
        float,
        _setting("Full link look-ups one user may ask for per minute.", ge=0, le=100_000),
    ] = 30.0
    blocklists: Annotated[
        tuple[str, ...],
        _setting("Files of blocked domains or URLs (comma-separated in the environment)."),
    ] = ()
    metrics_listen: Annotated[
        str,
        _setting(
            "HOST:PORT serving /metrics, /healthz and /readyz apart from clients; `public` "
            "serves /metrics on the client port too (anyone who reaches it can read it); "
            "empty turns the listener off.",
        ),
    ] = "127.0.0.1:9765"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], _setting("Least severe level logged.")
    ] = "INFO"
    log_format: Annotated[
        Literal["auto", "json", "logfmt", "text"],
        _setting("Log line format; `auto` is text on a terminal and JSON otherwise."),
    ] = "auto"


FIELDS: dict[str, msgspec.structs.FieldInfo] = {
    f.name: f for f in msgspec.structs.fields(ServerConfig)
}


@dataclass(frozen=True)
class Loaded:
    """The configuration and, per setting, where its value came from (for `config show`)."""

    config: ServerConfig
    sources: Mapping[str, str]


def load_config(
    file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    return resolve(file, env, overrides).config


def resolve(
    file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Loaded:
    """Every source merged and checked; the first mistake raises `ConfigError`."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    environ = os.environ if env is None else env
    state = systemd.state_directory(environ)
    if state:
        values["data_dir"], sources["data_dir"] = state, "STATE_DIRECTORY"
    if not file:
        file = systemd.default_config_file(environ)
    if file:
        for name, (value, where) in _read_file(Path(file)).items():
            values[name] = _convert(name, value, where, strict=True)
            sources[name] = where
    for name in FIELDS:
        variable = ENV_PREFIX + name.upper()
        raw = environ.get(variable)
        if raw is not None:
            values[name] = _convert(name, _from_env(name, raw), variable, strict=False)
            sources[name] = variable
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in FIELDS:
            raise ConfigError(f"{flag}: no such setting")
        values[name] = _convert(name, value, flag, strict=True)
        sources[name] = flag
    config = ServerConfig(**values)
    _check_together(config, sources)
    return Loaded(config, {name: sources.get(name, "default") for name in FIELDS})


def _read_file(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key, value in document.items():
        line = _line_of(text, None, key)
        if key != TABLE or not isinstance(value, dict):
            what = "table" if isinstance(value, dict) else "key"
            raise ConfigError(
                f"{path}:{line}: unknown {what} [{key}]: settings go in the [{TABLE}] table"
                if what == "table"
                else f"{path}:{line}: `{key}` is outside any table: put it under [{TABLE}]"
            )
    found: dict[str, tuple[Any, str]] = {}
    for key, value in document.get(TABLE, {}).items():
        line = _line_of(text, TABLE, key)
        if key not in FIELDS:
            raise ConfigError(f"{path}:{line}: unknown setting `{key}` in [{TABLE}]{_hint(key)}")
        found[key] = (value, f"{path}:{line}")
    return found


def _line_of(text: str, table: str | None, key: str) -> int:
    """The line a key (or a table header, when `table` is None) is on; 0 when not found."""
    current: str | None = None
    pattern = re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip("\"'")
            if table is None and current == key:
                return number
            continue
        if current == table and pattern.match(line):
            return number
    return 0


def _hint(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, FIELDS, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _from_env(name: str, raw: str) -> Any:
    if isinstance(FIELDS[name].default, tuple):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _convert(name: str, value: Any, where: str, strict: bool) -> Any:
    try:
        return msgspec.convert(value, FIELDS[name].type, strict=strict)
    except msgspec.ValidationError as exc:
        reason = str(exc).removesuffix(" - at `$`")
        choices = typing.get_args(typing.get_args(FIELDS[name].type)[0])
        if choices and isinstance(FIELDS[name].default, str):
            reason = f"use one of {', '.join(choices)}"
        raise ConfigError(f"{where}: {name} = {value!r} is not allowed: {reason}") from None


def _check_together(config: ServerConfig, sources: Mapping[str, str]) -> None:
    """What one field's type cannot say: URL forms, and settings that need each other."""
    if config.store and not config.store.startswith("sqlite:"):
        _check_url("store", config.store, ("postgresql", "postgres"), sources)
    if config.bus:
        _check_url("bus", config.bus, ("redis", "rediss", "unix"), sources)
    if config.metrics_listen not in {"", PUBLIC}:
        try:
            listen_address(config.metrics_listen)
        except ValueError as exc:
            where = sources.get("metrics_listen", "default")
            raise ConfigError(
                f"{where}: metrics_listen = {config.metrics_listen!r} is not allowed: {exc}"
            ) from None
    if config.tls_key and not config.tls_cert:
        where = sources.get("tls_key", "default")
        raise ConfigError(f"{where}: tls_key is set but tls_cert is not: set both or neither")


def _check_url(name: str, url: str, schemes: tuple[str, ...], sources: Mapping[str, str]) -> None:
    where = sources.get(name, "default")
    shown = redact(url)
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        kinds = " or ".join(f"{s}://..." for s in schemes)
        extra = " (or sqlite:PATH)" if name == "store" else ""
        raise ConfigError(f"{where}: {name} = {shown!r} is not allowed: use {kinds}{extra}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(
            f"{where}: {name} = {shown!r} is not allowed: the port must be a number 0-65535"
        ) from None


PUBLIC = "public"


def listen_address(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` as a (host, port) pair; ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host:
        raise ValueError("use HOST:PORT, such as 127.0.0.1:9765")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError("the port must be a number 0-65535")
    return host, int(port)


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and `config show`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_paths(config: ServerConfig, sources: Mapping[str, str]) -> None:
    """Files the relay must read and directories it must write, checked before it starts,
    so a mistake names the setting and path instead of surfacing as a bare OSError."""
    readable = [("tls_cert", config.tls_cert), ("tls_key", config.tls_key)]
    readable += [("blocklists", path) for path in config.blocklists]
    for name, value in readable:
        if value and not os.access(value, os.R_OK):
            reason = "does not exist" if not os.path.exists(value) else "cannot be read"
            raise ConfigError(f"{sources.get(name, 'default')}: {name} {value} {reason}")
    for name in ("data_dir", "blob_dir"):
        value = getattr(config, name)
        if value:
            _check_writable_dir(name, Path(value), sources.get(name, "default"))


def _check_writable_dir(name: str, path: Path, where: str) -> None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where}: {name} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: {name} {path}: {existing} is not writable")
