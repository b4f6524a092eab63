"""Backups of a SQLite relay taken while it runs, and their restore into an empty data dir.

The database is copied with SQLite's online backup API, which reads one
consistent snapshot while the relay keeps committing; the blob directory is
copied after it. Blobs only grow by appends until they are deleted, so every
blob the snapshot knows has at least the bytes the snapshot records (a blob
deleted meanwhile is skipped: its row in the snapshot then points at nothing,
which a fetch reports as gone, as it would after expiry). PostgreSQL has its
own tools (pg_dump); this refuses it rather than copying half a cluster.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from securechat import __version__, paths
from securechat.errors import ConfigError, StoreError
from securechat.server.config import ServerConfig

DATABASE = "relay.sqlite3"
BLOBS = "blobs"
MANIFEST = "securechat-backup.json"
FORMAT = 1


@dataclass(frozen=True)
class Copied:
    database_bytes: int
    blobs: int


def database_path(config: ServerConfig) -> Path:
    if config.store.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "backup copies a SQLite relay; for PostgreSQL use pg_dump and copy blob_dir"
        )
    if config.store.startswith("sqlite:"):
        return Path(config.store.removeprefix("sqlite:"))
    return paths.server_dir(config.data_dir or None) / DATABASE


def blob_path(config: ServerConfig) -> Path:
    if config.blob_dir:
        return Path(config.blob_dir)
    return paths.server_dir(config.data_dir or None) / BLOBS


def backup(config: ServerConfig, dest: Path) -> Copied:
    """Copies the running relay's database, then its blobs, into `dest` (new or empty)."""
    source = database_path(config)
    if not source.is_file():
        raise StoreError(f"no relay database at {source}")
    _require_empty(dest, "backup destination")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as live,
        contextlib.closing(sqlite3.connect(dest / DATABASE)) as copy,
    ):
        live.backup(copy)
    blobs = _copy_blobs(blob_path(config), dest / BLOBS)
    manifest = {"format": FORMAT, "version": __version__, "created_at": time.time()}
    (dest / MANIFEST).write_text(json.dumps(manifest) + "\n")
    return Copied((dest / DATABASE).stat().st_size, blobs)


def restore(source: Path, config: ServerConfig) -> Copied:
    """Puts a backup in place of an empty data directory; the relay must not be running."""
    manifest = source / MANIFEST
    try:
        fmt = json.loads(manifest.read_text())["format"]
    except (OSError, ValueError, KeyError, TypeError):
        raise StoreError(f"{source} is not a securechat backup (no readable {MANIFEST})") from None
    if fmt != FORMAT:
        raise StoreError(f"{source} is backup format {fmt}; this relay reads format {FORMAT}")
    target = database_path(config)
    blobs = blob_path(config)
    if target.exists():
        raise StoreError(f"{target} exists: restore only into an empty data directory")
    _require_empty(blobs, "blob directory")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (
        contextlib.closing(sqlite3.connect(source / DATABASE)) as saved,
        contextlib.closing(sqlite3.connect(target)) as fresh,
    ):
        saved.backup(fresh)
    count = _copy_blobs(source / BLOBS, blobs)
    return Copied(target.stat().st_size, count)


def _require_empty(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StoreError(f"{what} {path} is not empty")


def _copy_blobs(source: Path, dest: Path) -> int:
    """Each blob directory's files, its index before its data (appends only grow the data,
    so the copy holds every byte its index names); one deleted while copying is left out."""
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not source.is_dir():
        return 0
    count = 0
    for blob in sorted(source.iterdir()):
        if not blob.is_dir():
            continue
        try:
            (dest / blob.name).mkdir(mode=0o700)
            names = sorted((p.name for p in blob.iterdir()), key=lambda n: n != "index")
            for name in names:
                shutil.copy2(blob / name, dest / blob.name / name)
        except FileNotFoundError:
            shutil.rmtree(dest / blob.name, ignore_errors=True)
            continue
        count += 1
    return count
