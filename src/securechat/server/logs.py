"""The relay's log lines: one line per event in JSON, logfmt or text, UTC ISO-8601 times.

One line per event, exceptions included, so journald, a log shipper or grep
never splits a traceback into events of its own. JSON is the default off a
terminal (for machines), text on one (for people).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import Literal, TextIO

LogFormat = Literal["auto", "json", "logfmt", "text"]


def timestamp(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, str]:
    fields = {
        "ts": timestamp(record),
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        fields["exc"] = record.exc_text
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(self, record), ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(self, record).items())


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(self, record)
        line = f"{fields['ts']} {fields['level']:<7} {fields['logger']}: {fields['msg']}"
        if "exc" in fields:
            line += " | " + fields["exc"].replace("\n", " | ")
        return line.replace("\n", "\\n")


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' ="\\\n\t'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t")
    return '"' + escaped + '"'


FORMATTERS: dict[str, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "logfmt": LogfmtFormatter,
    "text": TextFormatter,
}


def configure(
    level: str, fmt: LogFormat, stream: TextIO | None = None, directory: Path | None = None
) -> None:
    """Root logging for the relay process; `auto` is text on a terminal and JSON otherwise.

    With a directory (systemd's LogsDirectory=), JSON lines also go to relay.log there,
    reopened when logrotate moves it."""
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if out.isatty() else "json"
    handler = logging.StreamHandler(out)
    handler.setFormatter(FORMATTERS[fmt]())
    handlers: list[logging.Handler] = [handler]
    if directory is not None:
        to_file = WatchedFileHandler(directory / "relay.log", encoding="utf-8")
        to_file.setFormatter(JsonFormatter())
        handlers.append(to_file)
    logging.basicConfig(level=level, handlers=handlers, force=True)
    logging.getLogger("websockets").setLevel(logging.WARNING)
