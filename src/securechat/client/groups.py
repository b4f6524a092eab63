"""Group conversations on this device: the I/O shell around the pure `groups/` layer.

A `GroupSession` (groups/session.py) takes inputs and returns outputs; this
module carries out the actions it returns against the relay, and its helpers
keep the rest: group_store.py each session in the vault with what a step
leaves (history lines, pins, client events), group_keys.py this device's MLS
identity and key packages, group_sending.py messages going out (and the group
outbox), group_welcomes.py a Welcome too large to travel inline.

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

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import msgspec

from securechat.client import vault_keys as K
from securechat.client.api import GroupInfo
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ErrorRaised,
    GroupChange,
)
from securechat.client.group_keys import GroupKeys
from securechat.client.group_sending import BUSY, MAX_ROUNDS, GroupSending, group_error
from securechat.client.group_store import Effects, GroupStore, is_action
from securechat.client.group_welcomes import (
    WELCOME_INLINE_MAX,
    PendingJoins,
    download,
    release,
    upload,
    withdraw,
)
from securechat.client.relay_client import Request, new_envelope_id
from securechat.client.trust import Trust
from securechat.client.vault_store import Vault
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.framing import MLSMessage
from securechat.crypto.mls.welcome import Welcome
from securechat.errors import (
    ClientError,
    ClientErrorCode,
    ConnectionLost,
    SecureChatError,
    ServerRejected,
)
from securechat.groups import outputs as O
from securechat.groups.errors import GroupError
from securechat.groups.session import GroupSession
from securechat.groups.stored import (
    decode_key_package,
)
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF

log = logging.getLogger("securechat.client")


QUIET = 0.3
"""Seconds without a group delivery after which the queue the relay handed over
at a (re)connect counts as taken in; `QUIET_MAX` bounds the wait."""
QUIET_MAX = 5.0


def _now() -> int:
    return int(time.time())


def _commit_eid(commit: bytes) -> str:
    """The same Commit always goes with the same eid, so sending it again after a
    lost answer gets the relay's first answer rather than a second Commit."""
    return base64.urlsafe_b64encode(hashlib.sha256(commit).digest()[:18]).decode()


def _group_commit(
    group_id: str, action: O.SendCommit, welcome_file: str | None
) -> Callable[[int], F.ClientFrame]:
    def build(rid: int) -> F.ClientFrame:
        return GF.GroupCommit(
            rid=rid,
            group=bytes.fromhex(group_id),
            epoch=action.epoch,
            eid=_commit_eid(action.commit),
            commit=action.commit,
            welcome=None if welcome_file is not None else action.welcome,
            welcome_file=welcome_file,
            added=list(action.added),
            removed=list(action.removed),
        )

    return build


def _commit_refused(exc: ServerRejected, commit: O.SendCommit) -> ClientError:
    """What the user reads when the relay refuses a change for good; the change is dropped."""
    if exc.code == "too_large" and commit.welcome is not None:
        size = len(commit.welcome) // 1024
        return ClientError(
            f"the group is too large for this relay to send a new member its state "
            f"({size} KiB; {exc.message}); nobody was added",
            ClientErrorCode.NOT_ALLOWED,
        )
    return ClientError(f"the relay refused the change: {exc.message}", ClientErrorCode.NOT_ALLOWED)


class Groups:
    welcome_inline_max = WELCOME_INLINE_MAX
    """Past this a Welcome goes as a file (tests set it lower)."""

    def __init__(self, ctx: ClientContext, trust: Trust, *, request: Request | None = None) -> None:
        """`request` defaults to the relay's; tests pass an in-memory delivery service."""
        self._ctx = ctx
        self._trust = trust
        self._request: Request = request if request is not None else ctx.relay.request
        self.keys = GroupKeys(ctx, self._request)
        self.store = GroupStore(ctx, trust)
        self.sending = GroupSending(ctx, self.store, self._request, self._fetch)
        self._joining = asyncio.Lock()
        self._last_delivery = 0.0
        """`time.monotonic()` of the last group delivery."""

    async def start(self) -> None:
        """At sign-in: the trees warmed, key packages, then any Commit whose answer was
        lost.

        A relay that does not serve groups refuses the frame, which is no reason to
        trouble the user; the next sign-in tries again.
        """
        self.store.warm()
        try:
            await self.keys.publish()
        except (ServerRejected, ConnectionLost) as exc:
            log.info("key packages not published: %s", exc.code)
            return
        await self.resume()

    # --- commands -----------------------------------------------------------------------

    async def create(self, name: str, users: Sequence[str]) -> GroupInfo:
        """A group with us as admin; the relay learns of it from the Commit adding `users`."""
        _, _, me = self._ctx.need_identity()
        if not name.strip():
            raise ClientError("a group needs a name", ClientErrorCode.INVALID_MESSAGE)
        others = list(dict.fromkeys(u for u in users if u != me))
        packages = await self.keys.fetch(others, self._trust.pinned_key) if others else []
        try:
            session = GroupSession.create(self.keys.device(), name, now=_now())
        except GroupError as exc:
            raise group_error(exc) from exc
        group_id = session.group_id.hex()
        effects = Effects(received=time.time())
        self.store.line(group_id, GroupChange.CREATED, me, name, effects)
        self.store.save(group_id, session, effects, new=True)
        if packages:
            await self._command(group_id, O.AddMembers(tuple(packages)))
        return self.store.info(group_id)

    async def invite(self, group_id: str, user: str) -> GroupInfo:
        self._admin(group_id, "add members")
        packages = await self.keys.fetch([user], self._trust.pinned_key)
        await self._command(group_id, O.AddMembers(tuple(packages)))
        return self.store.info(group_id)

    async def remove(self, group_id: str, user: str) -> GroupInfo:
        self._admin(group_id, "remove members")
        if user not in {m.username for m in self.store.session(group_id).members}:
            raise ClientError(f"{user} is not in this group", ClientErrorCode.NOT_ALLOWED)
        await self._command(group_id, O.RemoveMember(user))
        return self.store.info(group_id)

    async def rename(self, group_id: str, name: str) -> GroupInfo:
        """Any member may (groups/policy.py), as in Signal's default: no admin check."""
        await self._command(group_id, O.Rename(name))
        return self.store.info(group_id)

    async def set_topic(self, group_id: str, topic: str) -> GroupInfo:
        await self._command(group_id, O.SetTopic(topic))
        return self.store.info(group_id)

    async def make_admin(self, group_id: str, user: str) -> GroupInfo:
        self._admin(group_id, "make admins")
        await self._command(group_id, O.MakeAdmin(user))
        return self.store.info(group_id)

    async def leave(self, group_id: str) -> None:
        """Proposes our removal; the next member to commit includes it."""
        actions = self._step(group_id, lambda s: s.leave())
        await self._carry_out(group_id, actions)

    def _admin(self, group_id: str, what: str) -> None:
        session = self.store.session(group_id)
        if session.own_user not in session.admins:
            name = session.metadata.name
            raise ClientError(f"only an admin of {name} can {what}", ClientErrorCode.NOT_ADMIN)

    async def _command(self, group_id: str, intent: O.Intent) -> None:
        pins = self._trust.pinned_key
        actions = self._step(group_id, lambda s: s.request(intent, now=_now(), pins=pins))
        await self._carry_out(group_id, actions)

    async def resume(self) -> None:
        """After a (re)connect: Commits whose answer was lost go out again, each group
        catches up with what it missed while its Commit was in flight, Welcomes sent
        as files are fetched, then the messages written while offline go out."""
        vault = self._ctx.need_vault()
        for group_id in self.store.ids(vault):
            session = self.store.load(vault, group_id)
            if session is not None and session.pending is not None:
                try:
                    await self._carry_out(group_id, [a for a in session.resend() if is_action(a)])
                except ConnectionLost:
                    return  # the next connection tries again
                except ClientError as exc:  # refused for good: dropped, and the user told
                    self._ctx.emit(ErrorRaised(f"a change to a group failed: {exc}", exc.code))
        await self.finish_joins()
        if self.sending.queued():
            await self._deliveries_quiet()
            await self.sending.send_queued(self.sending.queued())

    async def _deliveries_quiet(self) -> None:
        """Before sending what waited: the relay hands over our queue right after a
        (re)connect, and a message must go in the group's current epoch, so sending
        first would catch up by fetching the Commits and jump past messages of
        earlier epochs still on their way, which would then no longer open (one
        previous epoch is kept: docs/security.md)."""
        give_up = time.monotonic() + QUIET_MAX
        await asyncio.sleep(QUIET)
        while time.monotonic() < give_up and time.monotonic() - self._last_delivery < QUIET:
            await asyncio.sleep(QUIET / 2)

    # --- carrying out what a session asks ------------------------------------------------

    def _step(
        self,
        group_id: str,
        change: Callable[[GroupSession], tuple[GroupSession, tuple[O.Output, ...]]],
    ) -> list[O.Action]:
        """Load, change, save with the lines and events of the change: one vault write."""
        session = self.store.session(group_id)
        try:
            session, outputs = change(session)
        except GroupError as exc:
            raise group_error(exc) from exc
        return self.store.apply(group_id, session, outputs)

    async def _fetch(self, group_id: str, since: int) -> None:
        await self._carry_out(group_id, [O.FetchCommits(since)])

    async def _carry_out(self, group_id: str, actions: Iterable[O.Action]) -> None:
        queue = list(actions)
        rounds = 0
        while queue:
            rounds += 1
            if rounds > MAX_ROUNDS * 4:
                raise ClientError(BUSY, ClientErrorCode.GROUP_BUSY)
            queue = [*await self._act(group_id, queue[0]), *queue[1:]]

    async def _act(self, group_id: str, action: O.Action) -> list[O.Action]:
        group = bytes.fromhex(group_id)
        match action:
            case O.SendCommit():
                return await self._send_commit(group_id, action)
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
                    until = answer.epoch if action.until is None else action.until
                    wanted = [c for c in answer.commits if c.epoch < until]
                    more = self._receive_commits(group_id, wanted)
                    # One frame holds what fits: ask again while the relay is ahead.
                    following = max((c.epoch + 1 for c in answer.commits), default=answer.epoch)
                    if following < min(answer.epoch, until):
                        more.append(O.FetchCommits(following, action.until))
                    return more
        raise ClientError(f"unexpected answer {type(answer).__name__} from the relay")

    async def _send_commit(self, group_id: str, action: O.SendCommit) -> list[O.Action]:
        """The Commit, its Welcome inline or as a file. Refused for good (the Welcome's
        upload included), the change is dropped; a Welcome file the relay did not take
        is withdrawn, which would otherwise hold the sender's quota for `file_ttl`."""
        now = _now()
        welcome_file = None
        try:
            if action.welcome is not None and len(action.welcome) > self.welcome_inline_max:
                welcome_file = await upload(self._request, action.welcome, list(action.added))
            answer = await self._request(_group_commit(group_id, action, welcome_file))
        except ServerRejected as exc:
            if exc.transient:
                raise
            await self._withdraw(welcome_file)
            self._step(group_id, lambda s: s.refused(action.epoch, now=now))
            raise _commit_refused(exc, action) from exc
        if isinstance(answer, GF.GroupAccepted):
            return self._step(group_id, lambda s: s.accepted(action.epoch, now=now))
        await self._withdraw(welcome_file)
        if isinstance(answer, GF.GroupConflict):
            current = answer.epoch
            return self._step(group_id, lambda s: s.conflict(action.epoch, current, now=now))
        raise ClientError(f"unexpected answer {type(answer).__name__} to group_commit")

    async def _withdraw(self, welcome_file: str | None) -> None:
        if welcome_file is not None:
            with contextlib.suppress(ConnectionLost, ServerRejected):
                await self._request(withdraw(welcome_file))

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
        if envelope.file is not None:
            self._ctx.spawn(self.finish_joins())

    def on_envelope(self, envelope: GF.GroupEnvelope) -> list[O.Action]:
        """Runs for each delivery before it is acknowledged; makes no request.

        Returns what the group asks to do next, for the caller to start once the
        delivery is acknowledged. Input that does not open is reported and marked
        seen (a poison delivery must not come back forever); a vault failure
        raises, and the relay delivers again. A Welcome sent as a file is kept
        until `finish_joins` has fetched it, and the group's deliveries that
        follow it are held until then.
        """
        self._last_delivery = time.monotonic()
        vault = self._ctx.need_vault()
        group_id = envelope.group.hex()
        seen = (ConversationId.group(group_id).key + "/" + envelope.sender, envelope.eid)
        if vault.seen(*seen):
            return []
        return self._receive(vault, group_id, envelope, seen)

    def _receive(
        self,
        vault: Vault,
        group_id: str,
        envelope: GF.GroupEnvelope,
        seen: tuple[str, str] | None,
    ) -> list[O.Action]:
        try:
            if envelope.kind == "welcome":
                if envelope.file is not None:
                    PendingJoins.wait(vault, group_id, envelope, seen)
                    return []
                return self._join(vault, group_id, envelope, seen)
            session = self.store.load(vault, group_id)
            if session is None:
                if PendingJoins.waiting(vault, group_id):
                    PendingJoins.hold(vault, group_id, envelope, seen)
                    return []
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
        return self.store.apply(group_id, session, outputs, envelope=envelope, seen=seen)

    # --- a Welcome sent as a file --------------------------------------------------------

    async def finish_joins(self) -> None:
        """Fetches each Welcome sent as a file, joins, then opens what was held for the
        group meanwhile, in order. Offline, it stops; the next connection goes on.

        One run at a time (a delivery and a reconnect may both start one); the join
        and the held deliveries are one synchronous stretch, so a delivery arriving
        meanwhile cannot overtake them.
        """
        async with self._joining:
            vault = self._ctx.need_vault()
            for group_id in PendingJoins.groups(vault):
                envelope = PendingJoins.welcome(vault, group_id)
                actions: list[O.Action] = []
                if envelope is not None and envelope.file is not None:
                    try:
                        welcome = await download(self._request, envelope.file)
                        joined = msgspec.structs.replace(envelope, body=welcome, file=None)
                        done = (K.group_join(group_id),)
                        actions += self._join(vault, group_id, joined, None, done=done)
                    except ConnectionLost:
                        return
                    except (SecureChatError, MLSError) as exc:
                        PendingJoins.forget(vault, group_id)
                        text = (
                            f"an invitation from {envelope.sender} to a group did not open: {exc}"
                        )
                        self._ctx.emit(ErrorRaised(text, ClientErrorCode.E2E))
                        continue
                for held in PendingJoins.held(vault, group_id):
                    actions += self._receive(vault, group_id, held, None)
                PendingJoins.forget(vault, group_id)
                if actions:
                    self._ctx.spawn(self._carry_out(group_id, actions))
                if envelope is not None and envelope.file is not None:
                    with contextlib.suppress(ConnectionLost, ServerRejected):
                        await self._request(release(envelope.file))

    def _join(
        self,
        vault: Vault,
        group_id: str,
        envelope: GF.GroupEnvelope,
        seen: tuple[str, str] | None,
        *,
        done: tuple[str, ...] = (),
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
        return self.store.apply(
            group_id, session, outputs, envelope=envelope, seen=seen, new=True, drop=used + done
        )
