"""The daemon's life: unlock once, listen, serve until a signal (or stdin's end), clean up."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from securechat import paths
from securechat.client.api import ChatAPI
from securechat.daemon.server import (
    Daemon,
    listen_tcp,
    listen_unix,
    serve_stdio,
    token_from_file,
)
from securechat.errors import ConfigError

log = logging.getLogger("securechat.daemon")


@dataclass(frozen=True, slots=True)
class Listen:
    """Exactly one of: a Unix socket (the default), stdio, or loopback TCP."""

    socket: Path | None = None
    stdio: bool = False
    tcp: tuple[str, int] | None = None
    token_file: str | None = None


def parse_tcp(value: str) -> tuple[str, int]:
    """`127.0.0.1:PORT` or `[::1]:PORT`: a loopback address, never a name or a wildcard."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise ConfigError(f"--tcp wants a loopback ADDRESS:PORT, not {value!r}") from exc
    if not address.is_loopback:
        raise ConfigError("--tcp listens on loopback only (127.0.0.1 or ::1)")
    if not 0 <= number <= 65535:
        raise ConfigError(f"no port {number}")
    return host, number


async def run(client: ChatAPI, username: str, password: str, listen: Listen) -> None:
    """Serves until SIGTERM/SIGINT; the caller has connected `client` and maps errors to exits."""
    token = token_from_file(listen.token_file) if listen.token_file else None
    if listen.tcp is not None and token is None:
        raise ConfigError("--tcp needs --token-file: any local user can reach a TCP port")
    await client.unlock_and_resume(username, password)
    daemon = Daemon(client, token=token)
    daemon.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server: asyncio.Server | None = None
    socket_path: Path | None = None
    try:
        if listen.stdio:
            stdio = loop.create_task(serve_stdio(daemon))
            stopping = loop.create_task(stop.wait())
            await asyncio.wait({stdio, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            stdio.cancel()
            return
        if listen.tcp is not None:
            server = await listen_tcp(daemon, *listen.tcp)
            where = "tcp {}:{}".format(*server.sockets[0].getsockname()[:2])
        else:
            socket_path = listen.socket or paths.daemon_socket(username)
            server = await listen_unix(daemon, socket_path)
            where = str(socket_path)
        print(f"securechat daemon for {username}: listening on {where}", file=sys.stderr)
        await stop.wait()
    finally:
        if server is not None:
            server.close()
        await daemon.close()
        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
