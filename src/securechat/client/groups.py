"""Group conversations on this device: the I/O shell around the pure `groups/` layer.

A `GroupSession` (groups/session.py) takes inputs and returns outputs; this
module keeps each session in the vault, carries out the actions it returns
against the relay, and turns its events into history lines, pins and client
events:

    SendCommit              -> group_commit; `group_accepted` / `group_conflict` fed back
    SendMessage, SendHandshake -> group_send; a conflict fetches and sends again
    FetchCommits            -> group_fetch; each Commit processed in epoch order

Every change to a session is one synchronous load-compute-save with no await in
between, so deliveries and the user's commands interleave safely without a lock
(a lock held across a request would stall the connection that answers it).

Deliveries (`group_deliver`) make no request: each envelope's new session
state, the lines it adds, the pins it learns and its `seen` mark are written in
one vault transaction before the relay is acknowledged, as for 1:1 messages, so
a crash loses and duplicates nothing. The actions a delivery calls for (a
Commit of others' leave proposals, a fetch after a gap) run afterwards.

Identity: every member's credential is bound to an RSA identity key, compared
with the pinned one. A first key is pinned (trust on first use, as `sharekey`);
another key than the pinned one blocks sending to the group until the user
runs `verify` and then `reject` or `trust`, as in 1:1 conversations.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

import msgspec

from securechat.client import payloads as P
from securechat.client import transfers
from securechat.client import vault_keys as K
from securechat.client.api import GroupInfo, GroupMember
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    DeliveryChanged,
    DeliveryState,
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
from securechat.client.relay_client import new_envelope_id
from securechat.client.trust import Trust
from securechat.client.vault_store import Vault
from securechat.crypto.filestream import FileManifest
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.welcome import Welcome
from securechat.errors import (
    ClientError,
    ClientErrorCode,
    ConnectionLost,
    SecureChatError,
    ServerRejected,
)
from securechat.groups import outputs as O
from securechat.groups.credentials import FirstSeen, Refused, classify_key_package
from securechat.groups.credentials import KeyChanged as KeyMismatch
from securechat.groups.device import Device, key_package, new_device
from securechat.groups.errors import GroupBusy, GroupError
from securechat.groups.session import GroupSession
from securechat.groups.stored import (
    decode_device,
    decode_key_package,
    decode_session,
    encode_device,
    encode_key_package,
    encode_session,
)
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF

log = logging.getLogger("securechat.client")

KEY_PACKAGE_BATCH = 20
"""One-time key packages published at a time: each invitation uses one."""
MAX_ROUNDS = 8
"""Answers fed back for one command (conflicts, fetches) before it gives up: the
relay moving on that often means others commit faster than we catch up."""

Request = Callable[[Callable[[int], F.ClientFrame]], Awaitable[F.ServerFrame]]


def _now() -> int:
    return int(time.time())


def _commit_eid(commit: bytes) -> str:
    """The same Commit always goes with the same eid, so sending it again after a
    lost answer gets the relay's first answer rather than a second Commit."""
    return base64.urlsafe_b64encode(hashlib.sha256(commit).digest()[:18]).decode()


def _group_send(group_id: str, message: O.SendMessage, eid: str) -> Callable[[int], F.ClientFrame]:
    def build(rid: int) -> F.ClientFrame:
        group = bytes.fromhex(group_id)
        return GF.GroupSend(rid=rid, group=group, epoch=message.epoch, eid=eid, body=message.body)

    return build


def _is_action(output: O.Output) -> TypeGuard[O.Action]:
    return isinstance(output, O.SendCommit | O.SendHandshake | O.SendMessage | O.FetchCommits)


def _group_error(exc: GroupError) -> ClientError:
    code = ClientErrorCode.GROUP_BUSY if isinstance(exc, GroupBusy) else ClientErrorCode.NOT_ALLOWED
    return ClientError(str(exc), code)


class Groups:
    def __init__(self, ctx: ClientContext, trust: Trust, *, request: Request | None = None) -> None:
        """`request` defaults to the relay's; tests pass an in-memory delivery service."""
        self._ctx = ctx
        self._trust = trust
        self._request: Request = request if request is not None else ctx.relay.request

    # --- this device ------------------------------------------------------------------

    def device(self) -> Device:
        """Made once per device: the credential costs an RSA signature."""
        vault, identity, me = self._ctx.need_identity()
        blob = vault.get(K.GROUP_DEVICE)
        if blob is not None:
            return decode_device(blob)
        device = new_device(identity, me)
        vault.put(K.GROUP_DEVICE, encode_device(device))
        return device

    async def publish_key_packages(self, *, more: bool = False) -> None:
        """After sign-in, once per device: a batch and a last-resort package. `more`
        (the relay said `key_packages_low`): another batch.

        The private keys are stored before the relay has the packages: a Welcome
        may be on its way the moment it hands one out.
        """
        vault = self._ctx.need_vault()
        first = vault.get(K.GROUP_KEY_PACKAGES) is None
        if not first and not more:
            return
        device = self.device()
        suite = get_suite(device.suite_id)
        now = _now()
        made = [key_package(device, now=now) for _ in range(KEY_PACKAGE_BATCH)]
        last = key_package(device, now=now) if first else None
        stored = {
            K.key_package(kp.ref(suite)): encode_key_package(kp, private)
            for kp, private in [*made, *([last] if last else [])]
        }
        if last is not None:
            stored[K.GROUP_LAST_RESORT] = last[0].ref(suite)
        vault.record_all([], stored)
        try:
            await self._request(
                lambda rid: GF.PublishKeyPackages(
                    rid=rid,
                    device=device.device,
                    key_packages=[kp.encode() for kp, _ in made],
                    last_resort=last[0].encode() if last else None,
                )
            )
        except BaseException:
            vault.record_all([], {}, drop=tuple(stored))
            raise
        vault.put(K.GROUP_KEY_PACKAGES, b"1")

    async def start(self) -> None:
        """At sign-in: key packages, then any Commit whose answer was lost.

        A relay that does not serve groups refuses the frame, which is no reason to
        trouble the user; the next sign-in tries again.
        """
        try:
            await self.publish_key_packages()
        except (ServerRejected, ConnectionLost) as exc:
            log.info("key packages not published: %s", exc.code)
            return
        await self.resume()

    # --- what the API shows -----------------------------------------------------------

    def _ids(self, vault: Vault) -> list[str]:
        blob = vault.get(K.GROUPS)
        return msgspec.msgpack.decode(blob, type=list[str]) if blob else []

    def _load(self, vault: Vault, group_id: str) -> GroupSession | None:
        blob = vault.get(K.group(group_id))
        return decode_session(blob) if blob is not None else None

    def _session(self, group_id: str) -> GroupSession:
        session = self._load(self._ctx.need_vault(), group_id)
        if session is None or session.removed:
            raise ClientError(f"you are not in a group {group_id}", ClientErrorCode.NO_GROUP)
        return session

    def info(self, group_id: str) -> GroupInfo:
        return self._info(group_id, self._session(group_id))

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
        for group_id in self._ids(vault):
            session = self._load(vault, group_id)
            if session is not None and not session.removed:
                found.append(self._info(group_id, session))
        return found

    def members(self, group_id: str) -> list[GroupMember]:
        return list(self.info(group_id).members)

    def recipients(self, group_id: str) -> list[str]:
        """Everyone else in a group we may send to now (a file's readers)."""
        session = self._sendable(self._session(group_id))
        return sorted({m.username for m in session.members} - {session.own_user})

    # --- commands -----------------------------------------------------------------------

    async def create(self, name: str, users: Sequence[str]) -> GroupInfo:
        """A group with us as admin; the relay learns of it from the Commit adding `users`."""
        _, _, me = self._ctx.need_identity()
        if not name.strip():
            raise ClientError("a group needs a name", ClientErrorCode.INVALID_MESSAGE)
        others = list(dict.fromkeys(u for u in users if u != me))
        packages = await self._key_packages(others) if others else []
        try:
            session = GroupSession.create(self.device(), name, now=_now())
        except GroupError as exc:
            raise _group_error(exc) from exc
        group_id = session.group_id.hex()
        effects = _Effects(received=time.time())
        self._line(group_id, GroupChange.CREATED, me, name, effects)
        self._save(group_id, session, effects, new=True)
        if packages:
            await self._command(group_id, O.AddMembers(tuple(packages)))
        return self.info(group_id)

    async def invite(self, group_id: str, user: str) -> GroupInfo:
        self._admin(group_id, "add members")
        packages = await self._key_packages([user])
        await self._command(group_id, O.AddMembers(tuple(packages)))
        return self.info(group_id)

    async def remove(self, group_id: str, user: str) -> GroupInfo:
        self._admin(group_id, "remove members")
        if user not in {m.username for m in self._session(group_id).members}:
            raise ClientError(f"{user} is not in this group", ClientErrorCode.NOT_ALLOWED)
        await self._command(group_id, O.RemoveMember(user))
        return self.info(group_id)

    async def rename(self, group_id: str, name: str) -> GroupInfo:
        self._admin(group_id, "rename it")
        await self._command(group_id, O.Rename(name))
        return self.info(group_id)

    async def set_topic(self, group_id: str, topic: str) -> GroupInfo:
        self._admin(group_id, "set its topic")
        await self._command(group_id, O.SetTopic(topic))
        return self.info(group_id)

    async def leave(self, group_id: str) -> None:
        """Proposes our removal; the next member to commit includes it."""
        actions = self._step(group_id, lambda s: s.leave())
        await self._carry_out(group_id, actions)

    def _admin(self, group_id: str, what: str) -> None:
        session = self._session(group_id)
        if session.own_user not in session.admins:
            name = session.metadata.name
            raise ClientError(f"only an admin of {name} can {what}", ClientErrorCode.NOT_ADMIN)

    async def _command(self, group_id: str, intent: O.Intent) -> None:
        pins = self._trust.pinned_key
        actions = self._step(group_id, lambda s: s.request(intent, now=_now(), pins=pins))
        await self._carry_out(group_id, actions)

    async def _key_packages(self, users: list[str]) -> list[tuple[str, KeyPackage]]:
        """One key package per device of each user, checked against our pins first.

        A user never met is pinned now (trust on first use, as `sharekey`); a
        package signed by another key than the pinned one is refused with the
        key-change advice.
        """
        vault = self._ctx.need_vault()
        answer = await self._request(lambda rid: GF.FetchKeyPackages(rid=rid, users=users))
        if not isinstance(answer, GF.KeyPackages):
            raise ClientError(f"unexpected answer {type(answer).__name__} to fetch_key_packages")
        if answer.missing:
            raise ClientError(
                f"{', '.join(answer.missing)} cannot be added: no key packages published "
                "(they have not signed in since groups arrived, or do not exist)",
                ClientErrorCode.NO_KEY,
            )
        packages: list[tuple[str, KeyPackage]] = []
        pins: dict[str, bytes] = {}
        for entry in answer.packages:
            if entry.user not in users:
                continue
            try:
                package = KeyPackage.decode(entry.key_package)
            except MLSError as exc:
                raise ClientError(f"{entry.user}'s key package is invalid: {exc}") from exc
            check = classify_key_package(package, self._trust.pinned_key, expected_user=entry.user)
            if isinstance(check, Refused):
                raise ClientError(check.reason, ClientErrorCode.INVALID_KEYS)
            if isinstance(check, KeyMismatch):
                raise ClientError(
                    f"{entry.user}'s key changed: compare `verify {entry.user}` with them, then "
                    f"`reject {entry.user}` or `trust {entry.user}`",
                    ClientErrorCode.KEY_CHANGED,
                )
            if isinstance(check, FirstSeen):
                pins[K.pin(entry.user)] = check.member.identity.der
            packages.append((entry.user, package))
        vault.record_all([], pins)
        return packages

    # --- sending ------------------------------------------------------------------------

    async def send_text(self, group_id: str, text: str) -> str:
        if not text:
            raise ClientError("nothing to send", ClientErrorCode.INVALID_MESSAGE)
        if len(text) > P.MAX_TEXT_CHARS:
            raise ClientError(
                f"a message holds at most {P.MAX_TEXT_CHARS} characters",
                ClientErrorCode.INVALID_MESSAGE,
            )
        return await self.send_inner(group_id, P.Text(text=text), kind="text", text=text)

    async def send_inner(
        self, group_id: str, content: P.Inner, *, kind: str, text: str, file_id: str = ""
    ) -> str:
        """Encrypts `content` once for every member and sends it; returns its eid.

        The message is stored (SENDING) with the session it advanced; when the
        relay says our epoch is stale, the Commits we missed are processed and
        the same content goes out again, under the same eid, for the new epoch.
        """
        _, _, me = self._ctx.need_identity()
        key = ConversationId.group(group_id).key
        sent_at = time.time()
        eid = new_envelope_id()
        record = MessageRecord(
            peer=key,
            conversation=key,
            sender=me,
            outgoing=True,
            text=text,
            ts=sent_at,
            eid=eid,
            state=DeliveryState.SENDING,
            kind=kind,
            file_id=file_id,
        )
        plaintext = P.encode_inner(content, sent_at)
        unstored: MessageRecord | None = record
        for _ in range(MAX_ROUNDS):
            message = self._seal(group_id, plaintext, unstored)
            unstored = None
            try:
                answer = await self._request(_group_send(group_id, message, eid))
            except (ConnectionLost, ServerRejected, TimeoutError):
                # Sealed for an epoch that may be gone by the reconnect: not sent again.
                self._ctx.need_vault().update_delivery(eid, DeliveryState.FAILED)
                self._ctx.emit(DeliveryChanged(key, eid, DeliveryState.FAILED))
                raise
            if isinstance(answer, F.Accepted):
                vault = self._ctx.need_vault()
                vault.update_delivery(eid, DeliveryState.SENT)
                self._ctx.emit(DeliveryChanged(key, eid, DeliveryState.SENT))
                return eid
            if not isinstance(answer, GF.GroupConflict):
                raise ClientError(f"unexpected answer {type(answer).__name__} to group_send")
            await self._carry_out(group_id, [O.FetchCommits(message.epoch)])
        raise ClientError(
            "the group changed faster than this device could follow; try again",
            ClientErrorCode.GROUP_BUSY,
        )

    def _seal(self, group_id: str, plaintext: bytes, record: MessageRecord | None) -> O.SendMessage:
        session = self._sendable(self._session(group_id))
        try:
            session, outputs = session.send(plaintext)
        except GroupError as exc:
            raise _group_error(exc) from exc
        (message,) = outputs
        assert isinstance(message, O.SendMessage)
        effects = _Effects(received=time.time())
        if record is not None:
            effects.records.append(record)
        self._save(group_id, session, effects)
        return message

    def _sendable(self, session: GroupSession) -> GroupSession:
        """The session with key changes the user resolved since cleared; refused while any
        member's key change is unresolved (the 1:1 rule: nothing goes to a swapped key)."""
        session = session.recheck(self._trust.pinned_key)
        if session.blocked:
            user = sorted(session.blocked)[0]
            raise ClientError(
                f"{user}'s key changed: compare `verify {user}` with them, then "
                f"`reject {user}` keeps the key you had or `trust {user}` accepts the new one",
                ClientErrorCode.KEY_CHANGED,
            )
        return session

    async def resume(self) -> None:
        """After a (re)connect: Commits whose answer was lost go out again, and each
        group catches up with what it missed while its Commit was in flight."""
        vault = self._ctx.need_vault()
        for group_id in self._ids(vault):
            session = self._load(vault, group_id)
            if session is not None and session.pending is not None:
                try:
                    await self._carry_out(group_id, [a for a in session.resend() if _is_action(a)])
                except ConnectionLost:
                    return  # the next connection tries again

    # --- carrying out what a session asks ------------------------------------------------

    def _step(
        self,
        group_id: str,
        change: Callable[[GroupSession], tuple[GroupSession, tuple[O.Output, ...]]],
    ) -> list[O.Action]:
        """Load, change, save with the lines and events of the change: one vault write."""
        session = self._session(group_id)
        try:
            session, outputs = change(session)
        except GroupError as exc:
            raise _group_error(exc) from exc
        return self._apply(group_id, session, outputs)

    async def _carry_out(self, group_id: str, actions: Iterable[O.Action]) -> None:
        queue = list(actions)
        rounds = 0
        while queue:
            rounds += 1
            if rounds > MAX_ROUNDS * 4:
                raise ClientError(
                    "the group changed faster than this device could follow; try again",
                    ClientErrorCode.GROUP_BUSY,
                )
            queue = [*await self._act(group_id, queue[0]), *queue[1:]]

    async def _act(self, group_id: str, action: O.Action) -> list[O.Action]:
        group = bytes.fromhex(group_id)
        now = _now()
        match action:
            case O.SendCommit():
                answer = await self._request(
                    lambda rid: GF.GroupCommit(
                        rid=rid,
                        group=group,
                        epoch=action.epoch,
                        eid=_commit_eid(action.commit),
                        commit=action.commit,
                        welcome=action.welcome,
                        added=list(action.added),
                        removed=list(action.removed),
                    )
                )
                if isinstance(answer, GF.GroupAccepted):
                    return self._step(group_id, lambda s: s.accepted(action.epoch, now=now))
                if isinstance(answer, GF.GroupConflict):
                    current = answer.epoch
                    return self._step(
                        group_id, lambda s: s.conflict(action.epoch, current, now=now)
                    )
            case O.SendHandshake() | O.SendMessage():
                answer = await self._request(
                    lambda rid: GF.GroupSend(
                        rid=rid,
                        group=group,
                        epoch=action.epoch,
                        eid=new_envelope_id(),
                        body=action.body,
                    )
                )
                if isinstance(answer, F.Accepted):
                    return []
                if isinstance(answer, GF.GroupConflict):
                    # A leave proposal goes out again by itself in the next epoch.
                    return [O.FetchCommits(action.epoch)]
            case O.FetchCommits():
                answer = await self._request(
                    lambda rid: GF.GroupFetch(rid=rid, group=group, since=action.since)
                )
                if isinstance(answer, GF.GroupCommits):
                    more = self._receive_commits(group_id, answer.commits)
                    # One frame holds what fits: ask again while the relay is ahead.
                    following = max((c.epoch + 1 for c in answer.commits), default=answer.epoch)
                    if following < answer.epoch:
                        more.append(O.FetchCommits(following))
                    return more
        raise ClientError(f"unexpected answer {type(answer).__name__} from the relay")

    def _receive_commits(self, group_id: str, commits: Sequence[GF.CommitEntry]) -> list[O.Action]:
        actions: list[O.Action] = []
        pins = self._trust.pinned_key
        for entry in sorted(commits, key=lambda c: c.epoch):

            def receive(
                s: GroupSession, e: GF.CommitEntry = entry
            ) -> tuple[GroupSession, tuple[O.Output, ...]]:
                return s.receive_commit(e.epoch, e.commit, now=_now(), pins=pins)

            more = self._step(group_id, receive)
            actions.extend(a for a in more if not isinstance(a, O.FetchCommits))
        return actions

    # --- deliveries ---------------------------------------------------------------------

    def on_delivery(self, envelope: GF.GroupEnvelope) -> None:
        """`on_envelope`, with what it calls for started in the background."""
        actions = self.on_envelope(envelope)
        if actions:
            self._ctx.spawn(self._carry_out(envelope.group.hex(), actions))

    def on_envelope(self, envelope: GF.GroupEnvelope) -> list[O.Action]:
        """Runs for each delivery before it is acknowledged; makes no request.

        Returns what the group asks to do next, for the caller to start once the
        delivery is acknowledged. Input that does not open is reported and marked
        seen (a poison delivery must not come back forever); a vault failure
        raises, and the relay delivers again.
        """
        vault = self._ctx.need_vault()
        group_id = envelope.group.hex()
        seen = (ConversationId.group(group_id).key + "/" + envelope.sender, envelope.eid)
        if vault.seen(*seen):
            return []
        try:
            if envelope.kind == "welcome":
                return self._join(vault, group_id, envelope, seen)
            session = self._load(vault, group_id)
            if session is None:
                raise ClientError("a delivery for a group this device is not in")
            pins = self._trust.pinned_key
            if envelope.kind == "commit":
                session, outputs = session.receive_commit(
                    envelope.epoch, envelope.body, now=_now(), pins=pins
                )
            else:
                session, outputs = session.receive_message(envelope.body, now=_now())
        except (SecureChatError, MLSError) as exc:
            vault.record_all([], {}, seen=seen)
            self._ctx.emit(ErrorRaised(f"a group delivery was dropped: {exc}", ClientErrorCode.E2E))
            return []
        return self._apply(group_id, session, outputs, envelope=envelope, seen=seen)

    def _join(
        self, vault: Vault, group_id: str, envelope: GF.GroupEnvelope, seen: tuple[str, str]
    ) -> list[O.Action]:
        message = MLSMessage.decode(envelope.body).message
        if not isinstance(message, Welcome):
            raise ClientError("a welcome delivery that is not an MLS Welcome")
        for secrets in message.secrets:
            blob = vault.get(K.key_package(secrets.new_member))
            if blob is not None:
                break
        else:
            raise ClientError("a Welcome for none of this device's key packages")
        package, private = decode_key_package(blob)
        session, outputs = GroupSession.join(
            envelope.body,
            package,
            private,
            epoch=envelope.epoch,
            now=_now(),
            pins=self._trust.pinned_key,
        )
        used = (
            ()
            if vault.get(K.GROUP_LAST_RESORT) == secrets.new_member
            else (K.key_package(secrets.new_member),)
        )
        return self._apply(
            group_id, session, outputs, envelope=envelope, seen=seen, new=True, drop=used
        )

    # --- storing what happened --------------------------------------------------------

    def _apply(
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
        effects = _Effects(received=envelope.ts if envelope is not None else time.time())
        effects.drop.extend(drop)
        actions: list[O.Action] = []
        for output in outputs:
            if _is_action(output):
                actions.append(output)
            elif isinstance(output, O.MessageReceived):
                self._message(group_id, output, envelope, effects)
            else:
                self._event(group_id, session, output, effects)
        self._save(group_id, session, effects, new=new, seen=seen)
        return actions

    def _save(
        self,
        group_id: str,
        session: GroupSession,
        effects: _Effects,
        *,
        new: bool = False,
        seen: tuple[str, str] | None = None,
    ) -> None:
        vault = self._ctx.need_vault()
        effects.state[K.group(group_id)] = encode_session(session)
        if new and group_id not in (ids := self._ids(vault)):
            effects.state[K.GROUPS] = msgspec.msgpack.encode([*ids, group_id])
        message_ids = iter(
            vault.record_all(effects.records, effects.state, seen=seen, drop=tuple(effects.drop))
        )
        for event in effects.events:
            self._ctx.emit(event(next(message_ids)) if callable(event) else event)

    def _message(
        self,
        group_id: str,
        output: O.MessageReceived,
        envelope: GF.GroupEnvelope | None,
        effects: _Effects,
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
        self, group_id: str, session: GroupSession, event: O.Output, effects: _Effects
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
                self._line(group_id, GroupChange.ADDED, event.by, me, effects)
            case O.MemberAdded():
                self._line(group_id, GroupChange.ADDED, event.by, event.user, effects)
            case O.MemberRemoved():
                self._line(group_id, GroupChange.REMOVED, event.by, event.user, effects)
            case O.MemberLeft():
                self._line(group_id, GroupChange.LEFT, event.user, event.user, effects)
            case O.RemovedFromGroup():
                if session.leaving:
                    self._line(group_id, GroupChange.LEFT, me, me, effects)
                else:
                    self._line(group_id, GroupChange.REMOVED, event.by, me, effects)
            case O.Renamed():
                self._line(group_id, GroupChange.RENAMED, event.by, event.name, effects)
            case O.TopicChanged():
                self._line(group_id, GroupChange.TOPIC, event.by, event.topic, effects)
            case O.AdminsChanged() if event.granted:
                granted = ", ".join(event.granted)
                self._line(group_id, GroupChange.ADMINS, event.by, granted, effects)
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

    def _line(
        self, group_id: str, change: GroupChange, by: str, subject: str, effects: _Effects
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
class _Effects:
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
