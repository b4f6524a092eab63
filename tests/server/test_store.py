"""One store test suite, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from securechat.server.store import (
    Account,
    FileRecord,
    NewEnvelope,
    SessionRecord,
    Store,
    Throttle,
)
from securechat.server.store.postgres import PostgresStore
from securechat.server.store.records import NewCommit
from securechat.server.store.schema import COUNTED, UNOWNED
from securechat.server.store.sqlite import SQLiteStore


def account(name: str) -> Account:
    return Account(name, b"hash", b"recovery", 1.0)


async def test_accounts_are_unique_ignoring_case(store: Store) -> None:
    """A second `Alice` is refused; lookups find the original."""
    assert await store.create_account(account("alice"))
    assert not await store.create_account(account("Alice"))
    found = await store.get_account("alice")
    assert found is not None and found.username == "alice"
    await store.update_password("alice", b"new", None)
    updated = await store.get_account("alice")
    assert updated is not None and updated.password_hash == b"new"
    assert updated.recovery_hash == b"recovery"


async def test_sessions_and_reset_tokens(store: Store) -> None:
    """Sessions are found by hash and revoked per user; reset tokens work once, before expiry."""
    await store.put_session(SessionRecord(b"t1", "alice", 100.0))
    await store.put_session(SessionRecord(b"t2", "alice", 100.0))
    assert (await store.get_session(b"t1")) == SessionRecord(b"t1", "alice", 100.0)
    await store.delete_sessions_of("alice")
    assert await store.get_session(b"t2") is None
    await store.put_reset_token("alice", b"r", expires_at=50.0)
    assert not await store.consume_reset_token("bob", b"r", now=10.0)
    assert await store.consume_reset_token("alice", b"r", now=10.0)
    assert not await store.consume_reset_token("alice", b"r", now=10.0)
    await store.put_reset_token("alice", b"old", expires_at=5.0)
    assert not await store.consume_reset_token("alice", b"old", now=10.0)


async def test_queue_is_ordered_idempotent_and_acknowledged(store: Store) -> None:
    """Envelopes come back in order, a repeated (sender, eid) keeps its sid, acks delete."""
    await store.create_account(account("bob"))
    assert await store.queue_usage("bob") == (0, 0)
    assert await store.queue_usage("carol") is None
    batch = [NewEnvelope("bob", "alice", f"e{i}", b"x" * (i + 1), float(i)) for i in range(5)]
    sids = await store.enqueue(batch)
    assert sids == sorted(sids) and len(set(sids)) == 5
    assert await store.enqueue([batch[2]]) == [sids[2]]
    pending = await store.pending("bob", 0, 10)
    assert [e.eid for e in pending] == [f"e{i}" for i in range(5)]
    assert await store.queue_usage("bob") == (5, 15)
    assert await store.ack("mallory", sids) == 0
    assert await store.ack("bob", sids[:2]) == 2
    assert [e.eid for e in await store.pending("bob", 0, 10)] == ["e2", "e3", "e4"]
    assert [e.eid for e in await store.pending("bob", sids[3], 10)] == ["e4"]
    assert await store.watchers_of("bob") == set()  # envelopes record no presence
    announced = await store.envelopes("bob", [sids[4], sids[0], 10**9])
    assert [e.eid for e in announced] == ["e4"]
    assert await store.envelopes("mallory", [sids[4]]) == []
    assert await store.purge_queue("nobody") == 0
    assert await store.expire_envelopes(before=3.5) == 2
    assert await store.delete_conversation("bob", "alice") == 1


async def test_write_batch_stores_resends_once_and_frees_what_acks_name(store: Store) -> None:
    """One write_batch: new envelopes in order, a re-send in the same batch or of a stored
    one keeps the first sid (not fresh), an id reused for another recipient gets sid 0,
    and acknowledgements free (count, bytes) per recipient, only of their own queue (a sid
    named twice freed once)."""
    first = [NewEnvelope("bob", "alice", f"e{i}", b"x" * (i + 1), float(i)) for i in range(3)]
    stored, freed = await store.write_batch(first, {})
    sids = [sid for sid, _ in stored]
    assert [fresh for _, fresh in stored] == [True] * 3 and sids == sorted(set(sids))
    assert freed == {}
    batch = [
        NewEnvelope("carol", "alice", "e9", b"yy", 5.0),
        first[1],
        NewEnvelope("carol", "alice", "e9", b"yy", 5.0),
        NewEnvelope("dave", "alice", "e0", b"z", 6.0),
    ]
    stored, freed = await store.write_batch(
        batch, {"bob": [sids[0], sids[2], sids[0]], "mallory": [sids[1], sids[0]]}
    )
    assert stored[0][1] and stored[0][0] > sids[-1]
    assert stored[1:] == [(sids[1], False), (stored[0][0], False), (0, False)]
    assert {user: got for user, got in freed.items() if got != (0, 0)} == {"bob": (2, 4)}
    assert [e.eid for e in await store.pending("bob", 0, 10)] == ["e1"]
    assert [e.eid for e in await store.pending("carol", 0, 10)] == ["e9"]


async def test_a_resend_keeps_its_sid_when_the_same_batch_acknowledges_the_first_copy(
    store: Store,
) -> None:
    """The re-send is answered from the queue as it was before the batch's deletions:
    it gets the first copy's sid, not a conflict."""
    first = NewEnvelope("bob", "alice", "e1", b"xyz", 1.0)
    [(sid, fresh)] = (await store.write_batch([first], {}))[0]
    assert fresh

    stored, freed = await store.write_batch([first], {"bob": [sid]})

    assert stored == [(sid, False)]
    assert freed == {"bob": (1, 3)}
    assert await store.pending("bob", 0, 10) == []
    stats = await store.stats()
    assert (stats["envelopes"], stats["deliveries"]) == (0, 0)


async def test_key_directory_hands_out_one_time_prekeys_once(store: Store) -> None:
    """Each one-time prekey leaves the directory with exactly one bundle."""
    count = await store.publish_keys("bob", b"ik", b"spk", b"kem", [b"o1", b"o2"], False)
    assert count == 2
    got = [await store.fetch_bundle("bob") for _ in range(3)]
    assert [b.one_time_prekey for b in got if b] == [b"o1", b"o2", None]
    assert await store.fetch_bundle("nobody") is None
    assert await store.publish_keys("bob", b"ik", b"spk2", b"kem", [b"o3"], True) == 1


async def test_key_directory_hands_out_one_time_kem_prekeys_once(store: Store) -> None:
    """One-time ML-KEM prekeys leave with one bundle each; a replace clears them too."""
    await store.publish_keys("bob", b"ik", b"spk", b"kem", [b"o1"], False, [b"k1", b"k2"])
    assert await store.one_time_kem_prekey_count("bob") == 2
    got = [await store.fetch_bundle("bob") for _ in range(3)]
    assert [b.one_time_kem_prekey for b in got if b] == [b"k1", b"k2", None]
    assert [b.one_time_prekey for b in got if b] == [b"o1", None, None]
    await store.publish_keys("bob", b"ik", b"spk", b"kem", [], False, [b"k3"])
    await store.publish_keys("bob", b"ik", b"spk", b"kem", [], True, [])
    assert await store.one_time_kem_prekey_count("bob") == 0


async def test_files_metadata(store: Store) -> None:
    """Progress, recipients and fetches are kept; expiry and quota sums work."""
    record = FileRecord(
        "f1", "alice", 1000, frozenset({"bob", "carol"}), frozenset(), 0, False, 5.0
    )
    await store.create_file(record)
    await store.set_file_progress("f1", 3, True)
    updated = await store.mark_file_fetched("f1", "bob")
    assert updated is not None and updated.fetched_by == {"bob"} and updated.complete
    assert (await store.get_file("f1")).next_index == 3  # type: ignore[union-attr]
    assert await store.storage_used("alice") == (1, 1000)
    assert await store.expired_files(before=10.0) == ["f1"]
    assert [f.file_id for f in await store.files_of("alice")] == ["f1"]
    await store.delete_file("f1")
    assert await store.get_file("f1") is None


async def test_scan_cache_expires(store: Store) -> None:
    """A cached verdict is served until its expiry, then not."""
    await store.put_scan(b"k", b"verdict", expires_at=10.0)
    assert await store.get_scan(b"k", now=5.0) == b"verdict"
    assert await store.get_scan(b"k", now=11.0) is None


async def test_a_new_account_does_not_inherit_envelopes_left_for_its_name(store: Store) -> None:
    """An envelope that slipped in while an account was deleted is not the next owner's."""
    await store.enqueue([NewEnvelope("carol", "alice", "e", b"x", 1.0)])
    assert await store.create_account(account("carol"))
    assert await store.pending("carol", 0, 10) == []
    assert await store.queue_usage("carol") == (0, 0)


async def test_delete_account_removes_everything(store: Store) -> None:
    """Nothing of a deleted user stays behind."""
    await store.create_account(account("alice"))
    await store.put_session(SessionRecord(b"t", "alice", 100.0))
    await store.enqueue([NewEnvelope("alice", "bob", "e", b"x", 1.0)])
    await store.publish_keys("alice", b"ik", b"spk", b"kem", [b"o"], False)
    await store.delete_account("alice")
    assert await store.get_account("alice") is None
    assert await store.get_session(b"t") is None
    assert await store.pending("alice", 0, 10) == []
    assert await store.queue_usage("alice") is None
    assert await store.fetch_bundle("alice") is None
    stats = await store.stats()
    assert stats["accounts"] == 0 and stats["one_time_prekeys"] == 0


async def test_every_row_of_a_deleted_user_goes_and_stats_count_every_table(
    store: Store,
) -> None:
    """delete_account and stats follow schema.USER_ROWS: a user with a row in each loses all."""
    for name in ("alice", "bob"):
        await store.create_account(account(name))
    await store.put_session(SessionRecord(b"t", "alice", 1e12))
    await store.put_reset_token("alice", b"r", expires_at=1e12)
    await store.write_batch(
        [
            NewEnvelope("bob", "alice", "out", b"x", 1.0),
            NewEnvelope("alice", "bob", "in", b"y", 1.0),
        ],
        {},
    )
    assert await store.record_watches("alice", ["bob"]) == ["bob"]
    await store.publish_keys("alice", b"ik", b"spk", b"kem", [b"o"], False, [b"k"])
    await store.publish_key_packages("alice", "d1", [b"kp"], b"last")
    group = bytes(16)
    for epoch, added in ((0, ()), (1, ("alice",))):
        change = NewCommit(group, epoch, "bob", f"c{epoch}", b"c", b"w", added, (), 1.0, True)
        assert (await store.commit_group(change, keep=10)).status == "accepted"
    await store.create_file(
        FileRecord("f1", "alice", 10, frozenset({"bob"}), frozenset(), 0, False, 1.0)
    )
    before = await store.stats()
    assert set(before) == {*COUNTED, "live_sessions"}
    assert all(before[table] > 0 for table in COUNTED), before
    await store.delete_account("alice")
    after = await store.stats()
    # bob's account and membership stay, and so does the group's state.
    assert {table: after[table] for table in COUNTED} == dict.fromkeys(COUNTED, 0) | {
        "accounts": 1,
        "group_members": 1,
        "mls_groups": 1,
        "group_commits": 2,
    }


async def test_a_migrated_sqlite_database_has_no_table_outside_the_schema_lists(
    tmp_path: Path,
) -> None:
    """A new table must say whether users own its rows (schema.USER_ROWS) or not (UNOWNED)."""
    store = SQLiteStore(tmp_path / "store.sqlite3")
    await store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "store.sqlite3")) as db:
        tables = {
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not row[0].startswith("sqlite_")
        }
    assert tables == {*COUNTED, *UNOWNED}


async def test_expiry_removes_old_deliveries_and_bodies_left_without_one(store: Store) -> None:
    """A body whose deliveries are gone (two nodes acknowledging at once) still expires."""
    await store.create_account(account("bob"))
    await store.enqueue([NewEnvelope("bob", "alice", "old", b"x", 1.0)])
    await store.enqueue([NewEnvelope("bob", "alice", "new", b"x", 9.0)])
    orphan = "INSERT INTO envelopes (sender, eid, body, ts) VALUES ('carol', 'o', 'z', 1.0)"
    if isinstance(store, SQLiteStore):
        store._db.execute(orphan)
    else:
        assert isinstance(store, PostgresStore)
        await store._pool.execute(orphan)
    assert (await store.stats())["envelopes"] == 3
    assert await store.expire_envelopes(before=5.0) == 1
    assert [e.eid for e in await store.pending("bob", 0, 10)] == ["new"]
    assert (await store.stats())["envelopes"] == 1


async def test_watches_are_recorded_once_between_accounts_and_go_with_deletions(
    store: Store,
) -> None:
    """A watch records that its user follows existing accounts (never itself, never a name
    without an account), says which it did not follow before, and goes with the
    conversation (the deleter's follow) or the account (every follow of or by it)."""
    for name in ("alice", "bob", "carol"):
        await store.create_account(account(name))
    assert sorted(await store.record_watches("bob", ["alice", "bob", "nobody", "alice"])) == [
        "alice"
    ]
    assert await store.record_watches("bob", ["alice"]) == []
    assert await store.record_watches("carol", ["alice", "bob"]) in (
        ["alice", "bob"],
        ["bob", "alice"],
    )
    assert await store.watchers_of("alice") == {"bob", "carol"}
    assert await store.watchers_of("bob") == {"carol"}
    assert await store.watchers_of("carol") == set()
    await store.record_watches("alice", ["bob"])
    await store.delete_conversation("bob", "alice")
    assert await store.watchers_of("alice") == {"carol"}  # bob's follow went
    assert await store.watchers_of("bob") == {"carol", "alice"}  # alice's is hers
    assert await store.record_watches("bob", ["alice"]) == ["alice"]
    await store.delete_account("alice")
    assert await store.watchers_of("alice") == set()
    assert await store.record_watches("alice", ["bob"]) == []  # no account, no row
    assert await store.watchers_of("bob") == {"carol"}


async def test_failure_counts_restart_after_a_quiet_spell(store: Store) -> None:
    """A failure older than `forget` does not add to a new one; a put lock reads back."""
    assert await store.get_throttle("login:fail:u:alice") is None
    assert await store.count_failure("login:fail:u:alice", 100.0, 3600.0) == 1
    assert await store.count_failure("login:fail:u:alice", 200.0, 3600.0) == 2
    assert await store.count_failure("login:fail:u:alice", 5000.0, 3600.0) == 1
    await store.put_throttle("login:fail:u:alice", Throttle(6, 5900.0, 5000.0))
    assert await store.get_throttle("login:fail:u:alice") == Throttle(6, 5900.0, 5000.0)
    assert await store.expire_throttle(4000.0) == 0
    assert await store.expire_throttle(6000.0) == 1
    assert await store.get_throttle("login:fail:u:alice") is None


async def test_ping_answers_while_the_store_can_write(store: Store) -> None:
    """The readiness probe: a healthy store answers, on either backend."""
    await store.ping()


async def test_sqlite_ping_fails_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """A writer that never lets go is what 'cannot commit' looks like on SQLite."""

    from securechat.errors import StoreError

    store = SQLiteStore(tmp_path / "store.sqlite3")
    blocker = sqlite3.connect(tmp_path / "store.sqlite3", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="cannot be written"):
            await store.ping()
    finally:
        blocker.rollback()
        blocker.close()
    await store.ping()
    await store.close()
