"""`securechat-server`: run the relay, issue reset tokens, print statistics."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import sys

from securechat import __version__
from securechat.errors import ConfigError, SecureChatError
from securechat.server import logs, systemd
from securechat.server.config import (
    FIELDS,
    TABLE,
    Loaded,
    ServerConfig,
    check_paths,
    redact,
    resolve,
)

EXIT_OK, EXIT_USAGE, EXIT_ERROR = 0, 2, 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securechat-server", description="The securechat relay: it only ever sees ciphertext."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="where the relay keeps its database")
    common.add_argument("--config", help="TOML file with a [server] table")
    common.add_argument(
        "--store", help="sqlite:PATH or postgresql://... (default: SQLite in the data dir)"
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", parents=[common], help="serve clients (the default)")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--bus", help="redis://host:port/db: connect several relay nodes")
    run.add_argument("--tls-cert", help="PEM certificate chain: serve wss://")
    run.add_argument("--tls-key", help="PEM private key for --tls-cert")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--metrics-listen",
        help="HOST:PORT for /metrics, /healthz, /readyz (default 127.0.0.1:9765); "
        "'public' for the client port, '' for off",
    )
    run.add_argument(
        "--log-format",
        choices=["auto", "json", "logfmt", "text"],
        help="one line per event (default: text on a terminal, JSON otherwise)",
    )
    reset = sub.add_parser(
        "reset-token", parents=[common], help="print a single-use password reset token (30 min)"
    )
    reset.add_argument("username")
    sub.add_parser("stats", parents=[common], help="print counts from the store as JSON")
    scan = sub.add_parser(
        "scan", parents=[common], help="check a link with the relay's blocklists and providers"
    )
    scan.add_argument("url")
    scan.add_argument("--submit", action="store_true", help="let VirusTotal analyse unknown links")
    backup = sub.add_parser(
        "backup", parents=[common], help="copy the database and blobs of a (running) relay"
    )
    backup.add_argument("dest", help="a new or empty directory")
    restore = sub.add_parser(
        "restore", parents=[common], help="put a backup into an empty data directory"
    )
    restore.add_argument("source", help="a directory written by `backup`")
    config = sub.add_parser("config", help="show or check the configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser(
        "show",
        parents=[common],
        help="print the effective configuration and where each value came from",
    )
    show.add_argument("--host")
    show.add_argument("--port", type=int)
    show.add_argument("--bus")
    check = config_sub.add_parser(
        "check", help="validate a TOML file (and SECURECHAT_* variables) without starting"
    )
    check.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if not args_list or (
        args_list[0].startswith("-") and args_list[0] not in {"-h", "--help", "--version"}
    ):
        args_list = ["run", *args_list]
    args = build_parser().parse_args(args_list)
    try:
        loaded = _load(args)
        config = loaded.config
        if args.command == "config":
            if args.config_command == "check":
                check_paths(config, loaded.sources)
                print(f"{args.file}: ok")
            else:
                print(render_sources(loaded), end="")
        elif args.command in {"backup", "restore"}:
            from pathlib import Path

            from securechat.server import backup

            copied = (
                backup.backup(config, Path(args.dest))
                if args.command == "backup"
                else backup.restore(Path(args.source), config)
            )
            print(json.dumps({"database_bytes": copied.database_bytes, "blobs": copied.blobs}))
        elif args.command == "reset-token":
            print(asyncio.run(_reset_token(config, args.username)))
        elif args.command == "scan":
            print(asyncio.run(_scan(config, args.url, args.submit)))
        elif args.command == "stats":
            print(json.dumps(asyncio.run(_stats(config)), indent=2))
        else:
            check_paths(config, loaded.sources)
            logs.configure(
                config.log_level, config.log_format, directory=systemd.logs_directory(os.environ)
            )
            asyncio.run(_run(config))
    except ConfigError as exc:
        print(f"securechat-server: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SecureChatError as exc:
        print(f"securechat-server: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"securechat-server: {where}{exc.strerror or exc}"
            + (" (is another relay running?)" if exc.errno == errno.EADDRINUSE else ""),
            file=sys.stderr,
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _load(args: argparse.Namespace) -> Loaded:
    flags = {
        name: getattr(args, name, None)
        for name in (
            "data_dir",
            "store",
            "host",
            "port",
            "bus",
            "tls_cert",
            "tls_key",
            "log_level",
            "log_format",
            "metrics_listen",
        )
    }
    if args.command == "config" and args.config_command == "check":
        return resolve(args.file)
    return resolve(args.config, overrides=flags)


def render_sources(loaded: Loaded) -> str:
    """TOML an operator can paste back, each line saying which source set it."""
    lines = [f"[{TABLE}]"]
    for name in FIELDS:
        value = getattr(loaded.config, name)
        if name in {"store", "bus"}:
            value = redact(value)
        text = tomli_value(list(value) if isinstance(value, tuple) else value)
        lines.append(f"{name} = {text}  # {loaded.sources[name]}")
    return "\n".join(lines) + "\n"


def tomli_value(value: object) -> str:
    """TOML's literal for a str, int, float, bool or list of str (json's forms coincide)."""
    return json.dumps(value)


async def _run(config: ServerConfig) -> None:
    from securechat.server.app import run_forever

    await run_forever(config)


async def _reset_token(config: ServerConfig, username: str) -> str:
    from securechat.server.accounts import AccountService
    from securechat.server.app import open_store
    from securechat.server.passwords import PasswordHasher

    store = await open_store(config)
    try:
        return await AccountService(store, PasswordHasher(config.bcrypt_cost)).issue_reset_token(
            username
        )
    finally:
        await store.close()


async def _stats(config: ServerConfig) -> dict[str, int]:
    from securechat.server.app import open_store

    store = await open_store(config)
    try:
        return await store.stats()
    finally:
        await store.close()


async def _scan(config: ServerConfig, url: str, submit: bool) -> str:
    from securechat.scanner import Scanner
    from securechat.scanner.report import format_verdict

    scanner = Scanner.from_env(blocklist_paths=config.blocklists)
    try:
        verdict = await scanner.scan(url, requester="operator", full_lookup=True, submit=submit)
    finally:
        await scanner.aclose()
    return format_verdict(verdict)


if __name__ == "__main__":
    sys.exit(main())
