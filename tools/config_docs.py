"""Writes docs/configuration.md from `ServerConfig`, so the reference cannot drift from the code.

python -m tools.config_docs            # rewrite docs/configuration.md
python -m tools.config_docs --check    # exit 1 if it is stale (tests/server/test_config.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from securechat.server.config import ENV_PREFIX, FIELDS, TABLE

COMPUTED = {"bcrypt_workers": "CPUs, at most 256"}
"""Defaults that depend on the machine: the page must read the same wherever it is built."""

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

HEADER = f"""# Relay configuration

<!-- Generated from src/securechat/server/config.py by `python -m tools.config_docs`. -->

Every setting can come from four places; a later one wins:

1. its default (below); under systemd, StateDirectory= (`STATE_DIRECTORY`) replaces
   `data_dir`'s;
2. the `[{TABLE}]` table of a TOML file given with `--config FILE` (without it, `relay.toml` in
   systemd's ConfigurationDirectory=, `CONFIGURATION_DIRECTORY`, if there is one);
3. an environment variable `{ENV_PREFIX}<NAME>` (lists are comma-separated);
4. a command-line flag, for the few that have one (`--port`, `--host`, `--data-dir`, `--store`,
   `--bus`, `--tls-cert`, `--tls-key`, `--log-level`, `--log-format`, `--metrics-listen`).

A value of the wrong type or out of range, an unknown table or key, or a malformed store or bus
URL stops the relay with one line naming the setting and where it came from (file and line,
variable or flag), and exit code 2. `securechat-server config check FILE` validates a file
without starting; `securechat-server config show` prints the effective configuration with the
source of each value (passwords in URLs shown as `***`). examples/relay.toml is a starting point.

| Setting | Type | Default | Environment | Meaning |
| --- | --- | --- | --- | --- |
"""


def render() -> str:
    rows = []
    for name, field in FIELDS.items():
        meta = _meta(field.type)
        default = COMPUTED.get(name, f"`{json.dumps(_plain(field.default))}`")
        rows.append(
            f"| `{name}` | {_type_text(field.type, meta)} | {default} "
            f"| `{ENV_PREFIX}{name.upper()}` | {meta.get('description', '')} |"
        )
    return HEADER + "\n".join(rows) + "\n"


def _info(kind: Any) -> msgspec.inspect.Type:
    info = msgspec.inspect.type_info(kind)
    return info.type if isinstance(info, msgspec.inspect.Metadata) else info


def _meta(kind: Any) -> dict[str, Any]:
    info = _info(kind)
    found: dict[str, Any] = {}
    for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
        value = getattr(info, attr, None)
        if value is not None:
            found[attr] = value
    description = getattr(kind, "__metadata__", (None,))[0]
    if isinstance(description, msgspec.Meta) and description.description:
        found["description"] = description.description
    return found


def _type_text(kind: Any, meta: dict[str, Any]) -> str:
    info = _info(kind)
    if isinstance(info, msgspec.inspect.LiteralType):
        return " \\| ".join(f"`{v}`" for v in info.values)
    if isinstance(info, msgspec.inspect.VarTupleType):
        return "list of paths"
    base = {
        msgspec.inspect.IntType: "integer",
        msgspec.inspect.FloatType: "number",
        msgspec.inspect.StrType: "string",
    }.get(type(info), type(info).__name__)
    bounds = []
    for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if attr in meta:
            bounds.append(f"{symbol} {_number(meta[attr])}")
    if "pattern" in meta:
        bounds.append(f"matching `{meta['pattern']}`")
    if "max_length" in meta:
        bounds.append(f"at most {meta['max_length']} characters")
    if meta.get("min_length") == 1:
        bounds.append("not empty")
    return base + (f" ({', '.join(bounds)})" if bounds else "")


def _number(value: float) -> str:
    return f"{value:,}".replace(",", "_") if isinstance(value, int) else f"{value:g}"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python -m tools.config_docs", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
