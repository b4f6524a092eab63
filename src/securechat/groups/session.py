"""One group conversation as a pure state machine: state and input in, (state,
outputs) out. The client core feeds it relay frames and user commands and
carries out the actions it returns; nothing here does I/O or reads a clock.

The relay orders each group's Commits: it accepts one Commit per epoch, the
first valid one, and answers a Commit for a stale epoch with `conflict` and
its current epoch. Its epoch counts the Commits it accepted; ours (`epoch`)
counts the Commits we received from it in order, which equals the MLS epoch
until a Commit that every member refuses (the policy forbids it, or it does not
process) takes a relay epoch without moving the MLS one.

A message the relay accepted for an epoch may reach us after we moved past it
(our own Commit's answer overtook the delivery; on a cluster the delivery
crosses the bus). So the state of the one MLS epoch before ours is kept
(`previous`) until the next epoch change: it opens application data only, each
message once, deleting each key it uses; a proposal of that epoch is dropped
(a proposal belongs to its epoch; RFC 9420 §12.4 has its sender send it again
for the next one) and a Commit is never processed with it. Anything older is
refused with MessageUnreadable.

At most one Commit of ours is in flight (`pending`); what the user asks for
meanwhile waits in `intents`. When another member's Commit wins the epoch, the
pending Commit is dropped and its intents are built again on the new state (an
intent already met, such as removing someone who has since left, drops out),
then sent for the next epoch. Proposals of other members cached in the epoch
are included by MLS itself; our own leave proposal is sent again in each new
epoch until a Commit removes us.

    create / join                       -> a session (and events)
    request(intent) / leave / send      -> actions for the relay
    accepted / conflict / refused       -> answers to our Commit
    receive_commit / receive_message    -> relay deliveries, in relay order
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from securechat.crypto.identity import IdentityPublicKey
from securechat.crypto.mls import group as g
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.framing import ContentType, MLSMessage, PrivateMessage
from securechat.crypto.mls.group_context import Extension
from securechat.crypto.mls.group_state import GroupState
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.proposals import Remove
from securechat.crypto.mls.suite import get_suite
from securechat.crypto.mls.welcome import Welcome, open_group_info, open_group_secrets
from securechat.groups import credentials
from securechat.groups.credentials import FirstSeen, KeyChanged, MemberIdentity, PinnedKeys, Refused
from securechat.groups.device import Device, capabilities, mls_policy
from securechat.groups.errors import GroupBusy, InvalidGroupData, PolicyViolation
from securechat.groups.extensions import (
    GroupMetadata,
    GroupPolicy,
    group_extensions,
    metadata_of,
    policy_of,
)
from securechat.groups.outputs import (
    AddMembers,
    AdminsChanged,
    CommitProposals,
    CommitRefused,
    Event,
    FetchCommits,
    IdentityFirstSeen,
    IdentityKeyChanged,
    Intent,
    Invited,
    MakeAdmin,
    MemberAdded,
    MemberLeft,
    MemberRemoved,
    MessageReceived,
    MessageUnreadable,
    Output,
    ProposalDropped,
    RemovedFromGroup,
    RemoveMember,
    Rename,
    Renamed,
    SendCommit,
    SendHandshake,
    SendMessage,
    SetTopic,
    TopicChanged,
)
from securechat.groups.policy import (
    check_commit,
    check_proposal,
    check_removal,
    leaf_user,
    usernames,
)

_ADMIN_INTENTS = (AddMembers, RemoveMember, MakeAdmin)
MAX_EARLY_MESSAGES = 256
"""Messages held for an epoch not reached yet; the relay is not trusted with more."""

# --- the session -------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class PendingCommit:
    epoch: int
    result: g.CommitResult
    intents: tuple[Intent, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True, repr=False)
class GroupSession:
    mls: GroupState
    epoch: int
    pending: PendingCommit | None = None
    intents: tuple[Intent, ...] = ()
    blocked: frozenset[str] = frozenset()
    """Users whose identity key differs from the pinned one: no sending until resolved."""
    leaving: bool = False
    removed: bool = False
    lost: tuple[Intent, ...] = ()
    """Intents of a Commit that lost its epoch, to build again once we caught up."""
    early: tuple[bytes, ...] = ()
    """Messages of an MLS epoch we have not reached (a relay that delivered them
    before their Commit): opened once the Commit is processed."""
    relay_epoch: int = 0
    """The relay's epoch as its last `conflict` gave it: no Commit is built before
    we have processed the Commits up to it (it would only conflict again)."""
    previous: GroupState | None = None
    """The MLS epoch just before ours, as `g.for_late_messages` keeps it, for its
    late application messages: one epoch only (forward secrecy, docs/security.md),
    dropped on the next epoch change, never used to process a Commit."""

    @property
    def group_id(self) -> bytes:
        return self.mls.group_id

    @property
    def own_user(self) -> str:
        return leaf_user(self.mls, self.mls.own_leaf)

    @property
    def metadata(self) -> GroupMetadata:
        return metadata_of(self.mls.context.extensions)

    @property
    def admins(self) -> frozenset[str]:
        return policy_of(self.mls.context.extensions).admins

    @property
    def members(self) -> tuple[MemberIdentity, ...]:
        return tuple(credentials.member_of(m.credential) for m in self.mls.roster)

    # --- starting --------------------------------------------------------------

    @classmethod
    def create(
        cls, device: Device, name: str, *, now: int, topic: str = "", group_id: bytes | None = None
    ) -> GroupSession:
        """A group of one at epoch 0, with us as its admin; the relay learns of it
        from its first Commit (the one adding the other members)."""
        extensions = group_extensions(
            GroupPolicy(frozenset({device.username})), GroupMetadata(name, topic)
        )
        state = g.create_group(
            device.credential,
            device.signature_private,
            now=now,
            suite_id=device.suite_id,
            group_id=group_id,
            extensions=extensions,
            capabilities=capabilities(device.suite_id),
        )
        return cls(state, 0)

    @classmethod
    def join(
        cls,
        welcome: bytes,
        key_package: KeyPackage,
        private: g.KeyPackagePrivate,
        *,
        epoch: int,
        now: int,
        pins: PinnedKeys,
    ) -> tuple[GroupSession, tuple[Output, ...]]:
        """Join from a Welcome delivered at relay epoch `epoch`. Every member's
        credential was checked by MLS; here each is also compared with our pins."""
        state = g.join_from_welcome(welcome, key_package, private, mls_policy(now))
        policy_of(state.context.extensions)
        session = cls(state, epoch)
        inviter = leaf_user(state, _welcome_signer(welcome, key_package, private))
        metadata = session.metadata
        events: list[Output] = [
            Invited(inviter, metadata.name, metadata.topic, tuple(sorted(usernames(state))))
        ]
        leaves = [m.leaf_index for m in state.roster if m.leaf_index != state.own_leaf]
        session, checked = session._check_identities(leaves, pins)
        return session, (*events, *checked)

    # --- commands ----------------------------------------------------------------

    def request(
        self, intent: Intent, *, now: int, pins: PinnedKeys
    ) -> tuple[GroupSession, tuple[Output, ...]]:
        """Ask for a change; refused at once (PolicyViolation) if we may not make it."""
        self._check_active()
        if isinstance(intent, _ADMIN_INTENTS) and self.own_user not in self.admins:
            raise PolicyViolation("Only the group's admins add, remove and promote members.")
        if isinstance(intent, MakeAdmin) and intent.user not in usernames(self.mls):
            raise PolicyViolation(f"{intent.user} is not a member of the group.")
        if isinstance(intent, AddMembers):
            for user, package in intent.key_packages:
                check = credentials.classify_key_package(package, pins, expected_user=user)
                if isinstance(check, Refused):
                    raise PolicyViolation(check.reason)
                if isinstance(check, KeyChanged):
                    raise GroupBusy(
                        f"{user}'s key package is signed by another identity key than the "
                        "one you pinned: compare safety numbers (verify) first."
                    )
        session = replace(self, intents=(*self.intents, intent))
        return session._next_commit(now=now)

    def leave(self) -> tuple[GroupSession, tuple[Output, ...]]:
        """Propose our own removal; the next committer includes it."""
        self._check_active()
        others = usernames(self.mls) - {self.own_user}
        if self.admins == {self.own_user} and others:
            raise PolicyViolation(
                "You are the group's only admin: make another member an admin before leaving."
            )
        session = replace(self, leaving=True)
        if session.pending is not None:
            return session, ()
        return session._propose_leave()

    def send(self, data: bytes) -> tuple[GroupSession, tuple[Output, ...]]:
        """Encrypt application data for the current epoch, once for every member."""
        self._check_active()
        if self.blocked:
            raise GroupBusy(
                f"{sorted(self.blocked)[0]}'s identity key changed: run verify, then keep or "
                "trust the key, before sending to this group."
            )
        if self.pending is not None:
            raise GroupBusy("A membership change awaits the relay; send once it is confirmed.")
        mls, body = g.protect(self.mls, data)
        return replace(self, mls=mls), (SendMessage(self.epoch, body),)

    def resend(self) -> tuple[Output, ...]:
        """Our Commit in flight, to send again when its answer was lost (a dropped
        connection, a restart): the relay answers it as it answered it first."""
        if self.pending is None:
            return ()
        return (_send_commit(self.mls, self.pending),)

    def recheck(self, pins: PinnedKeys) -> GroupSession:
        """After the user kept or trusted a key: who still has an unresolved change."""
        blocked = {
            member.username
            for member in self.members
            if (key := pins(member.username)) is not None and key.der != member.identity.der
        }
        return replace(self, blocked=frozenset(blocked))

    # --- answers to our Commit ---------------------------------------------------------

    def accepted(self, epoch: int, *, now: int) -> tuple[GroupSession, tuple[Output, ...]]:
        """The relay took our Commit for `epoch`: adopt the state it makes."""
        pending = self.pending
        if pending is None or pending.epoch != epoch:
            return self, ()
        session = replace(
            self,
            mls=pending.result.state,
            epoch=epoch + 1,
            pending=None,
            previous=g.for_late_messages(self.mls),
        )
        outputs: list[Output] = list(pending.events)
        if session.leaving:
            session, again = session._propose_leave()
            outputs.extend(again)
        session, opened = session._open_early(now=now)
        session, more = session._next_commit(now=now)
        return session, (*outputs, *opened, *more)

    def conflict(
        self, epoch: int, current: int, *, now: int
    ) -> tuple[GroupSession, tuple[Output, ...]]:
        """The relay refused our Commit for `epoch`: it is at `current`. Catch up, then
        build the intents again (now if another member's Commit already reached us)."""
        pending = self.pending
        if pending is None or pending.epoch != epoch:
            return self, ()
        session = replace(
            self,
            pending=None,
            lost=(*pending.intents, *self.lost),
            relay_epoch=max(self.relay_epoch, current),
        )
        if session.epoch < current:
            return session, (FetchCommits(session.epoch),)
        return session._next_commit(now=now)

    def refused(self, epoch: int, *, now: int) -> tuple[GroupSession, tuple[Output, ...]]:
        """The relay refused our Commit for `epoch` for good (a Welcome over its limit,
        a user it does not know): the change is dropped and the group goes on from the
        state it was built on, with the next waiting change if any. Without this the
        Commit would stay in flight and block the group on this device for ever."""
        pending = self.pending
        if pending is None or pending.epoch != epoch:
            return self, ()
        return replace(self, pending=None)._next_commit(now=now)

    # --- deliveries ---------------------------------------------------------------------

    def receive_commit(
        self, epoch: int, body: bytes, *, now: int, pins: PinnedKeys
    ) -> tuple[GroupSession, tuple[Output, ...]]:
        """Another member's Commit that the relay accepted for `epoch`."""
        if self.removed or epoch < self.epoch:
            return self, ()
        if epoch > self.epoch:
            return self, (FetchCommits(self.epoch, until=epoch + 1),)
        session = self
        if session.pending is not None and session.pending.epoch == epoch:
            if body == session.pending.result.message:
                return session.accepted(epoch, now=now)
            session = replace(session, pending=None, lost=(*session.pending.intents, *session.lost))
        before = session.mls
        try:
            after, output = g.process(before, body, mls_policy(now))
        except MLSError as exc:
            return replace(session, epoch=epoch + 1), (CommitRefused(str(exc)),)
        if isinstance(output, g.RemovedFromGroup):
            try:
                check_removal(before, output.committer)
            except PolicyViolation as exc:
                return replace(session, epoch=epoch + 1), (CommitRefused(str(exc)),)
            by = leaf_user(before, output.committer)
            removed = replace(
                session, epoch=epoch + 1, removed=True, intents=(), lost=(), previous=None
            )
            return removed, (RemovedFromGroup(by),)
        if not isinstance(output, g.CommitApplied):
            return replace(session, epoch=epoch + 1), (CommitRefused("It was not a Commit."),)
        try:
            check_commit(before, after, output)
        except (PolicyViolation, InvalidGroupData) as exc:
            return replace(session, epoch=epoch + 1), (CommitRefused(str(exc)),)
        events = commit_events(before, after, output)
        session = replace(session, mls=after, epoch=epoch + 1, previous=g.for_late_messages(before))
        session, checked = session._check_identities((*output.added, *output.updated), pins)
        outputs: list[Output] = [*events, *checked]
        if session.leaving:
            session, again = session._propose_leave()
            outputs.extend(again)
        session, opened = session._open_early(now=now)
        session, more = session._next_commit(now=now)
        return session, (*outputs, *opened, *more)

    def receive_message(self, body: bytes, *, now: int) -> tuple[GroupSession, tuple[Output, ...]]:
        """Application data or a proposal of the current epoch; application data
        of the previous one (`_receive_late`); anything of a later one is held."""
        if self.removed:
            return self, ()
        epoch = _epoch_of(body)
        if epoch > self.mls.epoch:
            if len(self.early) >= MAX_EARLY_MESSAGES:
                return self, (MessageUnreadable("Too many messages arrived before their Commit."),)
            needed = self.epoch + epoch - self.mls.epoch
            return replace(self, early=(*self.early, body)), (FetchCommits(self.epoch, needed),)
        if 0 <= epoch < self.mls.epoch:
            return self._receive_late(body, epoch, now=now)
        try:
            mls, output = g.process(self.mls, body, mls_policy(now))
        except MLSError as exc:
            return self, (MessageUnreadable(str(exc)),)
        if isinstance(output, g.ApplicationMessage):
            return replace(self, mls=mls), (_message_received(mls, output),)
        if not isinstance(output, g.ProposalReceived):
            return self, (MessageUnreadable("A Commit arrived as a message."),)
        cached = mls.proposals[-1]
        try:
            check_proposal(mls, cached)
        except PolicyViolation as exc:
            return self, (ProposalDropped(str(exc)),)
        session = replace(self, mls=mls)
        if isinstance(cached.proposal, Remove) and session._designated_committer():
            return session.request(CommitProposals(), now=now, pins=_no_pins)
        return session, ()

    # --- inside ------------------------------------------------------------------------

    def _check_active(self) -> None:
        if self.removed:
            raise GroupBusy("You are no longer a member of this group.")

    def _receive_late(
        self, body: bytes, epoch: int, *, now: int
    ) -> tuple[GroupSession, tuple[Output, ...]]:
        """A PrivateMessage of an MLS epoch before ours: application data of the
        previous epoch opens with its retained state, whose secret tree then
        forgets the key used (a replay is refused); nothing else of a past epoch does."""
        previous = self.previous
        if previous is None or previous.epoch != epoch:
            return self, (
                MessageUnreadable(
                    f"A message of epoch {epoch} arrived after epoch {self.mls.epoch} began; "
                    "only the previous epoch's keys are kept, so it cannot be opened."
                ),
            )
        message = _private(body)
        content_type = None if message is None else message.content_type
        if content_type == ContentType.PROPOSAL:
            return self, (
                ProposalDropped(f"A proposal of epoch {epoch}, which has ended, was dropped."),
            )
        if content_type != ContentType.APPLICATION:
            return self, (MessageUnreadable(f"A Commit of the ended epoch {epoch} arrived."),)
        try:
            kept, output = g.process(previous, body, mls_policy(now))
        except MLSError as exc:
            return self, (MessageUnreadable(str(exc)),)
        assert isinstance(output, g.ApplicationMessage)
        return replace(self, previous=kept), (_message_received(kept, output),)

    def _open_early(self, *, now: int) -> tuple[GroupSession, tuple[Output, ...]]:
        """Messages held for the epoch we just reached; later ones stay held."""
        session = replace(self, early=())
        outputs: list[Output] = []
        for body in self.early:
            if _epoch_of(body) > session.mls.epoch:
                session = replace(session, early=(*session.early, body))
                continue
            session, opened = session.receive_message(body, now=now)
            outputs.extend(opened)
        return session, tuple(outputs)

    def _designated_committer(self) -> bool:
        """The lowest leaf not asking to leave commits leaves, so members do not race."""
        leaving = {
            c.proposal.removed
            for c in self.mls.proposals
            if isinstance(c.proposal, Remove) and c.proposal.removed == c.sender.index
        }
        staying = [m.leaf_index for m in self.mls.roster if m.leaf_index not in leaving]
        return bool(staying) and staying[0] == self.mls.own_leaf

    def _propose_leave(self) -> tuple[GroupSession, tuple[Output, ...]]:
        """Never while a Commit of ours is pending: the proposal would name the epoch
        that Commit is about to end. The leave goes out in the epoch after the answer."""
        mls, body = g.propose_self_remove(self.mls, private=True)
        return replace(self, mls=mls), (SendHandshake(self.epoch, body),)

    def _check_identities(
        self, leaves: Sequence[int], pins: PinnedKeys
    ) -> tuple[GroupSession, tuple[Output, ...]]:
        events: list[Output] = []
        blocked = set(self.blocked)
        for leaf_index in leaves:
            leaf = self.mls.tree.leaf(leaf_index)
            assert leaf is not None
            check = credentials.classify_leaf(leaf, pins)
            if isinstance(check, FirstSeen):
                events.append(IdentityFirstSeen(check.member))
            elif isinstance(check, KeyChanged):
                events.append(IdentityKeyChanged(check.member, check.pinned_fingerprint))
                blocked.add(check.member.username)
        return replace(self, blocked=frozenset(blocked)), tuple(events)

    def _next_commit(self, *, now: int) -> tuple[GroupSession, tuple[Output, ...]]:
        """Build one Commit from every waiting intent, unless one is in flight."""
        intents = (*self.lost, *self.intents)
        if self.pending is not None or self.removed or not intents:
            return self, ()
        if self.epoch < self.relay_epoch:
            return self, ()
        session = replace(self, intents=(), lost=())
        if session.own_user not in session.admins:
            intents = tuple(i for i in intents if not isinstance(i, _ADMIN_INTENTS))
        proposals = session._proposals(intents)
        if not proposals and not _others_proposals(session.mls):
            return session, ()
        result = g.commit(session.mls, mls_policy(now), proposals=proposals, private=True)
        events = commit_events(session.mls, result.state, result.output)
        pending = PendingCommit(session.epoch, result, intents, events)
        action = _send_commit(session.mls, pending)
        # The Commit used one of our handshake keys of this epoch: keep the state that
        # records it, so a Commit built again after a conflict never reuses the key.
        return replace(session, mls=result.current, pending=pending), (action,)

    def _proposals(
        self, intents: Sequence[Intent]
    ) -> list[g.Add | g.Remove | g.GroupContextExtensions]:
        """Our intents as proposals on the current state; what no longer applies drops."""
        state = self.mls
        members = {m.leaf_index: credentials.username_of(m.credential) for m in state.roster}
        proposals: list[g.Add | g.Remove | g.GroupContextExtensions] = []
        removing: set[int] = {
            c.proposal.removed
            for c in state.proposals
            if isinstance(c.proposal, Remove) and c.proposal.removed != state.own_leaf
        }
        added: set[str] = set()
        metadata, policy = self.metadata, policy_of(state.context.extensions)
        present_keys = {m.signature_key for m in state.roster}
        for intent in intents:
            if isinstance(intent, AddMembers):
                for user, package in intent.key_packages:
                    if package.leaf_node.signature_key in present_keys:
                        continue
                    present_keys.add(package.leaf_node.signature_key)
                    proposals.append(g.Add(package))
                    added.add(user)
            elif isinstance(intent, RemoveMember):
                for leaf_index, user in members.items():
                    if user == intent.user and leaf_index not in removing:
                        if leaf_index == state.own_leaf:
                            continue
                        proposals.append(g.Remove(leaf_index))
                        removing.add(leaf_index)
            elif isinstance(intent, Rename):
                metadata = GroupMetadata(intent.name, metadata.topic)
            elif isinstance(intent, SetTopic):
                metadata = GroupMetadata(metadata.name, intent.topic)
            elif isinstance(intent, MakeAdmin) and intent.user in members.values():
                policy = GroupPolicy(policy.admins | {intent.user})
        remaining = {u for i, u in members.items() if i not in removing} | added
        policy = GroupPolicy(policy.admins & remaining)
        extensions = group_extensions(policy, metadata)
        if extensions != state.context.extensions:
            proposals.append(g.GroupContextExtensions(extensions))
        return proposals


def _send_commit(before: GroupState, pending: PendingCommit) -> SendCommit:
    """`before`: the epoch's state the Commit was built on; who it adds and removes
    are names the relay needs to route the Welcome and stop deliveries."""
    result = pending.result
    before_users, after_users = usernames(before), usernames(result.state)
    return SendCommit(
        pending.epoch,
        result.message,
        result.welcome,
        tuple(sorted(after_users - before_users)),
        tuple(sorted(before_users - after_users)),
    )


def _private(body: bytes) -> PrivateMessage | None:
    """A PrivateMessage, for what it says in clear; None for anything else, which
    processing then refuses with its own error. MLS checks the clear header again
    when it decrypts (epoch and content type are part of the AEAD's data)."""
    try:
        message = MLSMessage.decode(body).message
    except MLSError:
        return None
    return message if isinstance(message, PrivateMessage) else None


def _epoch_of(body: bytes) -> int:
    """The MLS epoch a PrivateMessage names; -1 for anything else."""
    message = _private(body)
    return -1 if message is None else message.epoch


def _message_received(state: GroupState, output: g.ApplicationMessage) -> MessageReceived:
    leaf = state.tree.leaf(output.sender)
    assert leaf is not None
    member = credentials.member_of(leaf.credential)
    return MessageReceived(member.username, member.device, output.data)


def _no_pins(user: str) -> IdentityPublicKey | None:
    """Committing others' proposals adds nobody, so no pin is consulted."""
    del user
    return None


def _others_proposals(state: GroupState) -> bool:
    """Whether a Commit would include any cached proposal (ours are left out by MLS)."""
    own = state.own_leaf
    return any(c.sender.index != own for c in state.proposals)


def _welcome_signer(welcome: bytes, key_package: KeyPackage, private: g.KeyPackagePrivate) -> int:
    """The GroupInfo's signer, the member who invited us. join_from_welcome has
    checked the same GroupInfo's signature; this opens it again to read the index
    (one more HPKE decapsulation, once per invitation)."""
    message = MLSMessage.decode(welcome).message
    assert isinstance(message, Welcome)
    suite = get_suite(message.cipher_suite)
    secrets = open_group_secrets(suite, message, key_package, private.init_private)
    return open_group_info(suite, message, secrets.joiner_secret, None).signer


def _extension_changes(
    by: str, before: tuple[Extension, ...], after: tuple[Extension, ...]
) -> list[Event]:
    events: list[Event] = []
    old_meta, new_meta = metadata_of(before), metadata_of(after)
    if new_meta.name != old_meta.name:
        events.append(Renamed(by, new_meta.name))
    if new_meta.topic != old_meta.topic:
        events.append(TopicChanged(by, new_meta.topic))
    old_admins, new_admins = policy_of(before).admins, policy_of(after).admins
    if old_admins != new_admins:
        granted, revoked = sorted(new_admins - old_admins), sorted(old_admins - new_admins)
        events.append(AdminsChanged(by, tuple(granted), tuple(revoked)))
    return events


def commit_events(
    before: GroupState, after: GroupState, applied: g.CommitApplied
) -> tuple[Event, ...]:
    """What a Commit did, in words a conversation shows ("alice added carol")."""
    by = leaf_user(before, applied.committer)
    events: list[Event] = []
    gone = usernames(before) - usernames(after)
    for leaf_index in applied.removed:
        user = leaf_user(before, leaf_index)
        if user not in gone:
            continue
        left = any(
            isinstance(c.proposal, Remove)
            and c.proposal.removed == leaf_index
            and c.sender.index == leaf_index
            for c in before.proposals
        )
        events.append(MemberLeft(user) if left else MemberRemoved(by, user))
    for leaf_index in applied.added:
        leaf = after.tree.leaf(leaf_index)
        assert leaf is not None
        member = credentials.member_of(leaf.credential)
        events.append(MemberAdded(by, member.username, member.device))
    events.extend(_extension_changes(by, before.context.extensions, after.context.extensions))
    return tuple(events)
