"""`ChatClient`: the headless client core that the TUI, the CLI, the daemon and tests drive.

It is the facade over the client's parts, one concern each, and the place
that wires them; what it offers is the `ChatAPI` Protocol (client/api.py).
The parts share one `ClientContext` (relay, vault, events) and depend on each
other one way, each on those listed before it:

    directory   the keys this device publishes, kept fresh
    trust       pinned and offered keys, the user's decisions
    direct      1:1 sessions: starting, state, sealing what we send
    groups      group conversations on MLS: key packages, commands, deliveries
    delivery    gaps in what arrives, retries of what was not confirmed
    files       uploads, offers and downloads
    receive     the envelope router: opening, storing once, events
    history     conversations, pages, search, unread
    account     register, sign in and out, resets; starts the session's work
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from securechat.client import links
from securechat.client import vault_keys as K
from securechat.client.account import Accounts
from securechat.client.api import GroupInfo, GroupMember
from securechat.client.context import ClientContext
from securechat.client.delivery import DeliveryWatch
from securechat.client.direct import DirectSessions
from securechat.client.directory import KeyDirectory
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    Event,
)
from securechat.client.files import Files
from securechat.client.groups import Groups
from securechat.client.history import History
from securechat.client.receive import Receiver
from securechat.client.records import ConversationRecord, StoredMessage
from securechat.client.relay_client import RelayClient
from securechat.client.trust import SafetyNumbers, Trust
from securechat.client.vault_store import Vault
from securechat.crypto.identity import IdentityKeyPair, IdentityPublicKey
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF
from securechat.protocol.errors import ErrorCode
from securechat.scanner import Verdict


class ChatClient:
    def __init__(
        self,
        server_url: str,
        data_dir: str | Path | None = None,
        *,
        pin_sha256: str | None = None,
        reconnect: bool = True,
    ) -> None:
        self.server_url = server_url
        self._ctx = ctx = ClientContext(
            server_url,
            Path(data_dir) if data_dir else None,
            pin_sha256=pin_sha256,
            reconnect=reconnect,
            on_envelope=self._on_envelope,
            on_push=self._on_push,
            on_event=self._on_relay_event,
        )
        self.keys = KeyDirectory(ctx)
        self._trust = Trust(ctx, self.conversation_state)
        self._direct = DirectSessions(ctx, self._trust)
        self.delivery = DeliveryWatch(ctx, self._direct.session_id)
        self._groups = Groups(ctx, self._trust)
        self.files = Files(ctx, self._direct, self._groups)
        self._receiver = Receiver(ctx, self._trust, self._direct, self.keys)
        self._history = History(ctx)
        self._accounts = Accounts(ctx, self.keys, self.files, self.delivery, self._groups)

    @property
    def events(self) -> asyncio.Queue[Event]:
        return self._ctx.events

    @property
    def relay(self) -> RelayClient:
        return self._ctx.relay

    @property
    def vault(self) -> Vault | None:
        return self._ctx.vault

    @property
    def identity(self) -> IdentityKeyPair | None:
        return self._ctx.identity

    @property
    def username(self) -> str | None:
        return self._ctx.username

    # --- wiring --------------------------------------------------------------------

    async def _on_envelope(self, envelope: F.Envelope | GF.GroupEnvelope) -> None:
        if isinstance(envelope, GF.GroupEnvelope):
            self._groups.on_delivery(envelope)
        else:
            await self._receiver.on_envelope(envelope)

    async def _on_push(self, frame: F.ServerFrame) -> None:
        if isinstance(frame, GF.KeyPackagesLow):
            self._ctx.spawn(self._groups.keys.publish(more=True))
        else:
            await self._receiver.on_push(frame)

    def _on_relay_event(self, event: Event) -> None:
        """The relay client's events, with what the client does about two of them.

        A message the relay refused as `not_found` means the peer's account is
        gone; a new connection finishes the uploads left pending, sends again the
        group Commits whose answer was lost, and watches every peer again, since
        the relay keeps watches per connection.
        """
        ctx = self._ctx
        if (
            isinstance(event, DeliveryChanged)
            and event.state == DeliveryState.FAILED
            and event.code == ErrorCode.NOT_FOUND
            and ctx.vault is not None
        ):
            ctx.vault.put(K.gone(event.peer), b"1")
        ctx.emit(event)
        if (
            isinstance(event, ConnectionChanged)
            and event.state == ConnectionState.CONNECTED
            and ctx.vault is not None
            and ctx.relay.connected
        ):
            self.files.resume_all()
            ctx.spawn(self._groups.resume())
            peers = ctx.contacts()
            if peers:
                ctx.spawn(ctx.watch(peers))

    # --- lifecycle -----------------------------------------------------------------

    async def connect(self) -> None:
        await self._ctx.relay.connect()

    async def close(self) -> None:
        self._accounts.stop()
        for task in list(self._ctx.tasks):
            task.cancel()
        await self._ctx.relay.close()
        if self._ctx.vault is not None:
            self._ctx.vault.close()
            self._ctx.vault = None

    async def settle(self) -> None:
        """Waits for background work (receipts, key uploads) to finish: for tests and the CLI."""
        await self._ctx.settle()

    # --- accounts ------------------------------------------------------------------

    async def register(self, username: str, password: str) -> str:
        return await self._accounts.register(username, password)

    async def login(self, username: str, password: str, previous: str | None = None) -> None:
        await self._accounts.login(username, password, previous)

    async def unlock_and_resume(
        self, username: str, password: str, previous: str | None = None
    ) -> None:
        await self._accounts.unlock_and_resume(username, password, previous)

    async def reset_password(self, username: str, token: str, new_password: str) -> str | None:
        return await self._accounts.reset_password(username, token, new_password)

    async def sign_in_again(self, password: str) -> None:
        await self._accounts.sign_in_again(password)

    async def logout(self) -> None:
        await self._accounts.logout()

    async def delete_account(self, password: str) -> None:
        await self._accounts.delete_account(password)

    # --- trust ---------------------------------------------------------------------

    def pinned_key(self, peer: str) -> IdentityPublicKey | None:
        return self._trust.pinned_key(peer)

    async def sharekey(self, peer: str) -> str:
        return await self._trust.sharekey(peer)

    def verify(self, peer: str) -> SafetyNumbers:
        return self._trust.verify(peer)

    def mark_verified(self, peer: str) -> str:
        return self._trust.mark_verified(peer)

    def is_verified(self, peer: str) -> bool:
        return self._trust.is_verified(peer)

    def reject(self, peer: str) -> str:
        return self._trust.reject(peer)

    def trust(self, peer: str) -> str:
        return self._trust.trust(peer)

    # --- direct sessions -----------------------------------------------------------

    def conversation_state(self, peer: str) -> ConversationState:
        return self._direct.conversation_state(peer)

    async def talk(self, peer: str) -> ConversationState:
        return await self._direct.talk(peer)

    async def send_text(self, peer: str, text: str) -> str:
        return await self._direct.send_text(peer, text)

    # --- files and links -----------------------------------------------------------

    async def send_file(self, peer: str, path: str | Path) -> str:
        return await self.files.send_file(peer, path)

    async def download(self, blob_id: str, directory: str | Path | None = None) -> Path:
        return await self.files.download(blob_id, directory)

    def saved_file(self, blob_id: str) -> Path | None:
        return self.files.saved_file(blob_id)

    async def scan(self, url: str, *, full: bool = False, submit: bool = False) -> Verdict:
        return await links.scan(self._ctx.relay, url, full=full, submit=submit)

    @property
    def online_scanners(self) -> tuple[str, ...] | None:
        return self._ctx.relay.online_scanners

    # --- history -------------------------------------------------------------------

    def history(
        self,
        peer: str,
        before_id: int | None = None,
        limit: int = 50,
        after_id: int | None = None,
    ) -> list[StoredMessage]:
        return self._history.history(peer, before_id, limit, after_id)

    def received_after(self, after_id: int, limit: int = 200) -> tuple[list[Event], int]:
        return self._history.received_after(after_id, limit)

    def search(self, query: str, limit: int = 50) -> list[StoredMessage]:
        return self._history.search(query, limit)

    def conversations(self) -> list[ConversationRecord]:
        return self._history.conversations()

    def peer_deleted(self, peer: str) -> bool:
        return self._history.peer_deleted(peer)

    def mark_read(self, peer: str) -> None:
        self._history.mark_read(peer)

    async def delete_conversation(self, peer: str) -> None:
        await self._history.delete_conversation(peer)

    # --- groups ------------------------------------------------------------------

    async def create_group(self, name: str, users: Sequence[str]) -> GroupInfo:
        return await self._groups.create(name, users)

    async def group_invite(self, group_id: str, user: str) -> GroupInfo:
        return await self._groups.invite(group_id, user)

    async def group_remove(self, group_id: str, user: str) -> GroupInfo:
        return await self._groups.remove(group_id, user)

    async def group_leave(self, group_id: str) -> None:
        await self._groups.leave(group_id)

    async def group_rename(self, group_id: str, name: str) -> GroupInfo:
        return await self._groups.rename(group_id, name)

    async def group_set_topic(self, group_id: str, topic: str) -> GroupInfo:
        return await self._groups.set_topic(group_id, topic)

    async def group_make_admin(self, group_id: str, user: str) -> GroupInfo:
        return await self._groups.make_admin(group_id, user)

    def group_members(self, group_id: str) -> list[GroupMember]:
        return self._groups.store.members(group_id)

    def groups(self) -> list[GroupInfo]:
        return self._groups.store.groups()

    def group_names(self) -> dict[str, str]:
        vault = self._ctx.need_vault()
        store = self._groups.store
        sessions = ((group_id, store.load(vault, group_id)) for group_id in store.ids(vault))
        return {group_id: s.metadata.name for group_id, s in sessions if s is not None}

    async def group_send_text(self, group_id: str, text: str) -> str:
        return await self._groups.sending.send_text(group_id, text)

    async def group_send_file(self, group_id: str, path: str | Path) -> str:
        return await self.files.send_group_file(group_id, path)
