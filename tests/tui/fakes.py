"""A stand-in for ChatClient with the same methods, errors and events, held in memory.

Screen and command tests use it so they run in milliseconds and render the
same thing every time (snapshots). Its refusals copy the core's sentences;
the end-to-end and real-relay tests check the real core says the same.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from securechat.client.account import VAULT_BEHIND
from securechat.client.api import ChatAPI, GroupInfo, GroupMember
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    Event,
    FileOffered,
    GroupChange,
    GroupChanged,
    GroupInvited,
    GroupKeyChanged,
    KeyChanged,
    KeyKept,
    MessageReceived,
    PresenceChanged,
    TransferProgress,
)
from securechat.client.filenames import sanitise_filename
from securechat.client.records import ConversationRecord, MessageRecord, StoredMessage
from securechat.client.transfers import TransferError, human_size
from securechat.client.trust import SafetyNumbers, key_changed_advice, rejection_warning
from securechat.client.vault_messages import matches
from securechat.crypto.errors import AuthenticationFailed, WrongPassword
from securechat.crypto.identity import IdentityPublicKey
from securechat.errors import (
    ClientError,
    ClientErrorCode,
    ConnectionLost,
    ServerRejected,
    SessionError,
    VaultBehind,
)
from securechat.protocol.limits import MAX_FILE_PLAINTEXT_BYTES
from securechat.scanner import (
    ProviderReport,
    ProviderStatus,
    Rating,
    Verdict,
    check,
    combine,
)

RECOVERY_CODE = "ABCD-EFGH-JKMN-PQRS-TVWX-YZ12"
NEW_RECOVERY_CODE = "2222-3333-4444-5555-6666-7777"
OPERATOR_TOKEN = "op-operator-token"
SAFETY_NUMBER = "12345 67890 12345 67890 12345 67890\n09876 54321 09876 54321 09876 54321"
OFFERED_SAFETY_NUMBER = "55555 66666 77777 88888 99999 00000\n11111 22222 33333 44444 55555 66666"
FINGERPRINT = "A1B2 C3D4 E5F6 A7B8 C9D0 A1B2 C3D4 E5F6 A7B8 C9D0"
"""Spaced in groups of four, as `IdentityPublicKey.fingerprint_hex` gives it."""
OFFERED_FINGERPRINT = " ".join(["FFFF"] * 10)
BASE_TS = 1_700_000_000.0
TAMPERED = (
    "The file was altered, truncated or mixed with another file in transit; "
    "ask the sender to share it again."
)


@dataclass
class FakeGroup:
    """One group as the fake holds it: members in the order they joined."""

    group_id: str
    name: str
    topic: str = ""
    members: list[str] = field(default_factory=list)
    admins: set[str] = field(default_factory=set)
    epoch: int = 0
    key_changed: set[str] = field(default_factory=set)


class FakeClient:
    """Everything the TUI calls on ChatClient, in memory; `accounts` is the fake relay."""

    def __init__(
        self,
        server_url: str,
        accounts: dict[str, str] | None = None,
        vaults: dict[str, str] | None = None,
    ) -> None:
        self.server_url = server_url
        self.username: str | None = None
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.accounts = accounts if accounts is not None else {}
        """The relay's passwords."""
        self.vaults = vaults if vaults is not None else {}
        """Passwords that differ from the relay's: vaults an operator reset left behind."""
        self.states: dict[str, ConversationState] = {}
        self.key_changes: dict[str, ConversationState] = {}
        """peer -> the session state from before a pending key change."""
        self.unread: dict[str, int] = {}
        self.messages: list[StoredMessage] = []
        self.sent: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.hidden: set[str] = set()
        self.verified: set[str] = set()
        self.gone: set[str] = set()
        """Peers whose account the relay reported deleted."""
        """Conversations deleted here whose session stays."""
        self.account_deleted = False
        self.signed_in_again = 0
        self.closed = False
        self._ids = itertools.count(1)
        self._eids = itertools.count(1)
        self._blobs = itertools.count(1)
        # files
        self.offered: dict[str, tuple[str, bytes]] = {}
        self.uploads: list[tuple[str, str]] = []
        self.downloads_dir: Path | None = None
        self.tampered: set[str] = set()
        self.saved: dict[str, Path] = {}
        """Blob id -> where it was saved, as the core's vault keeps it across restarts."""
        self.transfer_gate: asyncio.Event | None = None
        """When set, transfers stop half way until the test sets the event."""
        self.interrupt_uploads = False
        self.interrupted: list[tuple[str, str, str, int]] = []
        # links
        self.ratings: dict[str, Rating] = {}
        """url -> what the relay's lists (or, with full=True, VirusTotal) say."""
        self.scan_error: Exception | None = None
        self.scan_gate: asyncio.Event | None = None
        """When set, every scan waits for it: a relay that is slow to answer."""
        self.scans: list[tuple[str, bool]] = []
        self.online_scanners: tuple[str, ...] | None = ("virustotal", "otx")
        """What the relay said at sign-in it has keys for; a full lookup asks only those."""
        # groups
        self.group_state: dict[str, FakeGroup] = {}
        self._group_ids = itertools.count(1)

    # --- accounts

    async def connect(self) -> None:
        if "unreachable" in self.server_url:
            raise ConnectionLost(f"cannot reach the relay at {self.server_url}: refused")
        self._emit(ConnectionChanged(ConnectionState.CONNECTED))

    async def register(self, username: str, password: str) -> str:
        if username in self.accounts:
            raise ServerRejected("conflict", f"the username {username} is taken")
        self.accounts[username] = password
        self.username = username
        return RECOVERY_CODE

    async def login(self, username: str, password: str, previous: str | None = None) -> None:
        """As the core: the vault first, then the relay; `previous` after an operator reset."""
        if username not in self.accounts:
            raise SessionError(f"there is no vault for {username} on this device")
        vault = self.vaults.get(username, self.accounts[username])
        if password != vault:
            if previous is None:
                if self.accounts[username] == password:
                    raise VaultBehind(VAULT_BEHIND)
                raise WrongPassword("That password does not unlock this vault.")
            if previous not in (vault, RECOVERY_CODE):
                raise WrongPassword(
                    "Neither the password nor the previous password or recovery code "
                    "unlocks this vault."
                )
        if self.accounts[username] != password:
            raise ServerRejected("unauthorized", "wrong username or password")
        self.vaults.pop(username, None)
        self.username = username

    async def reset_password(self, username: str, token: str, new_password: str) -> str | None:
        """As the core: the relay always; the vault with a recovery code or when signed in."""
        if username not in self.accounts:
            raise ServerRejected("not_found", f"no account named {username!r}")
        operator = token.startswith("op-")
        if token != RECOVERY_CODE and token != OPERATOR_TOKEN:
            raise ServerRejected("unauthorized", "that recovery code or token is not valid")
        if operator and self.username != username:
            self.vaults.setdefault(username, self.accounts[username])
        self.accounts[username] = new_password
        if operator:
            if self.username == username:
                self.vaults.pop(username, None)
            return None
        self.vaults.pop(username, None)
        return NEW_RECOVERY_CODE

    async def sign_in_again(self, password: str) -> None:
        assert self.username is not None
        if self.accounts[self.username] != password:
            raise ServerRejected("unauthorized", "wrong username or password")
        self.signed_in_again += 1
        self._emit(ConnectionChanged(ConnectionState.CONNECTED))

    async def delete_account(self, password: str) -> None:
        assert self.username is not None
        if self.accounts[self.username] != password:
            raise ServerRejected("unauthorized", "wrong password")
        del self.accounts[self.username]
        self.account_deleted = True

    async def close(self) -> None:
        self.closed = True

    async def settle(self) -> None:
        """Nothing runs in the background here: every call finished when it returned."""

    async def unlock_and_resume(
        self, username: str, password: str, previous: str | None = None
    ) -> None:
        """As the core: a resumed session is a login that needs no new token."""
        await self.login(username, password, previous)

    async def logout(self) -> None:
        self.username = None

    # --- trust and sessions

    def _known(self, peer: str) -> None:
        if peer not in self.accounts:
            raise ServerRejected("not_found", f"{peer} has not published keys (or does not exist)")

    async def sharekey(self, peer: str) -> str:
        self._known(peer)
        self.states.setdefault(peer, ConversationState.NONE)
        return FINGERPRINT

    async def talk(self, peer: str) -> ConversationState:
        if peer == self.username:
            raise SessionError("you cannot open a session with yourself")
        if peer in self.key_changes:
            raise SessionError(
                f"{peer}'s key changed: compare `verify {peer}` with them, then `reject {peer}` "
                f"keeps the key you had or `trust {peer}` accepts the new one"
            )
        self._known(peer)
        self.states[peer] = ConversationState.PENDING
        self._emit(ConversationChanged(peer, ConversationState.PENDING, FINGERPRINT))
        return ConversationState.PENDING

    def pinned_key(self, peer: str) -> IdentityPublicKey | None:
        """The fake holds fingerprints, not keys: a screen shows `verify`'s numbers instead."""
        return None

    def verify(self, peer: str) -> SafetyNumbers:
        if peer not in self.states:
            raise SessionError(f"no key known for {peer}: ask them to `sharekey {self.username}`")
        offered = OFFERED_SAFETY_NUMBER if peer in self.key_changes else None
        return SafetyNumbers(peer, SAFETY_NUMBER, offered, self.is_verified(peer))

    def mark_verified(self, peer: str) -> str:
        if peer not in self.states:
            raise SessionError(f"no key known for {peer}: ask them to `sharekey {self.username}`")
        if peer in self.key_changes:
            raise SessionError(
                f"{peer}'s key changed: keep the pinned key or accept the new one first"
            )
        self.verified.add(peer)
        self._emit(ConversationChanged(peer, self.conversation_state(peer), FINGERPRINT))
        return FINGERPRINT

    def is_verified(self, peer: str) -> bool:
        return peer in self.verified

    def peer_deleted(self, peer: str) -> bool:
        return peer in self.gone

    def trust(self, peer: str) -> str:
        changed_groups = [g for g in self.group_state.values() if peer in g.key_changed]
        for group in changed_groups:
            group.key_changed.discard(peer)
        if changed_groups and peer not in self.states:
            return OFFERED_FINGERPRINT
        if peer not in self.states:
            raise SessionError(f"no key from {peer} to trust yet")
        if self.key_changes.pop(peer, None) is not None:
            self.states[peer] = ConversationState.NONE
            self._emit(ConversationChanged(peer, ConversationState.NONE, OFFERED_FINGERPRINT))
            return OFFERED_FINGERPRINT
        return FINGERPRINT

    def reject(self, peer: str) -> str:
        if peer not in self.key_changes:
            raise SessionError(f"{peer}'s key has not changed: there is no new key to reject")
        self._keep_pinned(peer, by_peer=False)
        return FINGERPRINT

    def _keep_pinned(self, peer: str, by_peer: bool) -> None:
        """As the core: the session from before the change carries on, with a warning stored."""
        self.states[peer] = self.key_changes.pop(peer)
        warning = rejection_warning(peer, FINGERPRINT, OFFERED_FINGERPRINT, by_peer=by_peer)
        message_id = self._store(peer, False, warning, kind="system")
        if by_peer:
            self.unread[peer] = self.unread.get(peer, 0) + 1
        self._emit(KeyKept(peer, FINGERPRINT, OFFERED_FINGERPRINT, message_id, by_peer))
        self._emit(ConversationChanged(peer, self.states[peer], FINGERPRINT))

    def conversation_state(self, peer: str) -> ConversationState:
        if peer in self.key_changes:
            return ConversationState.KEY_CHANGED
        return self.states.get(peer, ConversationState.NONE)

    async def send_text(self, peer: str, text: str) -> str:
        state = self.conversation_state(peer)
        if state == ConversationState.KEY_CHANGED:
            raise SessionError(
                f"{peer}'s key changed: compare `verify {peer}` with them, then "
                f"`reject {peer}` keeps the key you had or `trust {peer}` accepts the new one"
            )
        if state != ConversationState.ACTIVE:
            raise SessionError(
                f"no secure session with {peer}: type `sharekey {peer}` and `talk {peer}` first"
            )
        eid = f"e{next(self._eids)}"
        self._store(peer, True, text, eid=eid, state=DeliveryState.SENDING)
        self.sent.append((peer, text))
        self._emit(DeliveryChanged(peer, eid, DeliveryState.SENT))
        return eid

    async def delete_conversation(self, peer: str) -> None:
        """As the core: the history goes, the session (and any key change) stays."""
        self.deleted.append(peer)
        self.messages = [m for m in self.messages if m.record.peer != peer]
        self.hidden.add(peer)
        self.unread.pop(peer, None)

    # --- history

    def history(
        self,
        peer: str,
        before_id: int | None = None,
        limit: int = 50,
        after_id: int | None = None,
    ) -> list[StoredMessage]:
        mine = [m for m in self.messages if m.record.peer == peer]
        if after_id is not None:
            return [m for m in mine if m.id > after_id][:limit]
        return [m for m in mine if before_id is None or m.id < before_id][-limit:]

    def received_after(self, after_id: int, limit: int = 200) -> tuple[list[Event], int]:
        """As the core: what others sent after `after_id`, as events, and the new cursor."""
        stored = [m for m in self.messages if m.id > after_id][:limit]
        events: list[Event] = []
        for message in stored:
            record = message.record
            if record.outgoing or record.kind == "system":
                continue
            if record.kind == "file":
                name, data = self.offered[record.file_id]
                conversation = record.conversation_id
                size = len(data)
                events.append(
                    FileOffered(conversation, record.sender, record.file_id, name, size, message.id)
                )
            else:
                events.append(
                    MessageReceived(
                        record.conversation_id, record.sender, record.text, record.ts, message.id
                    )
                )
        return events, stored[-1].id if stored else after_id

    def search(self, query: str, limit: int = 50) -> list[StoredMessage]:
        found = [m for m in reversed(self.messages) if matches(query, m.record.text)]
        return found[:limit]

    def conversations(self) -> list[ConversationRecord]:
        """As the core: direct conversations and every group with history here (left ones too)."""
        groups = [ConversationId.group(g).key for g in self.group_state]
        peers = [p for p in [*self.states, *groups] if p not in self.hidden]
        last = {m.record.peer: m.record.ts for m in self.messages}
        records = [
            ConversationRecord(peer=p, last_ts=last.get(p, 0.0), unread=self.unread.get(p, 0))
            for p in peers
        ]
        return sorted(records, key=lambda r: -r.last_ts)

    def mark_read(self, peer: str) -> None:
        self.unread[peer] = 0

    # --- files

    async def send_file(self, peer: str, path: str | Path) -> str:
        if self.conversation_state(peer) != ConversationState.ACTIVE:
            raise SessionError(
                f"no secure session with {peer}: type `sharekey {peer}` and `talk {peer}` first"
            )
        source = Path(path).expanduser()
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise TransferError(f"cannot read {source}: {exc.strerror}") from exc
        if size > MAX_FILE_PLAINTEXT_BYTES:
            raise TransferError(
                f"{source.name} is {size / 1e6:.1f} MB; files are limited to "
                f"{MAX_FILE_PLAINTEXT_BYTES / 1e6:.0f} MB"
            )
        blob_id = f"blob{next(self._blobs):04d}AAAAAAAAAAAAAAAAAAAAAAAA"
        if self.interrupt_uploads:
            self._emit(TransferProgress(blob_id, 0, size, "up"))
            self._emit(TransferProgress(blob_id, size // 2, size, "up"))
            self.interrupted.append((blob_id, peer, source.name, size))
            raise TransferError(
                f"the upload of {source.name} was interrupted; it resumes when the relay is back"
            ) from ConnectionLost("the relay went away")
        await self._transfer(blob_id, size, "up")
        self._offer(blob_id, peer, source.name, size)
        return blob_id

    def _offer(self, blob_id: str, peer: str, name: str, size: int) -> None:
        eid = f"e{next(self._eids)}"
        text = f"{name} ({human_size(size)})"
        self._store(peer, True, text, eid, DeliveryState.SENDING, kind="file", file_id=blob_id)
        self.uploads.append((peer, name))
        self._emit(DeliveryChanged(peer, eid, DeliveryState.SENT))

    async def download(self, blob_id: str, directory: str | Path | None = None) -> Path:
        if blob_id not in self.offered:
            raise SessionError(f"no file {blob_id} was offered to you")
        name, data = self.offered[blob_id]
        if (known := self.saved_file(blob_id)) is not None:
            return known
        await self._transfer(blob_id, len(data), "down")
        if blob_id in self.tampered:
            raise AuthenticationFailed(TAMPERED)
        target = Path(directory) if directory else self.downloads_dir
        assert target is not None, "set downloads_dir on the fake client first"
        target.mkdir(parents=True, exist_ok=True)
        saved = target / sanitise_filename(name)
        saved.write_bytes(data)
        self.saved[blob_id] = saved
        return saved

    def saved_file(self, blob_id: str) -> Path | None:
        path = self.saved.get(blob_id)
        return path if path is not None and path.is_file() else None

    async def _transfer(self, blob_id: str, size: int, direction: str) -> None:
        self._emit(TransferProgress(blob_id, 0, size, direction))
        if self.transfer_gate is not None:
            self._emit(TransferProgress(blob_id, size // 2, size, direction))
            await self.transfer_gate.wait()
        self._emit(TransferProgress(blob_id, size, size, direction))

    # --- links

    async def scan(self, url: str, *, full: bool = False, submit: bool = False) -> Verdict:
        """The core's shape: heuristics plus the relay's lists, or the providers when full."""
        self.scans.append((url, full))
        if self.scan_gate is not None:
            await self.scan_gate.wait()
        if self.scan_error is not None:
            raise self.scan_error
        rating = self.ratings.get(url)
        reports: tuple[ProviderReport, ...]
        if full:
            engines = "3 of 90 engines flag it" if rating else "0 of 90 engines flag it"
            asked = {
                "virustotal": ProviderReport(
                    "virustotal", ProviderStatus.OK, rating or Rating.SAFE, engines
                ),
                "otx": ProviderReport("otx", ProviderStatus.NOT_FOUND, detail="no pulse"),
            }
            keys = self.online_scanners or ()
            reports = tuple(
                asked[name]
                if name in keys
                else ProviderReport(name, ProviderStatus.DISABLED, detail="no API key")
                for name in asked
            )
            if not keys:
                listed = ProviderReport("blocklist", ProviderStatus.NOT_FOUND, detail="not listed")
                reports = (listed, *reports)
        elif rating is not None:
            reports = (
                ProviderReport("relay", ProviderStatus.OK, rating, detail="listed by urlhaus"),
            )
        else:
            unlisted = "on no list the relay holds"
            reports = (ProviderReport("relay", ProviderStatus.NOT_FOUND, detail=unlisted),)
        return combine(url, reports, check(url))

    # --- groups

    def _group(self, group_id: str) -> FakeGroup:
        group = self.group_state.get(group_id)
        if group is None or self.username not in group.members:
            raise ClientError(f"you are not in a group {group_id}", ClientErrorCode.NO_GROUP)
        return group

    def _admin(self, group: FakeGroup, what: str) -> None:
        if self.username not in group.admins:
            text = f"only an admin of {group.name} can {what}"
            raise ClientError(text, ClientErrorCode.NOT_ADMIN)

    def _info(self, group: FakeGroup) -> GroupInfo:
        members = tuple(
            GroupMember(user, FINGERPRINT, user in self.verified, user in group.admins)
            for user in group.members
        )
        key_changed = tuple(sorted(group.key_changed))
        return GroupInfo(group.group_id, group.name, group.topic, members, group.epoch, key_changed)

    def _group_line(self, group: FakeGroup, change: GroupChange, by: str, subject: str) -> None:
        """As the core: a system line in the group's history, and its event."""
        conversation = ConversationId.group(group.group_id)
        event = GroupChanged(conversation, change, by, subject, 0)
        message_id = self._store(conversation.key, False, event.text, kind="system")
        group.epoch += 1
        self._emit(replace(event, message_id=message_id))

    async def create_group(self, name: str, users: Sequence[str]) -> GroupInfo:
        me = self.username or ""
        for user in users:
            self._known(user)
        group_id = f"{next(self._group_ids):032x}"
        group = FakeGroup(group_id, name, members=[me], admins={me})
        self.group_state[group_id] = group
        self._group_line(group, GroupChange.CREATED, me, name)
        for user in users:
            if user not in group.members:
                group.members.append(user)
                self._group_line(group, GroupChange.ADDED, me, user)
        return self._info(group)

    async def group_invite(self, group_id: str, user: str) -> GroupInfo:
        group = self._group(group_id)
        self._admin(group, "add members")
        self._known(user)
        if user not in group.members:
            group.members.append(user)
            self._group_line(group, GroupChange.ADDED, self.username or "", user)
        return self._info(group)

    async def group_remove(self, group_id: str, user: str) -> GroupInfo:
        group = self._group(group_id)
        self._admin(group, "remove members")
        if user not in group.members:
            raise ClientError(f"{user} is not in {group.name}", ClientErrorCode.NO_GROUP)
        group.members.remove(user)
        group.admins.discard(user)
        self._group_line(group, GroupChange.REMOVED, self.username or "", user)
        return self._info(group)

    async def group_leave(self, group_id: str) -> None:
        group = self._group(group_id)
        me = self.username or ""
        self._group_line(group, GroupChange.LEFT, me, me)
        group.members.remove(me)
        group.admins.discard(me)

    async def group_rename(self, group_id: str, name: str) -> GroupInfo:
        group = self._group(group_id)
        group.name = name
        self._group_line(group, GroupChange.RENAMED, self.username or "", name)
        return self._info(group)

    async def group_set_topic(self, group_id: str, topic: str) -> GroupInfo:
        group = self._group(group_id)
        group.topic = topic
        self._group_line(group, GroupChange.TOPIC, self.username or "", topic)
        return self._info(group)

    async def group_make_admin(self, group_id: str, user: str) -> GroupInfo:
        group = self._group(group_id)
        self._admin(group, "make admins")
        if user not in group.members:
            raise ClientError(f"{user} is not in {group.name}", ClientErrorCode.NOT_ALLOWED)
        group.admins.add(user)
        self._group_line(group, GroupChange.ADMINS, self.username or "", user)
        return self._info(group)

    def group_members(self, group_id: str) -> list[GroupMember]:
        return list(self._info(self._group(group_id)).members)

    def groups(self) -> list[GroupInfo]:
        mine = [g for g in self.group_state.values() if self.username in g.members]
        return [self._info(g) for g in mine]

    def group_names(self) -> dict[str, str]:
        return {g.group_id: g.name for g in self.group_state.values()}

    def _sendable(self, group_id: str) -> FakeGroup:
        group = self._group(group_id)
        if group.key_changed:
            user = sorted(group.key_changed)[0]
            raise SessionError(key_changed_advice(user), ClientErrorCode.KEY_CHANGED)
        return group

    async def group_send_text(self, group_id: str, text: str) -> str:
        group = self._sendable(group_id)
        key = ConversationId.group(group.group_id).key
        eid = f"e{next(self._eids)}"
        self._store(key, True, text, eid=eid, state=DeliveryState.SENDING)
        self.sent.append((key, text))
        self._emit(DeliveryChanged(key, eid, DeliveryState.SENT))
        return eid

    async def group_send_file(self, group_id: str, path: str | Path) -> str:
        group = self._sendable(group_id)
        source = Path(path).expanduser()
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise TransferError(f"cannot read {source}: {exc.strerror}") from exc
        blob_id = f"blob{next(self._blobs):04d}AAAAAAAAAAAAAAAAAAAAAAAA"
        await self._transfer(blob_id, size, "up")
        self._offer(blob_id, ConversationId.group(group.group_id).key, source.name, size)
        return blob_id

    # --- what tests do to it

    def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    def _store(
        self,
        peer: str,
        outgoing: bool,
        text: str,
        eid: str = "",
        state: str = "",
        kind: str = "text",
        file_id: str = "",
        sender: str | None = None,
    ) -> int:
        """`sender` defaults to who wrote it in a direct conversation; a group names it."""
        message_id = next(self._ids)
        ts = BASE_TS + message_id * 60
        if sender is None:
            sender = "" if kind == "system" else (self.username or "") if outgoing else peer
        record = MessageRecord(
            peer=peer,
            conversation=ConversationId.parse(peer).key,
            sender=sender,
            outgoing=outgoing,
            text=text,
            ts=ts,
            eid=eid,
            state=state,
            kind=kind,
            file_id=file_id,
        )
        self.messages.append(StoredMessage(message_id, record))
        if ConversationId.parse(peer).is_direct:
            self.states.setdefault(peer, ConversationState.NONE)
        self.hidden.discard(peer)
        return message_id

    def add_history(self, peer: str, texts: list[str]) -> None:
        """Stored messages, alternating incoming and outgoing, without events."""
        for i, text in enumerate(texts):
            self._store(peer, i % 2 == 1, text, eid=f"h{i}", state=DeliveryState.DELIVERED)

    def receive(self, peer: str, text: str) -> None:
        """A message from `peer` arrives, as the core would report it."""
        message_id = self._store(peer, False, text)
        self.unread[peer] = self.unread.get(peer, 0) + 1
        self._emit(
            MessageReceived(
                ConversationId.direct(peer), peer, text, self.messages[-1].record.ts, message_id
            )
        )

    def peer_deletes_account(self, peer: str) -> None:
        """The relay pushes that `peer`'s account is gone, as the core reports it."""
        self.gone.add(peer)
        self._emit(PresenceChanged(peer, "deleted"))

    def activate(self, peer: str) -> None:
        """The peer answered the session set-up."""
        self.states[peer] = ConversationState.ACTIVE
        self._emit(ConversationChanged(peer, ConversationState.ACTIVE, FINGERPRINT))

    def jam(self, peer: str) -> None:
        """The peer sent past the skip limit: the core marks the session stuck."""
        self.states[peer] = ConversationState.JAMMED
        self._emit(ConversationChanged(peer, ConversationState.JAMMED))

    def change_key(self, peer: str) -> None:
        """Another key is offered for `peer` (by the relay, or by the peer on a new device)."""
        self.key_changes[peer] = self.states.get(peer, ConversationState.NONE)
        self.verified.discard(peer)  # as the core: any key change clears the mark
        self._emit(KeyChanged(peer, FINGERPRINT, OFFERED_FINGERPRINT))
        self._emit(ConversationChanged(peer, ConversationState.KEY_CHANGED, OFFERED_FINGERPRINT))

    def reshare_pinned_key(self, peer: str) -> None:
        """The peer shares the pinned key again, which ends a pending change as the core does."""
        if peer in self.key_changes:
            self._keep_pinned(peer, by_peer=True)

    def receive_file(self, peer: str, name: str, data: bytes, blob_id: str = "") -> str:
        """A file offer from `peer` arrives; returns its blob id."""
        blob_id = blob_id or f"in{next(self._blobs):04d}BBBBBBBBBBBBBBBBBBBBBBBBBB"
        self.offered[blob_id] = (name, data)
        text = f"{name} ({human_size(len(data))})"
        message_id = self._store(peer, False, text, kind="file", file_id=blob_id)
        self.unread[peer] = self.unread.get(peer, 0) + 1
        self._emit(
            FileOffered(ConversationId.direct(peer), peer, blob_id, name, len(data), message_id)
        )
        return blob_id

    def resume_uploads(self, finish: bool = True) -> None:
        """After a reconnect the core finishes interrupted uploads on its own, as here.

        `finish=False` stops half way, to look at the bar; call again to finish.
        """
        for blob_id, _, _, size in self.interrupted:
            self._emit(TransferProgress(blob_id, size // 2, size, "up"))
        if not finish:
            return
        for blob_id, peer, name, size in self.interrupted:
            self._emit(TransferProgress(blob_id, size, size, "up"))
            self._offer(blob_id, peer, name, size)
        self.interrupted = []

    def invite_me(
        self, by: str, name: str, members: Sequence[str], topic: str = "", pinned: bool = True
    ) -> str:
        """`by` adds us to a new group, as the core reports a Welcome; returns its id."""
        group_id = f"{next(self._group_ids):032x}"
        me = self.username or ""
        group = FakeGroup(group_id, name, topic, [by, *members, me], {by})
        self.group_state[group_id] = group
        conversation = ConversationId.group(group_id)
        fingerprint = FINGERPRINT if pinned else OFFERED_FINGERPRINT
        self._emit(
            GroupInvited(conversation, by, fingerprint, pinned, name, topic, tuple(group.members))
        )
        self._group_line(group, GroupChange.ADDED, by, me)
        return group_id

    def receive_group(self, group_id: str, sender: str, text: str) -> int:
        """A member's message arrives in a group; returns its message id."""
        key = ConversationId.group(group_id).key
        message_id = self._store(key, False, text, sender=sender)
        ts = self.messages[-1].record.ts
        self.unread[key] = self.unread.get(key, 0) + 1
        self._emit(MessageReceived(ConversationId.group(group_id), sender, text, ts, message_id))
        return message_id

    def group_event(self, group_id: str, change: GroupChange, by: str, subject: str) -> None:
        """Another member changes the group, as the core reports a Commit."""
        group = self.group_state[group_id]
        if change == GroupChange.ADDED:
            group.members.append(subject)
        elif change in (GroupChange.REMOVED, GroupChange.LEFT):
            group.members.remove(subject)
        elif change == GroupChange.RENAMED:
            group.name = subject
        elif change == GroupChange.TOPIC:
            group.topic = subject
        self._group_line(group, change, by, subject)

    def change_group_key(self, group_id: str, user: str) -> None:
        """A member's leaf names another identity key: the group stops sending."""
        self.group_state[group_id].key_changed.add(user)
        self.verified.discard(user)
        conversation = ConversationId.group(group_id)
        self._emit(GroupKeyChanged(conversation, user, FINGERPRINT, OFFERED_FINGERPRINT))


def as_client(fake: FakeClient) -> ChatAPI:
    """The fake where the app expects a client: mypy proves here that it is one."""
    return fake
