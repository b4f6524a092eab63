"""A device's groups in the vault, and what each step of a group session leaves there.

Each step of a `GroupSession` (groups/session.py) returns outputs; here they
become history lines, pins, offered keys and client events, written with the
new session in one vault transaction (with the delivery's `seen` mark when it
came from the relay), and the events are emitted once the write is done.

A session is two records (groups/stored.py): the ratchet tree, which only a
Commit changes and which is most of a large group's bytes, and the rest. The
decoded tree of each group is kept in memory by its digest, with who among its
members has a key other than the pinned one, so that a message costs the same
in a group of 1,000 as in a group of 3: no tree decoded, hashed, compared with
the pins or written again. The vault stays the record: the tree is written
unless it is the one kept and the session record in the vault names it (so a
write by another process or object in between is never built upon).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeGuard

import msgspec

from securechat.client import payloads as P
from securechat.client import transfers
from securechat.client import vault_keys as K
from securechat.client.api import GroupInfo, GroupMember
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ErrorRaised,
    Event,
    FileOffered,
    GroupChange,
    GroupChanged,
    GroupInvited,
    GroupKeyChanged,
    KeyChanged,
    KeyShared,
    MessageReceived,
)
from securechat.client.payloads import clocks_disagree
from securechat.client.records import MessageRecord
from securechat.client.trust import Trust
from securechat.client.vault_store import Vault
from securechat.crypto.filestream import FileManifest
from securechat.crypto.mls.ratchet_tree import RatchetTree
from securechat.crypto.mls.suite import CipherSuite
from securechat.errors import ClientError, ClientErrorCode, SecureChatError
from securechat.groups import outputs as O
from securechat.groups.errors import InvalidGroupData
from securechat.groups.session import GroupSession
from securechat.groups.stored import (
    StoredTree,
    decode_session,
    decode_tree,
    encode_session,
    tree_digest_of,
)
from securechat.protocol import group_frames as GF


def is_action(output: O.Output) -> TypeGuard[O.Action]:
    return isinstance(output, O.SendCommit | O.SendHandshake | O.SendMessage | O.FetchCommits)


@dataclass
class _KeptTree:
    """One group's tree as last read from or written to `vault`."""

    vault: Vault
    digest: bytes
    tree: RatchetTree
    pins: tuple[int, int] | None = None
    """(`pin_writes`, `data_version`) when `blocked` was worked out for this tree."""
    blocked: frozenset[str] = frozenset()


class GroupStore:
    def __init__(self, ctx: ClientContext, trust: Trust) -> None:
        self._ctx = ctx
        self._trust = trust
        self._trees: dict[str, _KeptTree] = {}

    def ids(self, vault: Vault) -> list[str]:
        blob = vault.get(K.GROUPS)
        return msgspec.msgpack.decode(blob, type=list[str]) if blob else []

    def load(self, vault: Vault, group_id: str) -> GroupSession | None:
        blob = vault.get(K.group(group_id))
        if blob is None:
            return None
        return decode_session(
            blob, lambda digest, suite: self._tree(vault, group_id, digest, suite)
        )

    def _tree(self, vault: Vault, group_id: str, digest: bytes, suite: CipherSuite) -> RatchetTree:
        kept = self._trees.get(group_id)
        if kept is not None and kept.vault is vault and kept.digest == digest:
            return kept.tree
        data = vault.get(K.group_tree(group_id))
        if data is None:
            raise InvalidGroupData("The stored group's tree is missing from the vault.")
        tree = decode_tree(data, digest, suite)
        self._trees[group_id] = _KeptTree(vault, digest, tree)
        return tree

    def rechecked(self, group_id: str, session: GroupSession) -> GroupSession:
        """`session.recheck` against the pins, worked out again only when the tree or a
        pin may have changed since (a 1,000-member check reads 1,000 pins)."""
        vault = self._ctx.need_vault()
        kept = self._trees.get(group_id)
        if kept is None or kept.vault is not vault or kept.tree is not session.mls.tree:
            return session.recheck(self._trust.pinned_key)
        pins = (vault.pin_writes, vault.data_version())
        if kept.pins != pins:
            kept.blocked = session.recheck(self._trust.pinned_key).blocked
            kept.pins = pins
        return replace(session, blocked=kept.blocked)

    def session(self, group_id: str) -> GroupSession:
        session = self.load(self._ctx.need_vault(), group_id)
        if session is None or session.removed:
            raise ClientError(f"you are not in a group {group_id}", ClientErrorCode.NO_GROUP)
        return session

    def info(self, group_id: str) -> GroupInfo:
        return self._info(group_id, self.session(group_id))

    def _info(self, group_id: str, session: GroupSession) -> GroupInfo:
        members: dict[str, GroupMember] = {}
        for member in session.members:
            if member.username in members:
                continue  # another device of the same user
            verified = member.username != session.own_user and self._trust.is_verified(
                member.username
            )
            members[member.username] = GroupMember(
                member.username, member.fingerprint, verified, member.username in session.admins
            )
        metadata = session.metadata
        return GroupInfo(
            group_id,
            metadata.name,
            metadata.topic,
            tuple(members.values()),
            session.epoch,
            tuple(sorted(session.blocked)),
        )

    def groups(self) -> list[GroupInfo]:
        vault = self._ctx.need_vault()
        found = []
        for group_id in self.ids(vault):
            session = self.load(vault, group_id)
            if session is not None and not session.removed:
                found.append(self._info(group_id, session))
        return found

    def warm(self) -> None:
        """At sign-in: each group's tree read and hashed once, so the first Commit after
        a restart costs what any other does (a 1,000-member tree takes ~50 ms to read
        and hash; bench/README.md). A group that does not load is left to say so when
        used."""
        vault = self._ctx.need_vault()
        for group_id in self.ids(vault):
            with contextlib.suppress(SecureChatError):
                session = self.load(vault, group_id)
                if session is not None and not session.removed:
                    session.mls.tree.tree_hash()

    def members(self, group_id: str) -> list[GroupMember]:
        return list(self.info(group_id).members)

    def apply(
        self,
        group_id: str,
        session: GroupSession,
        outputs: Sequence[O.Output],
        *,
        envelope: GF.GroupEnvelope | None = None,
        seen: tuple[str, str] | None = None,
        new: bool = False,
        drop: tuple[str, ...] = (),
    ) -> list[O.Action]:
        """Writes the session with what its outputs leave behind, then emits their events;
        returns the actions, for the caller to carry out."""
        effects = Effects(received=envelope.ts if envelope is not None else time.time())
        effects.drop.extend(drop)
        actions: list[O.Action] = []
        for output in outputs:
            if is_action(output):
                actions.append(output)
            elif isinstance(output, O.MessageReceived):
                self._message(group_id, output, envelope, effects)
            else:
                self._event(group_id, session, output, effects)
        self.save(group_id, session, effects, new=new, seen=seen)
        return actions

    def save(
        self,
        group_id: str,
        session: GroupSession,
        effects: Effects,
        *,
        new: bool = False,
        seen: tuple[str, str] | None = None,
    ) -> None:
        vault = self._ctx.need_vault()
        tree, kept = session.mls.tree, self._trees.get(group_id)
        if kept is not None and kept.tree is tree and self._names(vault, group_id, kept.digest):
            digest = kept.digest
        else:
            stored = StoredTree.of(tree)
            digest = stored.digest
            effects.state[K.group_tree(group_id)] = stored.data
            kept = _KeptTree(vault, digest, tree)
        effects.state[K.group(group_id)] = encode_session(session, digest)
        if new and group_id not in (ids := self.ids(vault)):
            effects.state[K.GROUPS] = msgspec.msgpack.encode([*ids, group_id])
        message_ids = iter(
            vault.record_all(effects.records, effects.state, seen=seen, drop=tuple(effects.drop))
        )
        self._trees[group_id] = kept
        for event in effects.events:
            self._ctx.emit(event(next(message_ids)) if callable(event) else event)

    @staticmethod
    def _names(vault: Vault, group_id: str, digest: bytes) -> bool:
        """Whether the session record in the vault names this tree digest."""
        record = vault.get(K.group(group_id))
        return record is not None and tree_digest_of(record) == digest

    def _message(
        self,
        group_id: str,
        output: O.MessageReceived,
        envelope: GF.GroupEnvelope | None,
        effects: Effects,
    ) -> None:
        conversation = ConversationId.group(group_id)
        received, sender = effects.received, output.sender
        try:
            opened = P.decode_inner(output.data)
            content = opened.content
            if isinstance(content, P.FileOffer):
                manifest = FileManifest.from_bytes(content.manifest)
        except SecureChatError as exc:
            effects.events.append(
                ErrorRaised(f"a message from {sender} did not open: {exc}", ClientErrorCode.E2E)
            )
            return
        sent_at = opened.sent_at if opened.sent_at is not None else received
        base = MessageRecord(
            peer=conversation.key,
            conversation=conversation.key,
            sender=sender,
            outgoing=False,
            text="",
            ts=sent_at,
            eid=envelope.eid if envelope is not None else "",
            received=received,
        )
        if isinstance(content, P.Text):
            text = content.text
            disagree = clocks_disagree(sent_at, received)
            effects.add(
                msgspec.structs.replace(base, text=text),
                lambda mid: MessageReceived(
                    conversation, sender, text, sent_at, mid, received, disagree
                ),
            )
        elif isinstance(content, P.FileOffer):
            blob_id = content.blob_id
            effects.state[K.offered_file(blob_id)] = content.manifest
            effects.add(
                msgspec.structs.replace(
                    base,
                    kind="file",
                    file_id=blob_id,
                    text=f"{manifest.name} ({transfers.human_size(manifest.size)})",
                ),
                lambda mid: FileOffered(
                    conversation, sender, blob_id, manifest.name, manifest.size, mid
                ),
            )

    def _event(
        self, group_id: str, session: GroupSession, event: O.Output, effects: Effects
    ) -> None:
        conversation = ConversationId.group(group_id)
        me = session.own_user
        match event:
            case O.Invited():
                inviter = next((m for m in session.members if m.username == event.by), None)
                fingerprint = inviter.fingerprint if inviter is not None else ""
                known = self._trust.pinned_key(event.by) is not None
                effects.events.append(
                    GroupInvited(
                        conversation,
                        event.by,
                        fingerprint,
                        known,
                        event.name,
                        event.topic,
                        event.members,
                    )
                )
                self.line(group_id, GroupChange.ADDED, event.by, me, effects)
            case O.MemberAdded():
                self.line(group_id, GroupChange.ADDED, event.by, event.user, effects)
            case O.MemberRemoved():
                self.line(group_id, GroupChange.REMOVED, event.by, event.user, effects)
            case O.MemberLeft():
                self.line(group_id, GroupChange.LEFT, event.user, event.user, effects)
            case O.RemovedFromGroup():
                if session.leaving:
                    self.line(group_id, GroupChange.LEFT, me, me, effects)
                else:
                    self.line(group_id, GroupChange.REMOVED, event.by, me, effects)
            case O.Renamed():
                self.line(group_id, GroupChange.RENAMED, event.by, event.name, effects)
            case O.TopicChanged():
                self.line(group_id, GroupChange.TOPIC, event.by, event.topic, effects)
            case O.AdminsChanged() if event.granted:
                granted = ", ".join(event.granted)
                self.line(group_id, GroupChange.ADMINS, event.by, granted, effects)
            case O.IdentityFirstSeen():
                member = event.member
                effects.state[K.pin(member.username)] = member.identity.der
                effects.events.append(KeyShared(member.username, member.fingerprint))
            case O.IdentityKeyChanged():
                member = event.member
                effects.state[K.offered_key(member.username)] = member.identity.der
                effects.drop.append(K.verified(member.username))
                pinned, offered = event.pinned_fingerprint, member.fingerprint
                effects.events.append(KeyChanged(member.username, pinned, offered))
                effects.events.append(
                    GroupKeyChanged(conversation, member.username, pinned, offered)
                )
            case O.CommitRefused() | O.ProposalDropped() | O.MessageUnreadable():
                text = f"a change to the group was refused: {event.reason}"
                effects.events.append(ErrorRaised(text, ClientErrorCode.E2E))

    def line(
        self, group_id: str, change: GroupChange, by: str, subject: str, effects: Effects
    ) -> None:
        """A system line in the group's history, and its event once it has an id."""
        conversation = ConversationId.group(group_id)
        event = GroupChanged(conversation, change, by, subject, 0)
        record = MessageRecord(
            peer=conversation.key,
            conversation=conversation.key,
            sender="",
            outgoing=False,
            text=event.text,
            ts=effects.received,
            kind="system",
        )
        effects.add(record, lambda mid: dataclasses.replace(event, message_id=mid))


@dataclass
class Effects:
    """What one step of a group session leaves behind, written in one vault transaction.

    `events` are emitted in order after the write; a callable one belongs to the
    record at the same position among the callables, and is given its message id.
    """

    received: float
    records: list[MessageRecord] = field(default_factory=list)
    events: list[Event | Callable[[int], Event]] = field(default_factory=list)
    state: dict[str, bytes] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)

    def add(self, record: MessageRecord, event: Callable[[int], Event]) -> None:
        self.records.append(record)
        self.events.append(event)
