"""The TUI's settings: `config.toml`, then environment variables, then flags.

    [tui]
    server = "wss://chat.example.org"
    bell = true
    desktop_notifications = false
    theme = "textual-dark"
    full_link_checks = false
    brands = ["mybank.co.uk", "example-employer.com"]

Each layer overrides the one before, so a flag always wins and a shell
profile can set `SECURECHAT_SERVER` once for every session.
"""

from __future__ import annotations

import os
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
    """OSC 9 / OSC 777 sequences: off by default, as some terminals print them raw."""
    theme: str = "textual-dark"
    full_link_checks: bool = False
    """Check every link in the chat with the full lookup: the URL goes to the relay and to
    VirusTotal/OTX. Off by default: the private check sends only hash prefixes."""
    brands: tuple[str, ...] = ()
    """Domains to protect on top of the scanner's well-known brands (your bank, your
    employer): a link wearing one in front of another site, or imitating its name with
    lookalike letters, warns. SECURECHAT_BRANDS takes them comma-separated."""


_ENV = {
    "server": "SECURECHAT_SERVER",
    "bell": "SECURECHAT_BELL",
    "desktop_notifications": "SECURECHAT_DESKTOP_NOTIFICATIONS",
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
            table = tomllib.loads(path.read_text()).get("tui", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        config = _apply(config, table, str(path))
    from_env = {key: env[name] for key, name in _ENV.items() if name in env}
    config = _apply(config, from_env, "the environment")
    return _apply(config, {k: v for k, v in flags.items() if v is not None}, "the flags")


def _apply(config: TuiConfig, values: Mapping[str, Any], source: str) -> TuiConfig:
    known = {f.name: f for f in fields(TuiConfig)}
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
