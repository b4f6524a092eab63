"""The daemon's asyncio shell: one unlocked `ChatClient`, many JSON-RPC clients.

Listening, reading lines and writing answers happen here; what a line means is
`rpc.py`'s business and what a method does is `methods.py`'s.

Nothing a subscriber should see is held in memory on its behalf. Messages and
file offers are read from the vault by message id, so a client that is slow,
gone or restarted resumes from its cursor and loses nothing; the pump only
wakes the readers. Other notifications (receipts, presence, key changes) are
queued per client up to `max_queued`; a client that falls further behind, or
does not take a write within `write_timeout` seconds, is dropped and the rest
keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import socket
import stat
import sys
from collections import deque
from pathlib import Path
from typing import Any

from securechat.client.api import ChatAPI
from securechat.client.events import FileOffered, MessageReceived
from securechat.client.render import describe
from securechat.daemon import rpc
from securechat.daemon.methods import METHODS, PARAMS, AuthParams, as_rpc_error
from securechat.errors import ConfigError

log = logging.getLogger("securechat.daemon")

READ_CHUNK = 64 * 1024
PAGE = 200
IN_FLIGHT = 8
"""Requests one client may have running at once; reading its next line waits beyond that."""


class Daemon:
    def __init__(
        self,
        client: ChatAPI,
        *,
        token: str | None = None,
        max_queued: int = 1000,
        write_timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.token = token
        self.max_queued = max_queued
        self.write_timeout = write_timeout
        self.connections: set[Connection] = set()
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(self._forward_events())

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        for connection in list(self.connections):
            connection.drop("the daemon is stopping")

    async def _forward_events(self) -> None:
        while True:
            event = await self.client.events.get()
            if isinstance(event, MessageReceived | FileOffered):
                for connection in list(self.connections):
                    connection.wake()
                continue
            described = describe(event)
            if described is not None:
                note = rpc.notification("receive", described.fields)
                for connection in list(self.connections):
                    connection.push(note)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client, from its first byte to its last; `token` gates TCP clients."""
        connection = Connection(self, reader, writer, authorised=self.token is None)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            connection.drop("")


class Connection:
    """One JSON-RPC client: its requests, its subscription cursor and its queue."""

    def __init__(
        self,
        daemon: Daemon,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        authorised: bool,
    ) -> None:
        self.daemon = daemon
        self.reader = reader
        self.writer = writer
        self.authorised = authorised
        self.cursor: int | None = None
        self.queued: deque[bytes] = deque()
        self.closed = False
        self._wakeup = asyncio.Event()
        self._feeder: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        splitter = rpc.LineSplitter()
        while not self.closed:
            try:
                data = await self.reader.read(READ_CHUNK)
            except (ConnectionError, OSError):
                return
            if not data:
                break
            try:
                lines = splitter.feed(data)
            except rpc.LineTooLong as exc:
                await self.send(rpc.error(None, exc))
                self.drop("request too large")
                return
            for line in lines:
                await self._slots.acquire()
                task = asyncio.get_running_loop().create_task(self._handle(line))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        # Answer what is still running before the connection goes (stdin closed, say).
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _handle(self, line: bytes) -> None:
        try:
            incoming = rpc.parse(line, PARAMS)
            replies = [reply for item in incoming.items if (reply := await self._answer(item))]
            if incoming.batch:
                await self.send(rpc.batch(replies))
            elif replies:
                await self.send(replies[0])
        finally:
            self._slots.release()

    async def _answer(self, item: rpc.Call | rpc.Failed) -> bytes | None:
        if isinstance(item, rpc.Failed):
            return None if item.notification else rpc.error(item.id, item.error)
        try:
            value = await self._call(item)
        except Exception as exc:  # every failure becomes an error object; bugs are logged
            return None if item.notification else rpc.error(item.id, as_rpc_error(exc))
        return None if item.notification else rpc.result(item.id, value)

    async def _call(self, call: rpc.Call) -> object:
        if call.method == "auth":
            assert isinstance(call.params, AuthParams)
            return self._authorise(call.params.token)
        if not self.authorised:
            raise rpc.RpcError(rpc.LOCKED, "send `auth` with the daemon's token first", "auth")
        method = METHODS[call.method]
        return await method.handler(self.daemon.client, self, call.params)

    def _authorise(self, token: str) -> dict[str, Any]:
        expected = self.daemon.token
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            # One guess per connection: a wrong token ends it.
            asyncio.get_running_loop().call_soon(self.drop, "wrong token")
            raise rpc.RpcError(rpc.LOCKED, "wrong token", "auth")
        self.authorised = True
        return {}

    # --- writing -------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Writes one answer; a client that does not take it in time is dropped."""
        if self.closed or not data:
            return
        self.writer.write(data)
        try:
            await asyncio.wait_for(self.writer.drain(), self.daemon.write_timeout)
        except TimeoutError:
            self.drop("the client stopped reading", at_once=True)
        except (ConnectionError, OSError):
            self.drop("")

    def drop(self, why: str, *, at_once: bool = False) -> None:
        """Ends the connection; `at_once` discards what a stalled client would never take."""
        if self.closed:
            return
        self.closed = True
        if why:
            log.warning("dropped a client: %s", why)
        if self._feeder is not None:
            self._feeder.cancel()
        if at_once:
            self.writer.transport.abort()
        else:
            self.writer.close()

    # --- notifications ---------------------------------------------------------------

    def subscribe(self, after: int) -> None:
        self.cursor = after
        if self._feeder is None:
            self._feeder = asyncio.get_running_loop().create_task(self._feed())
        self._wakeup.set()

    def unsubscribe(self) -> None:
        self.cursor = None
        self.queued.clear()
        if self._feeder is not None:
            self._feeder.cancel()
            self._feeder = None

    def wake(self) -> None:
        if self.cursor is not None:
            self._wakeup.set()

    def push(self, note: bytes) -> None:
        if self.cursor is None:
            return
        if len(self.queued) >= self.daemon.max_queued:
            self.drop("the client fell too far behind", at_once=True)
            return
        self.queued.append(note)
        self._wakeup.set()

    async def _feed(self) -> None:
        """Sends what the vault received after the cursor, page by page, then the queue."""
        client = self.daemon.client
        while not self.closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self.cursor is not None and not self.closed:
                events, last = client.received_after(self.cursor, PAGE)
                for event in events:
                    described = describe(event)
                    if described is not None:
                        await self.send(rpc.notification("receive", described.fields))
                while self.queued and not self.closed:
                    await self.send(self.queued.popleft())
                if last == self.cursor:
                    break
                self.cursor = last


# --- listeners -------------------------------------------------------------------


def token_from_file(path: str | os.PathLike[str]) -> str:
    """The TCP token, from a file only its owner can read (like ssh's keys)."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
        token = file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {file}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{file} is readable by others: chmod 600 it")
    if len(token) < 16:
        raise ConfigError(f"the token in {file} is too short: use 16 characters or more")
    return token


async def listen_unix(daemon: Daemon, path: Path) -> asyncio.Server:
    """A socket only its owner can use: mode 0600, in a directory of mode 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _clear_stale(path)
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(daemon.serve, path, limit=rpc.MAX_LINE)
    finally:
        os.umask(old_umask)
    path.chmod(0o600)
    return server


def _clear_stale(path: Path) -> None:
    """A socket left by a daemon that died is removed; a live daemon's is not."""
    if not path.exists():
        return
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise ConfigError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise ConfigError(f"a daemon already listens on {path}")


async def listen_tcp(daemon: Daemon, host: str, port: int) -> asyncio.Server:
    if daemon.token is None:
        raise ConfigError("--tcp needs --token-file: any local user can reach a TCP port")
    return await asyncio.start_server(daemon.serve, host, port, limit=rpc.MAX_LINE)


async def serve_stdio(daemon: Daemon) -> None:
    """Requests on stdin, answers and notifications on stdout, until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=rpc.MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    with contextlib.suppress(ConnectionError):
        await daemon.serve(reader, writer)
