"""The relay's storage, one Protocol per concern: what each service needs, not how it is kept.

A service asks for the narrowest one it uses (`AccountService` for accounts,
sessions and back-off; `FileService` for files; the relay for the queue and
contacts). `Store` is all of them: what `store.sqlite.SQLiteStore` (the
embedded default) and `store.postgres.PostgresStore` implement. Every method
is async so that a networked store fits without touching the relay, even
though SQLite answers in microseconds on the loop thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from securechat.server.store.records import (
    Account,
    CommitOutcome,
    FileRecord,
    GroupSendOutcome,
    GroupState,
    HandedKeyPackage,
    KeyBundle,
    NewCommit,
    NewEnvelope,
    NewGroupSend,
    QueueLimits,
    SessionRecord,
    StoredCommit,
    StoredEnvelope,
    Throttle,
)


class AccountStore(Protocol):
    """Accounts by name, unique ignoring case."""

    async def create_account(self, account: Account) -> bool:
        """False when the name is taken (ignoring case)."""
        ...

    async def get_account(self, username: str) -> Account | None: ...
    async def update_password(
        self, username: str, password_hash: bytes, recovery_hash: bytes | None
    ) -> None: ...
    async def delete_account(self, username: str) -> None:
        """Removes the account with its sessions, keys, queues, files and tokens."""
        ...


class SessionStore(Protocol):
    """Login sessions and password-reset tokens, both kept only as hashes."""

    async def put_session(self, session: SessionRecord) -> None: ...
    async def get_session(self, token_hash: bytes) -> SessionRecord | None: ...
    async def delete_session(self, token_hash: bytes) -> None: ...
    async def delete_sessions_of(self, username: str) -> None: ...
    async def put_reset_token(
        self, username: str, token_hash: bytes, expires_at: float
    ) -> None: ...
    async def consume_reset_token(self, username: str, token_hash: bytes, now: float) -> bool:
        """True once per token: it is deleted as it is used."""
        ...


class ThrottleStore(Protocol):
    """Failed-login back-off, kept here so a restart does not forget it."""

    async def get_throttle(self, key: str) -> Throttle | None: ...
    async def count_failure(self, key: str, now: float, forget: float) -> int:
        """Adds a failure and returns the count; one older than `forget` starts again at 1."""
        ...

    async def put_throttle(self, key: str, throttle: Throttle) -> None: ...
    async def delete_throttle(self, key: str) -> None: ...
    async def expire_throttle(self, before: float) -> int:
        """Forgets keys whose last event is older than `before`."""
        ...


class QueueStore(Protocol):
    """Inboxes: envelopes waiting for their recipients, and who talked to whom."""

    answers_at_once: bool
    """True when no call ever waits (SQLite, on the loop thread): a connection then
    handles a `send` in the callback that read it, without a task (connection.py)."""

    async def reserve_sid(self, sender: str, eid: str) -> int | None:
        """A sid for a new envelope, before it is stored, when this store alone hands sids out.

        With one, the relay delivers the envelope before its write batch, and an
        acknowledgement that arrives first means it is never written at all. None
        when nodes share the database's sequence (delivery waits for the commit),
        or when (sender, eid) is queued already: a re-send, which the write batch answers.
        """
        ...

    async def enqueue(self, envelopes: Sequence[NewEnvelope]) -> list[int]:
        """Persists a batch in one transaction; a repeated (sender, eid) returns its old sid."""
        ...

    async def write_batch(
        self,
        envelopes: Sequence[NewEnvelope],
        acks: Mapping[str, Sequence[int]],
    ) -> tuple[list[tuple[int, bool]], dict[str, tuple[int, int]]]:
        """The relay's write batch: new envelopes and acknowledgements in ONE transaction.

        Each envelope goes to its recipient's inbox (their one device, today).

        Returns, for each envelope, its sid and whether it is new (a re-send of a
        queued (sender, eid) gives the old sid and False; one whose id was used for
        another recipient gives sid 0) and, per recipient, the (count, bytes) that
        the acknowledgements removed.
        """
        ...

    async def pending(self, recipient: str, after_sid: int, limit: int) -> list[StoredEnvelope]:
        """The recipient's inbox after `after_sid`, oldest first."""
        ...

    async def envelopes(self, recipient: str, sids: Sequence[int]) -> list[StoredEnvelope]:
        """These envelopes of `recipient` still queued (announced by another node)."""
        ...

    async def ack(self, recipient: str, sids: Sequence[int]) -> int: ...
    async def queue_usage(self, recipient: str) -> tuple[int, int] | None:
        """(count, bytes) queued for a recipient, or None when no account has that name."""
        ...

    async def expire_envelopes(self, before: float) -> int: ...
    async def purge_queue(self, recipient: str) -> int:
        """Drops whatever waits for `recipient` (a name registered anew inherits nothing)."""
        ...

    async def delete_conversation(self, user: str, peer: str) -> int:
        """Drops what waits between the two (not their groups') and `user`'s follow of
        `peer` (its `contacts` row).

        A follow is only a presence permission, and each user's own: `peer`'s follow
        of `user` stays (its client watches again at every login anyway), but
        presence needs both, so neither sees the other until `user` watches again.
        """
        ...

    async def record_watches(self, watcher: str, users: Sequence[str]) -> list[str]:
        """Records that `watcher` follows the presence of `users`; returns those it did
        not follow before (between accounts only, never `watcher` itself).

        Written when a client watches, never by an envelope: a message's path
        touches no presence state, and a pair of users costs one row each way once,
        when their clients first follow each other.
        """
        ...

    async def watchers_of(self, username: str) -> set[str]:
        """Users who follow `username`'s presence: those `username` may see (presence is
        shared only both ways)."""
        ...


class KeyDirectoryStore(Protocol):
    """Published prekeys; one-time prekeys are handed out once."""

    async def publish_keys(
        self,
        username: str,
        identity: bytes,
        signed_prekey: bytes,
        kem_prekey: bytes,
        one_time_prekeys: Sequence[bytes],
        replace_one_time: bool,
        one_time_kem_prekeys: Sequence[bytes] = (),
    ) -> int:
        """Returns how many one-time prekeys the user now has.

        `replace_one_time` replaces both kinds of one-time prekeys.
        """
        ...

    async def fetch_bundle(self, username: str) -> KeyBundle | None:
        """Hands out (and deletes) one one-time prekey of each kind, if any is left."""
        ...

    async def one_time_prekey_count(self, username: str) -> int: ...
    async def one_time_kem_prekey_count(self, username: str) -> int: ...


class KeyPackageStore(Protocol):
    """MLS key packages per device: one-time ones handed out once, one last-resort each."""

    async def publish_key_packages(
        self,
        username: str,
        device: str,
        key_packages: Sequence[bytes],
        last_resort: bytes | None,
        *,
        replace: bool = False,
    ) -> int:
        """Adds one-time packages (in place of the device's others when `replace`),
        replaces the device's last-resort one when given, and returns how many one-time
        packages the device now holds."""
        ...

    async def fetch_key_packages(self, usernames: Sequence[str]) -> list[HandedKeyPackage]:
        """One package per device of each user: the oldest one-time package, deleted as it
        is handed out (never to two fetchers, on any node), else the last-resort one."""
        ...

    async def key_package_counts(self, username: str) -> dict[str, int]:
        """One-time packages held per device, for every device with any package."""
        ...


class GroupStore(Protocol):
    """MLS groups at the delivery service: epochs, members, Commits, one body to N inboxes.

    A group's deliveries share the inboxes and sids of one-to-one envelopes, so a
    member's queue is one sid order for everything, acknowledged with the same `ack`.
    """

    async def group_state(self, group: bytes) -> GroupState | None: ...
    async def memberships(self, usernames: Sequence[str]) -> dict[str, int]:
        """How many groups each user is in, for the users that have an account."""
        ...

    async def commit_group(self, commit: NewCommit, keep: int) -> CommitOutcome:
        """Orders a Commit in ONE transaction: at most one per epoch, across nodes.

        A re-sent (group, sender, eid) is accepted again for its epoch, delivering
        nothing. Otherwise the epoch check and increment are one statement; when it
        matches, the Commit is kept for `group_fetch` (the last `keep` of the group),
        delivered to the other members (removed ones included), the Welcome to the
        added users, and the membership changed, all in the same transaction.
        """
        ...

    async def group_send_batch(
        self, sends: Sequence[NewGroupSend], limits: QueueLimits
    ) -> list[GroupSendOutcome]:
        """Stores each body once with a delivery per other member, in one transaction,
        when its epoch is the group's current one: the check holds the group's row
        against a concurrent Commit until the deliveries are written.

        A member whose queue has no room under `limits` (counted in that transaction,
        group copies included) gets no delivery and is named in the outcome's `full`;
        a handshake message reaches every member. Nothing is stored when nobody has room.
        """
        ...

    async def group_commits(self, group: bytes, since: int, max_bytes: int) -> list[StoredCommit]:
        """The kept Commits from epoch `since` on, in order, at least one and at most
        `max_bytes` of them after the first."""
        ...


class FileStore(Protocol):
    """File metadata; the chunk bytes live in blobs on disk (`server/files.py`)."""

    async def create_file(self, record: FileRecord) -> None: ...
    async def get_file(self, file_id: str) -> FileRecord | None: ...
    async def set_file_progress(self, file_id: str, next_index: int, complete: bool) -> None: ...
    async def mark_file_fetched(self, file_id: str, username: str) -> FileRecord | None: ...
    async def delete_file(self, file_id: str) -> None: ...
    async def files_of(self, username: str) -> list[FileRecord]: ...
    async def expired_files(self, before: float) -> list[str]: ...
    async def storage_used(self, username: str) -> tuple[int, int]:
        """(files, bytes) the user holds on the relay, finished or not."""
        ...


class ScanCacheStore(Protocol):
    """Link verdicts, cached until they expire."""

    async def get_scan(self, key: bytes, now: float) -> bytes | None: ...
    async def put_scan(self, key: bytes, verdict: bytes, expires_at: float) -> None: ...


class Operations(Protocol):
    """Counts, housekeeping and health."""

    async def stats(self) -> dict[str, int]: ...
    async def checkpoint(self) -> None:
        """Housekeeping the relay runs off the message path (SQLite: WAL checkpoints)."""
        ...

    async def ping(self) -> None:
        """Raises StoreError unless a write transaction could start now (readiness)."""
        ...

    async def close(self) -> None: ...


class Store(
    AccountStore,
    SessionStore,
    ThrottleStore,
    QueueStore,
    KeyDirectoryStore,
    KeyPackageStore,
    GroupStore,
    FileStore,
    ScanCacheStore,
    Operations,
    Protocol,
):
    """Everything the relay keeps: what a store implementation provides."""
