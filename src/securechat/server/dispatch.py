"""Which handler answers each client frame, and the gate in front of them.

One table maps a frame type to its handler. Frames that carry credentials
(`register`, `login`, `resume`, `reset_password`) are answered on any
connection; every other frame needs one that is logged in, and its handler
is given the user the connection acts for, so no handler can forget to
check. The handlers here are glue: what they do lives in accounts, relay,
directory, groups, files, scanning and revocation. A new frame is one line in the
table and, unless a service's method fits as it is, one handler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol import group_frames as G
from securechat.protocol.codec import encode_bulk, encode_str
from securechat.protocol.errors import ErrorCode
from securechat.server.accounts import AccountService, normalise_username
from securechat.server.connection import Connection
from securechat.server.directory import Directory
from securechat.server.files import FileService
from securechat.server.groups import GroupService
from securechat.server.metrics import Metrics
from securechat.server.relay import Relay
from securechat.server.revocation import Revocations
from securechat.server.scanning import ScanService
from securechat.server.store import Store

log = logging.getLogger("securechat.server")

_Frame = TypeVar("_Frame")
_Public = Callable[[Connection, Any], Awaitable[None]]
_Authenticated = Callable[[Connection, str, Any], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        *,
        accounts: AccountService,
        relay: Relay,
        revocations: Revocations,
        directory: Directory,
        groups: GroupService,
        files: FileService,
        scans: ScanService,
        store: Store,
        metrics: Metrics,
        max_connections_per_user: int,
    ) -> None:
        self.accounts = accounts
        self.relay = relay
        self.revocations = revocations
        self.directory = directory
        self.groups = groups
        self.files = files
        self.scans = scans
        self.store = store
        self.metrics = metrics
        self.max_connections_per_user = max_connections_per_user
        self._public: dict[type[Any], _Public] = {}
        self._authenticated: dict[type[Any], _Authenticated] = {}
        # Only this object's methods, which look the services up per frame: a service
        # replaced after start (tests play a hostile relay by replacing `relay.submit`)
        # is the one called.
        self._anyone(F.Register, self._register)
        self._anyone(F.Login, self._login)
        self._anyone(F.Resume, self._resume)
        self._anyone(F.ResetPassword, self._reset_password)
        self._user(F.Send, self._send)
        self._user(F.Ack, self._ack)
        self._user(F.Logout, self._logout)
        self._user(F.Watch, self._watch)
        self._user(F.PublishKeys, self._publish_keys)
        self._user(F.FetchBundle, self._fetch_bundle)
        self._user(F.DeleteConversation, self._delete_conversation)
        self._user(F.DeleteAccount, self._delete_account)
        self._user(F.FileBegin, self._file_begin)
        self._user(F.FileChunk, self._file_chunk)
        self._user(F.FileStatus, self._file_status)
        self._user(F.FileGet, self._file_get)
        self._user(F.FileDone, self._file_done)
        self._user(F.FileCancel, self._file_cancel)
        self._user(F.ScanPrefixes, self._scan_prefixes)
        self._user(F.ScanUrl, self._scan_url)
        self._user(G.PublishKeyPackages, self._publish_key_packages)
        self._user(G.FetchKeyPackages, self._fetch_key_packages)
        self._user(G.GroupCommit, self._group_commit)
        self._user(G.GroupSend, self._group_send)
        self._user(G.GroupFetch, self._group_fetch)

    def _anyone(
        self, frame: type[_Frame], handler: Callable[[Connection, _Frame], Awaitable[None]]
    ) -> None:
        self._public[frame] = handler

    def _user(
        self, frame: type[_Frame], handler: Callable[[Connection, str, _Frame], Awaitable[None]]
    ) -> None:
        self._authenticated[frame] = handler

    @property
    def frame_types(self) -> frozenset[type[Any]]:
        """Every frame type with a handler: the tests hold it to `F.ClientFrame`."""
        return frozenset(self._public) | frozenset(self._authenticated)

    async def dispatch(self, conn: Connection, frame: F.ClientFrame) -> None:
        """The auth gate and the table. The frames of a logged-in user are looked up
        first: they are nearly all the traffic (`send`, `ack`)."""
        handler = self._authenticated.get(type(frame))
        if handler is not None:
            user = conn.username
            if user is None:
                raise ProtocolError(ErrorCode.UNAUTHORIZED, "log in first")
            await handler(conn, user, frame)
            return
        public = self._public.get(type(frame))
        if public is not None:
            await public(conn, frame)
        elif conn.username is None:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "log in first")
        else:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{type(frame).__name__} is not valid here")

    # --- credentials ---------------------------------------------------------------

    async def _register(self, conn: Connection, frame: F.Register) -> None:
        name = await self.accounts.register(frame.username, frame.password, frame.recovery_token)
        conn.push(encode_str(F.Registered(rid=frame.rid, username=name)))

    async def _login(self, conn: Connection, frame: F.Login) -> None:
        started = time.perf_counter()
        try:
            issued = await self.accounts.login(
                frame.username, frame.password, conn.address, frame.replaces
            )
        except ProtocolError as exc:
            self.metrics.logins_failed += 1
            # The address and no name: fail2ban can act on it (docs/operations.md),
            # and the log never ties a person to where they connect from.
            log.warning("login failed from %s: %s", conn.address, exc.code)
            raise
        finally:
            self.metrics.login.observe(time.perf_counter() - started)
        self.metrics.logins_ok += 1
        await self._start_session(conn, frame.rid, issued.username, issued.token, issued.expires_at)
        if issued.replaced:
            await self.revocations.superseded(issued.username)

    async def _resume(self, conn: Connection, frame: F.Resume) -> None:
        issued = await self.accounts.resume(frame.token, conn.address)
        await self._start_session(conn, frame.rid, issued.username, issued.token, issued.expires_at)

    async def _reset_password(self, conn: Connection, frame: F.ResetPassword) -> None:
        await self.accounts.reset_password(
            frame.username, frame.token, frame.new_password, frame.new_recovery_token, conn.address
        )
        conn.push(encode_str(F.Done(rid=frame.rid)))
        # Whoever was logged in with the old password is logged out now, on every node.
        await self.revocations.end(normalise_username(frame.username), "password_changed")

    async def _start_session(
        self, conn: Connection, rid: int, username: str, token: str, expires_at: float
    ) -> None:
        if conn.username is not None:
            raise ProtocolError(ErrorCode.CONFLICT, "this connection is already logged in")
        if self.relay.connections_of(username) >= self.max_connections_per_user:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many connections for {username}; close another client first",
            )
        remaining, kem_remaining = await self.directory.remaining(username)
        conn.push(
            encode_str(
                F.Session(
                    rid=rid,
                    username=username,
                    token=token,
                    expires_at=expires_at,
                    one_time_prekeys=remaining,
                    one_time_kem_prekeys=kem_remaining,
                    binary_files=True,
                    online_scanners=self.scans.online_scanners(),
                )
            )
        )
        conn.authenticated(username, token)
        await self.revocations.check(conn)

    # --- a logged-in user ----------------------------------------------------------

    async def _send(self, conn: Connection, user: str, frame: F.Send) -> None:
        await self.relay.submit(conn, user, frame)

    async def _ack(self, conn: Connection, user: str, frame: F.Ack) -> None:
        conn.acknowledged(frame.sids)
        self.relay.acknowledge(user, frame.sids)

    async def _logout(self, conn: Connection, user: str, frame: F.Logout) -> None:
        if conn.token:
            await self.accounts.logout(conn.token)
        conn.push(encode_str(F.Done(rid=frame.rid)))
        conn.close_after_flush(1000, "logged out")

    async def _watch(self, conn: Connection, user: str, frame: F.Watch) -> None:
        states = await self.relay.watch(conn, [normalise_username(u) for u in frame.users])
        conn.push(encode_str(F.PresenceList(rid=frame.rid, states=states)))

    async def _publish_keys(self, conn: Connection, user: str, frame: F.PublishKeys) -> None:
        await self.directory.publish(conn, user, frame)

    async def _fetch_bundle(self, conn: Connection, user: str, frame: F.FetchBundle) -> None:
        await self.directory.fetch_bundle(conn, frame)

    async def _publish_key_packages(
        self, conn: Connection, user: str, frame: G.PublishKeyPackages
    ) -> None:
        await self.directory.publish_key_packages(conn, user, frame)

    async def _fetch_key_packages(
        self, conn: Connection, user: str, frame: G.FetchKeyPackages
    ) -> None:
        await self.directory.fetch_key_packages(conn, frame)

    async def _group_commit(self, conn: Connection, user: str, frame: G.GroupCommit) -> None:
        await self.groups.commit(conn, user, frame)

    async def _group_send(self, conn: Connection, user: str, frame: G.GroupSend) -> None:
        self.groups.fanout.submit(conn, user, frame)

    async def _group_fetch(self, conn: Connection, user: str, frame: G.GroupFetch) -> None:
        await self.groups.fetch(conn, user, frame)

    async def _delete_conversation(
        self, conn: Connection, user: str, frame: F.DeleteConversation
    ) -> None:
        await self.store.delete_conversation(user, frame.peer)
        self.relay.forget_usage(user, frame.peer)
        self.relay.conversation_deleted(user, frame.peer)
        conn.push(encode_str(F.Done(rid=frame.rid)))

    async def _delete_account(self, conn: Connection, user: str, frame: F.DeleteAccount) -> None:
        await self.accounts.verify_password(user, frame.password, conn.address)
        followers = await self.store.watchers_of(user)
        await self.files.delete_all_of(user)
        await self.store.delete_account(user)
        self.relay.forget_usage(user)
        log.info("account deleted")
        conn.push(encode_str(F.Done(rid=frame.rid)))
        self.relay.account_deleted(user, followers)
        await self.revocations.end(user, "account_deleted")

    async def _file_begin(self, conn: Connection, user: str, frame: F.FileBegin) -> None:
        conn.push(encode_str(await self.files.begin(user, frame)))

    async def _file_chunk(self, conn: Connection, user: str, frame: F.FileChunk) -> None:
        conn.push(encode_str(await self.files.chunk(user, frame)))

    async def _file_status(self, conn: Connection, user: str, frame: F.FileStatus) -> None:
        conn.push(encode_str(await self.files.status(user, frame)))

    async def _file_get(self, conn: Connection, user: str, frame: F.FileGet) -> None:
        data = await self.files.get(user, frame)
        conn.push(encode_bulk(data) if frame.binary else encode_str(data))

    async def _file_done(self, conn: Connection, user: str, frame: F.FileDone) -> None:
        await self.files.done(user, frame)
        conn.push(encode_str(F.Done(rid=frame.rid)))

    async def _file_cancel(self, conn: Connection, user: str, frame: F.FileCancel) -> None:
        await self.files.cancel(user, frame)
        conn.push(encode_str(F.Done(rid=frame.rid)))

    async def _scan_prefixes(self, conn: Connection, user: str, frame: F.ScanPrefixes) -> None:
        conn.push(encode_str(self.scans.prefixes(user, frame)))

    async def _scan_url(self, conn: Connection, user: str, frame: F.ScanUrl) -> None:
        self.scans.full_lookup(user, frame, conn.push)
