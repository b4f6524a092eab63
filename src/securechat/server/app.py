"""The relay process: wiring, lifecycle (start, housekeeping, shutdown) and HTTP.

`RelayServer` builds every service and hands each only what it uses: a
connection gets the relay, the dispatcher and its limits, never the server.
Nothing imports this module but the CLI, so dependencies in `server/` point
one way: app -> dispatch -> (accounts, directory, relay, files, ...) and
connection -> relay.
"""

from __future__ import annotations

import asyncio
import gc
import http
import json
import logging
import signal
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from securechat import __version__, paths
from securechat.errors import ConfigError
from securechat.protocol import frames as F
from securechat.protocol.limits import MAX_FRAME_BYTES, SUBPROTOCOL
from securechat.scanner import Scanner
from securechat.server import systemd
from securechat.server.accounts import AccountService, login_policy, reset_policy
from securechat.server.bus import Bus, LocalBus, RedisBus
from securechat.server.config import PUBLIC, ServerConfig, listen_address, redact
from securechat.server.connection import Connection, RelaySocket, TurnWriter
from securechat.server.directory import Directory
from securechat.server.dispatch import Dispatcher
from securechat.server.fanout import Fanout
from securechat.server.files import FileService
from securechat.server.groups import GroupLimits, GroupService
from securechat.server.metrics import Health, Metrics, exposition, registry_for
from securechat.server.passwords import PasswordHasher
from securechat.server.ratelimit import KNOWN_ADDRESS_TTL, FailureLimiter
from securechat.server.relay import Relay
from securechat.server.revocation import Revocations
from securechat.server.scanning import ScanService, StoreVerdictCache
from securechat.server.store import Store
from securechat.server.store.sqlite import SQLiteStore

log = logging.getLogger("securechat.server")

_websocket_log = logging.getLogger("securechat.server.websocket")
_websocket_log.setLevel(logging.WARNING)
"""websockets logs whole frames at DEBUG: they hold passwords. Never below WARNING."""

REPORT_INTERVAL = 60.0


async def open_store(config: ServerConfig) -> Store:
    """The store the configuration names: SQLite by default, or PostgreSQL."""
    if config.store.startswith(("postgresql://", "postgres://")):
        from securechat.server.store.postgres import PostgresStore

        return await PostgresStore.connect(config.store)
    return open_sqlite_store(config)


def open_sqlite_store(config: ServerConfig) -> SQLiteStore:
    if config.store.startswith("sqlite:"):
        return SQLiteStore(Path(config.store.removeprefix("sqlite:")))
    if config.store:
        raise ConfigError(
            f"unsupported store {config.store!r}: use sqlite:PATH or postgresql://..."
        )
    return SQLiteStore(paths.server_dir(config.data_dir or None) / "relay.sqlite3")


def open_bus(config: ServerConfig, local_users: Callable[[], Iterable[str]]) -> Bus:
    if not config.bus:
        return LocalBus()
    if not config.bus.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"unsupported bus {config.bus!r}: use redis://host:port/db")
    return RedisBus(config.bus, config.bus_prefix, config.node_id or None, local_users)


class RelayServer:
    def __init__(
        self,
        config: ServerConfig,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        scanner: Scanner | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store if store is not None else open_sqlite_store(config)
        self.metrics = Metrics()
        self.hasher = PasswordHasher(config.bcrypt_cost, config.bcrypt_workers)
        self.bus = open_bus(config, lambda: list(self.relay.online))
        login_limiter, reset_limiter = _shared_limiters(self.bus)
        self.accounts = AccountService(
            self.store,
            self.hasher,
            session_ttl=config.session_ttl,
            clock=clock,
            login_limiter=login_limiter,
            reset_limiter=reset_limiter,
        )
        self.relay = Relay(
            self.store,
            self.metrics,
            queue_max_count=config.queue_max_count,
            queue_max_bytes=config.queue_max_bytes,
            clock=clock,
            bus=self.bus,
            commit_delay=config.commit_delay,
            batches_in_flight=1 if self.store.answers_at_once else 2,
        )
        self.revocations = Revocations(self.relay, self.accounts, self.bus)
        self.files = FileService(
            self.store,
            Path(config.blob_dir)
            if config.blob_dir
            else paths.server_dir(config.data_dir or None) / "blobs",
            quota_bytes=config.file_quota_bytes,
            quota_files=config.file_quota_files,
            ttl=config.file_ttl,
            clock=clock,
        )
        self.scans = ScanService(
            scanner
            or Scanner.from_env(
                blocklist_paths=config.blocklists, cache=StoreVerdictCache(self.store, clock)
            ),
            config.scan_rate_per_minute,
            clock,
        )
        self.directory = Directory(self.store, lambda user: self.relay.online.get(user, ()))
        self.groups = GroupService(
            self.store,
            Fanout(self.store, self.relay, clock, config.group_commit_delay),
            GroupLimits(
                max_members=config.group_max_members,
                max_per_user=config.group_max_per_user,
                commits_kept=config.group_commits_kept,
                welcome_max_bytes=config.group_welcome_max_bytes,
            ),
            self.files,
            clock,
        )
        self.dispatcher = Dispatcher(
            accounts=self.accounts,
            relay=self.relay,
            revocations=self.revocations,
            directory=self.directory,
            groups=self.groups,
            files=self.files,
            scans=self.scans,
            store=self.store,
            metrics=self.metrics,
            max_connections_per_user=config.max_connections_per_user,
        )
        self.registry = registry_for(
            self.metrics,
            Health(
                store_ok=lambda: self.relay.store_ok,
                bus_ok=lambda: self.bus.healthy,
                commit_backlog=lambda: self.relay.awaiting_commit,
            ),
        )
        self._server: Server | None = None
        self._metrics_server: Server | None = None
        self._connections: set[Connection] = set()
        self.turn_writer = TurnWriter()
        self._inline: frozenset[type[F.ClientFrame]] = (
            frozenset({F.Send, F.Ack})
            if self.store.answers_at_once and not self.bus.shared
            else frozenset({F.Ack})
        )
        """Frames handled in the callback that read them (`Connection._on_message`):
        `send` only where nothing on its path waits (one node on SQLite)."""
        self._janitor: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self.stopped = asyncio.Event()

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        # Built now, not by the first unknown name, which would otherwise take twice as
        # long as a known one and tell that it is unknown.
        await self.hasher.prepare()
        tls = None
        if self.config.tls_cert:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(self.config.tls_cert, self.config.tls_key or None)
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            ssl=tls,
            compression=None,
            max_size=MAX_FRAME_BYTES,
            max_queue=64,
            open_timeout=self.config.open_timeout,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            # A peer that answers no ping will not answer a close either: waiting the
            # default 10 s for it would keep it "online" to its contacts that long.
            close_timeout=self.config.ping_timeout,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=self._http,
            server_header="securechat",
            logger=_websocket_log,
            create_connection=RelaySocket,
        )
        if self.config.metrics_listen not in {"", PUBLIC}:
            host, port = listen_address(self.config.metrics_listen)
            self._metrics_server = await serve(
                self._refuse,
                host,
                port,
                process_request=self._http_operator,
                server_header="securechat",
                logger=_websocket_log,
            )
        self._janitor = asyncio.create_task(self._expire_loop())
        await self.bus.start(
            self.relay.remote_wake,
            self.relay.remote_presence,
            self.revocations.heard,
            self.relay.remote_watch,
        )
        self._poller = asyncio.create_task(self._poll_while_bus_down())
        self._checkpointer = asyncio.create_task(self._checkpoint_loop())
        self._reporter = asyncio.create_task(self._report_loop())
        log.info("%s", self._summary(tls is not None))

    def _summary(self, tls: bool) -> str:
        """The start-up line: what an operator checks first when something is off."""
        config = self.config
        store = (
            redact(config.store) if config.store else f"sqlite:{getattr(self.store, 'path', '?')}"
        )
        metrics = {"": "off", PUBLIC: "on the client port"}.get(
            config.metrics_listen, f"{config.metrics_listen.rsplit(':', 1)[0]}:{self.metrics_port}"
        )
        return (
            f"securechat-server {__version__} listening on {config.host}:{self.port} "
            f"(TLS {'on' if tls else 'off'}); metrics {metrics}; store {store}; "
            f"bus {redact(config.bus) if config.bus else 'none (one node)'}; "
            f"data dir {paths.server_dir(config.data_dir or None)}"
        )

    async def _report_loop(self) -> None:
        """Connection counts once a minute at INFO: enough to see load and leaks in the log."""
        accepted = self.metrics.connections_accepted
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            log.info(
                "connections: %d open, %d users online, %d accepted in the last minute",
                self.metrics.connections_open,
                len(self.relay.online),
                self.metrics.connections_accepted - accepted,
            )
            accepted = self.metrics.connections_accepted

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def metrics_port(self) -> int | None:
        """The operator listener's port (`metrics_listen`), or None when it is off."""
        if self._metrics_server is None:
            return None
        return int(next(iter(self._metrics_server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        """Stops accepting, stores what was accepted, closes every connection and the store."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        if self._metrics_server is not None:
            self._metrics_server.close()
            await self._metrics_server.wait_closed()
            self._metrics_server = None
        for task in (self._janitor, self._poller, self._checkpointer, self._reporter):
            if task:
                task.cancel()
        await self.groups.fanout.drain()
        await self.relay.drain()
        for conn in list(self._connections):
            await conn.ws.close(1001, "relay shutting down")
        await self._server.wait_closed()
        await self.groups.fanout.drain()
        await self.relay.drain()
        await self.scans.close()
        await self.bus.close()
        await self.store.close()
        self.hasher.close()
        self._server = None
        self.stopped.set()
        log.info(
            "relay stopped: %d envelopes accepted and %d delivered since start",
            self.metrics.envelopes_accepted,
            self.metrics.envelopes_delivered,
        )

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(3600)
            try:
                removed = await self.store.expire_envelopes(self.clock() - self.config.queue_ttl)
                await self.store.expire_throttle(self.clock() - KNOWN_ADDRESS_TTL)
                files = await self.files.expire()
                self.relay.forget_usage()
                if removed or files:
                    log.info("expired %d envelopes and %d files past their TTL", removed, files)
            except Exception:
                log.exception("expiry pass failed")

    async def _checkpoint_loop(self) -> None:
        """Store housekeeping in a thread every second, so no commit on the loop pays for it;
        then a probe, so readiness follows the store even while nobody sends. A write batch
        committed since the last round, the last one included, proves as much (a failed one
        marks the store down at once): a probe then would only add a connection and a
        transaction a second to a busy relay."""
        seen = self.relay.commits
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.store.checkpoint()
                if self.relay.commits == seen or not self.relay.store_ok:
                    await self.store.ping()
                seen = self.relay.commits
            except Exception as exc:
                self._store_health(False, exc)
            else:
                self._store_health(True)

    def _store_health(self, ok: bool, exc: BaseException | None = None) -> None:
        """One line when the store stops answering and one when it is back, not one a second."""
        if ok and not self.relay.store_ok:
            log.info("store is writable again")
        elif not ok and self.relay.store_ok:
            log.error("store cannot commit (%s); /readyz fails until it can", _reason(exc))
        self.relay.store_ok = ok

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """What /readyz answers: each dependency `ok` or `down`."""
        parts = {
            "store": "ok" if self.relay.store_ok else "down",
            "bus": "ok" if self.bus.healthy else "down",
        }
        return all(v == "ok" for v in parts.values()), parts

    async def _poll_while_bus_down(self) -> None:
        """Store-and-forward while Redis is unreachable; when it returns, one catch-up poll,
        and a check of what may have gone unheard meanwhile (resets, deletions)."""
        sessions_unchecked = False
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                recovered = isinstance(self.bus, RedisBus) and self.bus.recovered.is_set()
                if recovered and isinstance(self.bus, RedisBus):
                    self.bus.recovered.clear()
                    self.relay.forget_usage()
                    sessions_unchecked = True
                if sessions_unchecked:
                    sessions_unchecked = not await self.revocations.check_all()
                if not self.bus.healthy or recovered:
                    for user in list(self.relay.online):
                        self.relay.remote_wake(user, [])
            except Exception:
                log.exception("store-and-forward poll failed; will retry")

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return _text(http.HTTPStatus.OK, "ok\n")
        if request.path == "/readyz":
            return self._ready_response()
        if request.path == "/metrics" and self.config.metrics_listen == PUBLIC:
            return self._metrics_response(request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _text(http.HTTPStatus.NOT_FOUND, "securechat relay: connect with a websocket\n")
        if len(self._connections) >= self.config.max_connections:
            return _text(http.HTTPStatus.SERVICE_UNAVAILABLE, "relay is full; retry later\n")
        return None

    def _http_operator(self, conn: ServerConnection, request: Request) -> Response:
        """The operator listener answers plain HTTP only: metrics and health."""
        if request.path == "/metrics":
            return self._metrics_response(request)
        if request.path == "/healthz":
            return _text(http.HTTPStatus.OK, "ok\n")
        if request.path == "/readyz":
            return self._ready_response()
        return _text(http.HTTPStatus.NOT_FOUND, "securechat relay: /metrics, /healthz, /readyz\n")

    def _ready_response(self) -> Response:
        """503 with what is down while the store cannot commit or the bus is unreachable:
        a load balancer sends new clients elsewhere, while /healthz (liveness) stays 200."""
        ready, parts = self.readiness()
        status = http.HTTPStatus.OK if ready else http.HTTPStatus.SERVICE_UNAVAILABLE
        body = json.dumps({"ready": ready, **parts}) + "\n"
        headers = Headers([("Content-Type", "application/json")])
        return Response(status.value, status.phrase, headers, body.encode())

    def _metrics_response(self, request: Request) -> Response:
        body, content_type = exposition(self.registry, request.headers.get("Accept", ""))
        headers = Headers([("Content-Type", content_type)])
        return Response(http.HTTPStatus.OK.value, http.HTTPStatus.OK.phrase, headers, body)

    async def _refuse(self, ws: ServerConnection) -> None:
        await ws.close(1008, "this is the operator listener: clients connect to the relay port")

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.subprotocol != SUBPROTOCOL:
            await ws.close(1002, f"speak subprotocol {SUBPROTOCOL}")
            return
        assert isinstance(ws, RelaySocket)  # serve(create_connection=RelaySocket)
        conn = Connection(
            ws,
            relay=self.relay,
            dispatch=self.dispatcher.dispatch,
            turn_writer=self.turn_writer,
            metrics=self.metrics,
            clock=self.clock,
            frame_rate=self.config.frame_rate,
            frame_burst=self.config.frame_burst,
            auth_timeout=self.config.auth_timeout,
            inline=self._inline,
        )
        self._connections.add(conn)
        self.metrics.connections_open += 1
        self.metrics.connections_accepted += 1
        try:
            await conn.serve()
        finally:
            self._connections.discard(conn)
            self.metrics.connections_open -= 1


def _shared_limiters(bus: Bus) -> tuple[FailureLimiter | None, FailureLimiter | None]:
    """Login and reset back-off held in Redis when nodes share a bus."""
    if not isinstance(bus, RedisBus):
        return None, None
    from securechat.server.redis_limits import RedisFailureLimiter

    return (
        RedisFailureLimiter(bus.client, f"{bus.prefix}:login", login_policy()),
        RedisFailureLimiter(bus.client, f"{bus.prefix}:reset", reset_policy()),
    )


def _reason(exc: BaseException | None) -> str:
    """The exception's class and message, minus anything after a newline (drivers add SQL)."""
    if exc is None:
        return "unknown"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def _text(status: http.HTTPStatus, body: str) -> Response:
    headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
    return Response(status.value, status.phrase, headers, body.encode())


async def run_forever(config: ServerConfig) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down cleanly."""
    server = RelayServer(config, await open_store(config))
    await server.start()
    # Everything alive now lives as long as the process (modules, configuration, the
    # metrics registry, the store): out of the collector's sight, a full collection
    # under load no longer walks it. Measured: 0.91x relay CPU per message
    # (bench/README.md, "Budgets settled on a quiet machine").
    gc.freeze()
    systemd.notify(f"READY=1\nSTATUS=listening on port {server.port}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    systemd.notify("STOPPING=1\nSTATUS=draining")
    log.info("signal received: draining connections and storing what was accepted")
    await server.stop()
