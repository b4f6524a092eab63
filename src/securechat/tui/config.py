"""The TUI's settings: `config.toml`, then environment variables, then flags.

    [tui]
    server = "wss://chat.example.org"
    bell = true
    desktop_notifications = false
    notification_text = false
    theme = "textual-dark"
    full_link_checks = false
    brands = ["mybank.co.uk", "example-employer.com"]

    [keymap]
    help = "f1,question_mark"
    toggle_sidebar = "ctrl+s"

Each layer overrides the one before, so a flag always wins and a shell
profile can set `SECURECHAT_SERVER` once for every session.

`[keymap]` maps the id of a key binding (`KEYMAP_IDS`) to the keys that run
it, through Textual's keymap support. A setting changed inside the app
(theme, bell, desktop notifications) is written back to the `[tui]` table by
`save_setting`, which edits that one line and leaves the rest of the file,
comments included, as the user wrote it.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from securechat import paths
from securechat.errors import ConfigError
from securechat.scanner.brands import parse_brands

CONFIG_FILE = "config.toml"
DEFAULT_SERVER = "ws://127.0.0.1:8765"


@dataclass(frozen=True, slots=True)
class TuiConfig:
    server: str = DEFAULT_SERVER
    bell: bool = True
    desktop_notifications: bool = False
    """OSC 9 / OSC 777 sequences or notify-send: off by default, as some terminals print
    the sequences raw."""
    notification_text: bool = False
    """Show the message text in desktop notifications, not only the sender's name."""
    theme: str = "textual-dark"
    full_link_checks: bool = False
    """Check every link in the chat with the full lookup: the URL goes to the relay and to
    VirusTotal/OTX. Off by default: the private check sends only hash prefixes."""
    brands: tuple[str, ...] = ()
    """Domains to protect on top of the scanner's well-known brands (your bank, your
    employer): a link wearing one in front of another site, or imitating its name with
    lookalike letters, warns. SECURECHAT_BRANDS takes them comma-separated."""
    keymap: tuple[tuple[str, str], ...] = ()
    """(binding id, keys) pairs from the `[keymap]` table."""


KEYMAP_IDS = (
    "help",
    "focus_conversations",
    "toggle_sidebar",
    "files",
    "search",
    "older",
    "retry",
    "quit",
)
"""The ids of the bindings a `[keymap]` table can move to other keys."""
_KEYS = re.compile(r"^[a-z0-9_+]+(,[a-z0-9_+]+)*$")


_ENV = {
    "server": "SECURECHAT_SERVER",
    "bell": "SECURECHAT_BELL",
    "desktop_notifications": "SECURECHAT_DESKTOP_NOTIFICATIONS",
    "notification_text": "SECURECHAT_NOTIFICATION_TEXT",
    "theme": "SECURECHAT_THEME",
    "full_link_checks": "SECURECHAT_FULL_LINK_CHECKS",
    "brands": "SECURECHAT_BRANDS",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def load_config(
    config_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> TuiConfig:
    """Reads the file, applies the environment, then every flag that is not None."""
    env = os.environ if env is None else env
    path = (config_dir or paths.config_dir()) / CONFIG_FILE
    config = TuiConfig()
    if path.is_file():
        try:
            document = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        config = _apply(config, document.get("tui", {}), str(path))
        config = replace(config, keymap=_keymap(document.get("keymap", {}), str(path)))
    from_env = {key: env[name] for key, name in _ENV.items() if name in env}
    config = _apply(config, from_env, "the environment")
    return _apply(config, {k: v for k, v in flags.items() if v is not None}, "the flags")


def _apply(config: TuiConfig, values: Mapping[str, Any], source: str) -> TuiConfig:
    known = {f.name: f for f in fields(TuiConfig) if f.name != "keymap"}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown setting `{key}` in {source}; known: {', '.join(known)}")
        default = getattr(TuiConfig(), key)
        if isinstance(default, tuple):
            changes[key] = _coerce_brands(key, value, source)
        else:
            changes[key] = _coerce(key, value, isinstance(default, bool), source)
    return replace(config, **changes)


def _coerce_brands(key: str, value: Any, source: str) -> tuple[str, ...]:
    """A TOML list of domains, or one comma-separated string (the environment)."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"`{key}` in {source} must be a list of domains such as mybank.com")
    try:
        return tuple(brand.domain for brand in parse_brands(value))
    except ValueError as exc:
        raise ConfigError(f"`{key}` in {source}: {exc}") from exc


def _coerce(key: str, value: Any, boolean: bool, source: str) -> Any:
    if not boolean:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"`{key}` in {source} must be a non-empty string")
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ConfigError(f"`{key}` in {source} must be true or false, not {value!r}")


def _keymap(table: Any, source: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise ConfigError(f'`keymap` in {source} must be a table of binding = "keys"')
    pairs = []
    for binding, keys in table.items():
        if binding not in KEYMAP_IDS:
            known = ", ".join(KEYMAP_IDS)
            raise ConfigError(f"unknown binding `{binding}` in {source}'s [keymap]; known: {known}")
        if not isinstance(keys, str) or not _KEYS.match(keys.replace(" ", "")):
            raise ConfigError(
                f'`{binding}` in {source}\'s [keymap] must be keys such as "f5" or "ctrl+k,f5"'
            )
        pairs.append((binding, keys.replace(" ", "")))
    return tuple(pairs)


# --- writing a setting back -------------------------------------------------------


_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def with_setting(text: str, key: str, value: bool | str) -> str:
    """`text` (a config.toml) with `key` set in its `[tui]` table; every other line kept."""
    literal = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
    assignment = f"{key} = {literal}"
    lines = text.splitlines()
    table: str | None = None
    insert_at: int | None = None
    for number, line in enumerate(lines):
        header = _TABLE_HEADER.match(line)
        if header:
            table = header[1]
            if table == "tui":
                insert_at = number + 1
            continue
        if table != "tui":
            continue
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            lines[number] = assignment
            return "\n".join(lines) + "\n"
        if line.strip():
            insert_at = number + 1
    if insert_at is None:
        lines += [*([""] if lines else []), "[tui]", assignment]
    else:
        lines.insert(insert_at, assignment)
    return "\n".join(lines) + "\n"


def save_setting(path: Path, key: str, value: bool | str) -> None:
    """Writes one setting to `path` atomically; refuses rather than damage the file."""
    try:
        text = path.read_text() if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path} to save `{key}`: {exc}") from exc
    updated = with_setting(text, key, value)
    try:
        saved = tomllib.loads(updated).get("tui", {}).get(key)
    except tomllib.TOMLDecodeError:
        saved = None
    if saved != value:
        raise ConfigError(f"{path} is laid out in a way this cannot edit; set `{key}` there")
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary.write_text(updated)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigError(f"cannot save `{key}` to {path}: {exc}") from exc
