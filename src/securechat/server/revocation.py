"""Ending a user's sessions on every node: resets, deletions, and sessions a login replaced.

The store is the source of truth. The node that handles a reset or a deletion
removes the sessions there first, then closes the user's connections on
itself and publishes `revoke` on the bus. A node that hears the signal does
not take its word for it: it checks each of the user's connections against
the store and closes those whose session is gone, so a forged or late signal
closes nothing live. A node that was cut off from Redis checks all its
connections when Redis returns, and a login checks its own session once more
after it is registered, in case a revocation went by while it was being set up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from securechat.errors import StoreError
from securechat.server.accounts import AccountService
from securechat.server.bus import Bus
from securechat.server.relay import Outlet, Relay

log = logging.getLogger("securechat.server")

CAUSES = {
    "password_changed": "password changed; log in again",
    "account_deleted": "account deleted",
    "session_replaced": "logged in again on this device",
}
"""The bus's revoke causes -> the close reason the user's clients are given."""

FOUND_LATE = "session ended; log in again"


class Revocations:
    def __init__(self, relay: Relay, accounts: AccountService, bus: Bus) -> None:
        self.relay = relay
        self.accounts = accounts
        self.bus = bus
        self._checks: set[asyncio.Task[None]] = set()

    async def end(self, user: str, cause: str) -> None:
        """After the store has dropped the user's sessions: close them here and everywhere."""
        for conn in self._connections_of(user):
            conn.end_session(CAUSES[cause])
        await self.bus.revoke(user, cause)

    async def superseded(self, user: str) -> None:
        """A login ended one of the user's sessions (the device's previous one): close
        the connections still using it, here and on every node, and no other."""
        reason = CAUSES["session_replaced"]
        await self._check_in_background(self._connections_of(user), reason)
        await self.bus.revoke(user, "session_replaced")

    def heard(self, user: str, cause: str) -> None:
        """The bus's revoke handler: another node says `user`'s sessions ended."""
        reason = CAUSES.get(cause)
        if reason is None:
            log.warning("ignored a revoke signal with an unknown cause")
            return
        if cause == "account_deleted":
            self.relay.forget_usage(user)  # so that sends to the name are refused here too
        connections = self._connections_of(user)
        if not connections:
            return
        task = asyncio.get_running_loop().create_task(
            self._check_in_background(connections, reason)
        )
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def check_all(self) -> bool:
        """Closes every connection here whose session is gone; False if the store failed."""
        connections = [
            conn for user in list(self.relay.online) for conn in self._connections_of(user)
        ]
        return await self._close_dead(connections, FOUND_LATE)

    async def check(self, conn: Outlet) -> None:
        await self._close_dead([conn], FOUND_LATE)

    async def _check_in_background(self, connections: list[Outlet], reason: str) -> None:
        """If the store cannot say, the connections are closed anyway: a live session
        only costs its client a reconnect, a revoked one must not stay open."""
        try:
            checked = await self._close_dead(connections, reason)
        except Exception:
            log.exception("checking sessions after a revoke signal failed")
            checked = False
        if not checked:
            for conn in connections:
                if conn.token is not None:
                    conn.end_session(reason)

    async def _close_dead(self, connections: Iterable[Outlet], reason: str) -> bool:
        for conn in connections:
            token = conn.token
            if token is None:
                continue
            try:
                live = await self.accounts.is_live(token)
            except StoreError:
                log.warning("could not check sessions against the store")
                return False
            if not live and conn.token == token:
                conn.end_session(reason)
        return True

    def _connections_of(self, user: str) -> list[Outlet]:
        return list(self.relay.online.get(user, ()))
