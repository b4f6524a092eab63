"""`ChatAPI`: the client as its users see it: the TUI, the CLI, the daemon and test fakes.

They are typed against this Protocol, not against `ChatClient`, so a fake
that drifts from the real client (a renamed method, a new parameter) fails
mypy rather than a test that happens to use it. `ChatClient` satisfies it by
construction (`client/core.py`), and `tests/tui/fakes.py` is checked against it.

Failures are `SecureChatError`s whose `code` is stable: the relay's
`ErrorCode` for a `ServerRejected`, a `ClientErrorCode` for the client's own
refusals (see errors.py). What happens without being asked for arrives on
`events`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from securechat.client.conversation import ConversationId
from securechat.client.events import ConversationState, Event
from securechat.client.records import ConversationRecord, StoredMessage
from securechat.client.trust import SafetyNumbers
from securechat.crypto.identity import IdentityPublicKey
from securechat.scanner import Verdict


@dataclass(frozen=True, slots=True)
class GroupMember:
    user: str
    fingerprint: str
    """Of the identity key the member's credential is bound to (and this device pinned)."""
    verified: bool
    admin: bool


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A group as this device holds it; its name and topic are known to members only."""

    group_id: str
    """The relay's random group id, in hex: `ConversationId.group(group_id)` names it."""
    name: str
    topic: str
    members: tuple[GroupMember, ...]
    epoch: int
    key_changed: tuple[str, ...] = ()
    """Members whose key changed: nothing is sent to the group until each is resolved."""

    @property
    def conversation(self) -> ConversationId:
        return ConversationId.group(self.group_id)


class ChatAPI(Protocol):
    server_url: str

    @property
    def username(self) -> str | None:
        """Who is signed in; None before."""

    @property
    def events(self) -> asyncio.Queue[Event]:
        """Everything that happens without being asked for, in order."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def settle(self) -> None:
        """Waits for background work (receipts, key uploads) to finish."""

    # --- accounts

    async def register(self, username: str, password: str) -> str:
        """Creates the account and this device's vault; returns the recovery code."""

    async def login(self, username: str, password: str, previous: str | None = None) -> None:
        """Unlocks the vault, then signs in; `previous` only after an operator reset."""

    async def unlock_and_resume(
        self, username: str, password: str, previous: str | None = None
    ) -> None:
        """As `login`, resuming the stored relay session when it is still valid."""

    async def reset_password(self, username: str, token: str, new_password: str) -> str | None:
        """With a recovery code, returns the new one; with an operator token, None."""

    async def sign_in_again(self, password: str) -> None:
        """A new relay session with the vault still open (after expiry or a reset)."""

    async def logout(self) -> None: ...

    async def delete_account(self, password: str) -> None: ...

    # --- trust

    def pinned_key(self, peer: str) -> IdentityPublicKey | None: ...

    async def sharekey(self, peer: str) -> str:
        """Sends our identity key to `peer`; returns our fingerprint."""

    def verify(self, peer: str) -> SafetyNumbers: ...

    def mark_verified(self, peer: str) -> str: ...

    def is_verified(self, peer: str) -> bool: ...

    def reject(self, peer: str) -> str:
        """Keeps the pinned key during a key change; returns its fingerprint."""

    def trust(self, peer: str) -> str:
        """Accepts the key `peer` now offers; returns its fingerprint."""

    # --- direct sessions

    def conversation_state(self, peer: str) -> ConversationState: ...

    async def talk(self, peer: str) -> ConversationState: ...

    async def send_text(self, peer: str, text: str) -> str:
        """Returns the envelope id, which `DeliveryChanged` events then name."""

    # --- files and links

    async def send_file(self, peer: str, path: str | Path) -> str:
        """Uploads and offers a file; returns its blob id."""

    async def download(self, blob_id: str, directory: str | Path | None = None) -> Path: ...

    def saved_file(self, blob_id: str) -> Path | None: ...

    async def scan(self, url: str, *, full: bool = False, submit: bool = False) -> Verdict: ...

    @property
    def online_scanners(self) -> tuple[str, ...] | None:
        """The online scanners the relay's full lookup asks (`virustotal`, `otx`), as the
        relay said at sign-in; None when it did not say (an older relay)."""

    # --- history

    def history(
        self,
        peer: str,
        before_id: int | None = None,
        limit: int = 50,
        after_id: int | None = None,
    ) -> list[StoredMessage]: ...

    def received_after(self, after_id: int, limit: int = 200) -> tuple[list[Event], int]:
        """Messages and file offers stored after `after_id`, as events, and the new cursor."""

    def search(self, query: str, limit: int = 50) -> list[StoredMessage]: ...

    def conversations(self) -> list[ConversationRecord]: ...

    def peer_deleted(self, peer: str) -> bool: ...

    def mark_read(self, peer: str) -> None: ...

    async def delete_conversation(self, peer: str) -> None: ...

    # --- groups: a group's history, unread count and deletion go through the
    # conversation methods above with its `ConversationId.key`; its messages
    # arrive as `MessageReceived` and `FileOffered` with a group conversation.

    async def create_group(self, name: str, users: Sequence[str]) -> GroupInfo:
        """Creates a group with us as its admin and `users` as members."""

    async def group_invite(self, group_id: str, user: str) -> GroupInfo: ...

    async def group_remove(self, group_id: str, user: str) -> GroupInfo: ...

    async def group_leave(self, group_id: str) -> None:
        """Leaves the group; its history stays on this device."""

    async def group_rename(self, group_id: str, name: str) -> GroupInfo: ...

    async def group_set_topic(self, group_id: str, topic: str) -> GroupInfo: ...

    async def group_make_admin(self, group_id: str, user: str) -> GroupInfo:
        """Admins add, remove and make other admins; anyone may leave."""

    def group_members(self, group_id: str) -> list[GroupMember]: ...

    def groups(self) -> list[GroupInfo]:
        """The groups this device is a member of."""

    def group_names(self) -> dict[str, str]:
        """Group id -> name of every group this device holds, those it left or was removed
        from too: their history stays readable, and should keep its name."""

    async def group_send_text(self, group_id: str, text: str) -> str:
        """Returns the envelope id, which `DeliveryChanged` events then name."""

    async def group_send_file(self, group_id: str, path: str | Path) -> str:
        """Uploads once and offers the file to every member; returns its blob id."""
