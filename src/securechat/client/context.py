"""What every part of the client shares: the relay, the open vault, who is signed in, events.

`ChatClient` is split by concern (accounts, trust, direct sessions, receiving,
files, history); each part is handed this one `ClientContext` rather than the
client, so no part reaches into another's state, and the parts depend on each
other in one direction only (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from securechat import paths
from securechat.client import vault_keys as K
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    Event,
    PresenceChanged,
)
from securechat.client.relay_client import OutboxItem, RelayClient
from securechat.client.vault_store import Vault
from securechat.crypto.identity import IdentityKeyPair
from securechat.errors import ClientErrorCode, SecureChatError, SessionError
from securechat.protocol import frames as F
from securechat.protocol.group_frames import GroupEnvelope


class ClientContext:
    def __init__(
        self,
        server_url: str,
        data_dir: Path | None,
        *,
        pin_sha256: str | None,
        reconnect: bool,
        on_envelope: Callable[[F.Envelope | GroupEnvelope], Awaitable[None]],
        on_push: Callable[[F.ServerFrame], Awaitable[None]],
        on_event: Callable[[Event], None],
    ) -> None:
        self.data_dir = data_dir
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.vault: Vault | None = None
        self.identity: IdentityKeyPair | None = None
        self.username: str | None = None
        self.relay = RelayClient(
            server_url,
            outbox=VaultOutbox(self),
            pin_sha256=pin_sha256,
            on_envelope=on_envelope,
            on_push=on_push,
            on_event=on_event,
            reconnect=reconnect,
        )
        self.tasks: set[asyncio.Task[Any]] = set()
        self._presence_pushes: dict[str, int] = {}
        """Presence pushes read per user: a watch's answer gives way to any read after its
        request went out (see `watch`)."""

    def emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs `coro` in the background; a failure becomes an `ErrorRaised` event."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.emit(ErrorRaised(str(exc), getattr(exc, "code", "")))

    async def settle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def user_dir(self, username: str) -> Path:
        return paths.client_dir(username, self.data_dir)

    def need_vault(self) -> Vault:
        if self.vault is None:
            raise SessionError("log in first", ClientErrorCode.NOT_SIGNED_IN)
        return self.vault

    def need_identity(self) -> tuple[Vault, IdentityKeyPair, str]:
        vault = self.need_vault()
        assert self.identity is not None and self.username is not None
        return vault, self.identity, self.username

    def contacts(self) -> list[str]:
        """The peers of direct conversations, whose presence we follow: a group's
        conversation key is no username, and the relay would refuse the whole watch. A
        peer whose account was deleted is not followed: whoever registers the name next
        would see our presence by watching us back (an envelope from them follows it
        again, `receive.py`)."""
        vault = self.need_vault()
        return [
            c.peer
            for c in vault.conversations()
            if ConversationId.parse(c.peer).is_direct and vault.get(K.gone(c.peer)) is None
        ]

    async def watch(self, peers: list[str]) -> None:
        """Follows the presence of `peers`: the relay keeps watches per connection.

        The answer's task runs after the reader may have handled pushes that followed
        the answer on the wire (the peer's first watch of us pushes "online" to a watch
        answered "unknown"). A push read after the request went out is as new as
        the answer (the relay pushes to a watcher every change before answering) or
        newer, so the answer is shown only for users without such a push.
        """
        before = {peer: self._presence_pushes.get(peer, 0) for peer in peers}
        with contextlib.suppress(SecureChatError):
            answer = await self.relay.request(lambda rid: F.Watch(rid=rid, users=peers))
            if isinstance(answer, F.PresenceList):
                for user, state in answer.states.items():
                    if self._presence_pushes.get(user, 0) == before.get(user, 0):
                        self.emit(PresenceChanged(user, state))

    def presence_pushed(self, user: str, state: str) -> None:
        """A presence push from the relay, in the order the reader reads them."""
        self._presence_pushes[user] = self._presence_pushes.get(user, 0) + 1
        self.emit(PresenceChanged(user, state))

    def conversation_opened(self, peer: str) -> None:
        """A message created a conversation in the vault (a new one, or one deleted here):
        follow the peer's presence, unless its account is gone (`contacts`)."""
        if (
            ConversationId.parse(peer).is_direct
            and self.vault is not None
            and self.vault.get(K.gone(peer)) is None
        ):
            self.spawn(self.watch([peer]))

    def ensure_conversation(self, vault: Vault, peer: str) -> None:
        """A conversation opened by the peer: follow their presence (the relay shares it
        once both follow each other)."""
        if vault.ensure_conversation(peer):
            self.spawn(self.watch([peer]))


class VaultOutbox:
    """The relay client's outbox is the vault, which opens only after login."""

    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx

    def outbox_add(self, item: OutboxItem) -> None:
        self._ctx.need_vault().outbox_add(item)

    def outbox_remove(self, eid: str) -> None:
        vault = self._ctx.vault
        if vault is not None:
            vault.outbox_remove(eid)
            stored = vault.update_delivery(eid, DeliveryState.SENT)
            if stored is not None:
                self._ctx.emit(DeliveryChanged(stored.record.peer, eid, DeliveryState.SENT))

    def outbox_items(self) -> list[OutboxItem]:
        vault = self._ctx.vault
        return vault.outbox_items() if vault is not None else []
