"""The local vault: fixed old-format sample, wrong passwords, atomic writes, search, paging."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from securechat.client.conversation import ConversationId
from securechat.client.records import MessageRecord
from securechat.client.relay_client import OutboxItem
from securechat.client.vault_store import Vault
from securechat.crypto.errors import WrongPassword
from securechat.protocol.limits import USERNAME_PATTERN

SAMPLE = Path(__file__).parent / "samples" / "vault-v1"
SAMPLE_V2 = Path(__file__).parent / "samples" / "vault-v2"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    copy = tmp_path / "vault"
    shutil.copytree(SAMPLE, copy)
    return copy


def test_sample_vault_of_version_1_still_opens(sample: Path) -> None:
    """A vault written by an earlier release opens with its password and its recovery code."""
    vault = Vault.unlock(sample, "sample vault password")
    assert vault.get("identity") == b"sample identity bytes"
    assert [m.record.text for m in vault.messages("bob")] == [
        "hello bob",
        "hi alice, lunch at noon?",
    ]
    assert vault.messages("carol")[0].record.file_id == "blob123"
    assert vault.outbox_items() == [OutboxItem("e9", "bob", b"ciphertext")]
    assert [c.peer for c in vault.conversations()] == ["carol", "bob"]
    assert vault.search("lunch")[0].record.text == "hi alice, lunch at noon?"
    assert vault.search("lun") == []  # indexed before prefixes were: whole words only
    vault.add_message(MessageRecord(peer="bob", outgoing=True, text="lunchtime then", ts=9.0))
    assert [m.record.text for m in vault.search("lunch")] == [
        "lunchtime then",
        "hi alice, lunch at noon?",
    ]
    assert [m.record.text for m in vault.search("lun")] == ["lunchtime then"]
    vault.close()
    recovered = Vault.unlock_with_recovery(sample, "0123-4567-89ab-cdef-ghjk-mnpq")
    assert recovered.get("identity") == b"sample identity bytes"
    recovered.close()


def test_version_1_records_open_as_direct_conversations(sample: Path) -> None:
    """A v1 record names only its peer: it reads as the direct conversation with that peer,
    written by that peer or (outgoing) by the vault's owner; a system entry by nobody."""
    vault = Vault.unlock(sample, "sample vault password", owner="alice")
    records = [m.record for m in vault.messages("bob") + vault.messages("carol")]
    assert [(r.conversation_id, r.sender, r.outgoing) for r in records] == [
        (ConversationId.direct("bob"), "alice", True),
        (ConversationId.direct("bob"), "bob", False),
        (ConversationId.direct("carol"), "carol", False),
    ]
    assert {r.v for r in records} == {2}
    vault.close()


def test_sample_vault_of_version_2_still_opens(tmp_path: Path) -> None:
    """A vault of MessageRecord v2 (tests/client/samples/make_vault_v2.py) opens, and its
    records keep the conversation and sender they were written with."""
    copy = tmp_path / "vault"
    shutil.copytree(SAMPLE_V2, copy)
    vault = Vault.unlock(copy, "sample vault password", owner="alice")
    assert vault.get("identity") == b"sample identity bytes"
    bob = [m.record for m in vault.messages("bob")]
    assert [(r.sender, r.kind, r.text) for r in bob] == [
        ("alice", "text", "hello bob"),
        ("bob", "text", "hi alice, lunch at noon?"),
        ("", "system", "you kept bob's pinned key"),
    ]
    assert all(r.conversation_id == ConversationId.direct("bob") for r in bob)
    (offer,) = vault.messages("carol")
    assert (offer.record.sender, offer.record.file_id) == ("carol", "blob123")
    assert vault.seen("bob", "e2") and vault.seen("carol", "e4")
    assert [c.peer for c in vault.conversations()] == ["carol", "bob"]
    assert vault.outbox_items() == [OutboxItem("e9", "bob", b"ciphertext")]
    assert vault.search("lunch")[0].record.sender == "bob"
    vault.close()


def test_conversation_ids_keep_groups_apart_from_users() -> None:
    """A group's key cannot be a username, and every key reads back as the id it came from."""
    group, user = ConversationId.group("bob"), ConversationId.direct("bob")
    assert group.key != user.key and not group.is_direct and user.is_direct
    assert ConversationId.parse(group.key) == group and ConversationId.parse(user.key) == user
    assert not re.fullmatch(USERNAME_PATTERN, group.key)


def test_wrong_password_changes_nothing(sample: Path) -> None:
    """A wrong password is a clear error and leaves every file as it was."""
    before = {p.name: p.read_bytes() for p in sample.iterdir()}
    with pytest.raises(WrongPassword, match="does not unlock"):
        Vault.unlock(sample, "not the password")
    assert {p.name: p.read_bytes() for p in sample.iterdir()} == before


def test_password_change_keeps_history(sample: Path) -> None:
    """Re-wrapping the vault key keeps every record readable under the new password."""
    vault = Vault.unlock(sample, "sample vault password")
    vault.change_password("a brand new password")
    vault.close()
    with pytest.raises(WrongPassword):
        Vault.unlock(sample, "sample vault password")
    reopened = Vault.unlock(sample, "a brand new password")
    assert len(reopened.messages("bob")) == 2
    reopened.close()


def test_rows_cannot_be_swapped(sample: Path) -> None:
    """A record moved to another row fails authentication instead of showing wrong data."""
    vault = Vault.unlock(sample, "sample vault password")
    db = vault._db
    (first,), (second,) = db.execute("SELECT record FROM messages ORDER BY id LIMIT 2").fetchall()
    db.execute(
        "UPDATE messages SET record = ? WHERE id = (SELECT MIN(id) FROM messages)", (second,)
    )
    from securechat.crypto.errors import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        vault.messages("bob")
    assert first != second
    vault.close()


def test_search_and_paging_over_many_messages(tmp_path: Path) -> None:
    """Pages come newest-last, older pages on request; search finds whole words in any chat."""
    vault = Vault.create(tmp_path / "v", "a long enough password", "0" * 24)
    for i in range(500):
        vault.add_message(
            MessageRecord(
                peer=f"peer{i % 5}",
                outgoing=i % 2 == 0,
                text=f"message {i} about " + ("zebras" if i % 100 == 7 else "cats"),
                ts=float(i),
            )
        )
    last_page = vault.messages("peer0", limit=20)
    assert [m.record.text.split()[1] for m in last_page][-1] == "495"
    older = vault.messages("peer0", before_id=last_page[0].id, limit=20)
    assert older[-1].id < last_page[0].id and len(older) == 20
    started = time.perf_counter()
    hits = vault.search("zebras")
    assert time.perf_counter() - started < 1.0
    assert sorted(int(m.record.text.split()[1]) for m in hits) == [7, 107, 207, 307, 407]
    assert vault.search("message 207")[0].record.text == "message 207 about zebras"
    vault.delete_conversation("peer2")
    assert vault.messages("peer2") == [] and all(
        m.record.peer != "peer2" for m in vault.search("cats")
    )
    vault.close()


def _sealed_kv(vault: Vault) -> list[bytes]:
    return [row[0] for row in vault._db.execute("SELECT value FROM kv").fetchall()]


def _any_piece(blob: bytes, raw: bytes) -> bool:
    return any(blob[i : i + 32] in raw for i in range(0, len(blob) - 32, 32))


def _on_disk(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.glob("vault.sqlite3*")))


def test_deleted_records_leave_no_copy_on_disk(tmp_path: Path) -> None:
    """A deleted session and conversation are gone from the file, its free pages and the WAL."""
    from securechat.crypto import generate_recovery_code

    directory = tmp_path / "vault"
    vault = Vault.create(directory, "a long vault password", generate_recovery_code())
    vault.put("identity", b"kept")
    kept = _sealed_kv(vault)
    vault.put("session:bob", os.urandom(3000))
    session = next(blob for blob in _sealed_kv(vault) if blob not in kept)
    vault.add_message(MessageRecord(peer="bob", outgoing=False, text="x" * 2000, ts=1.0, eid="e1"))
    message = vault._db.execute("SELECT record FROM messages").fetchone()[0]
    assert session[100:164] in _on_disk(directory) and message[100:164] in _on_disk(directory)
    vault.delete("session:bob")
    assert not _any_piece(session, _on_disk(directory)), "the WAL kept the deleted session"
    vault.delete_conversation("bob")
    assert not _any_piece(message, _on_disk(directory))
    # Free pages are zeroed whatever the SQLite build's default (Debian's is on, others off).
    assert vault._db.execute("PRAGMA secure_delete").fetchone() == (1,)
    assert vault.get("identity") == b"kept"
    vault.close()


def test_a_message_and_the_entries_it_ends_share_one_transaction(tmp_path: Path) -> None:
    """A dismissed key change: the warning is stored and the offer deleted together; the
    warning the user caused is not unread, the one an envelope caused is."""
    vault = Vault.create(tmp_path / "v", "a long enough password", "0" * 24)
    vault.put("offered:bob", b"forged")
    warning = MessageRecord(peer="bob", outgoing=False, kind="system", text="kept", ts=1.0)
    vault.add_message(warning, drop=("offered:bob",))
    assert vault.get("offered:bob") is None
    assert vault.conversations()[0].unread == 0
    vault.put("offered:bob", b"forged again")
    vault.record_incoming("bob", "e1", warning, {}, drop=("offered:bob",))
    assert vault.get("offered:bob") is None and vault.seen("bob", "e1")
    assert vault.conversations()[0].unread == 1
    assert [m.record.kind for m in vault.messages("bob")] == ["system", "system"]
    vault.close()


def test_a_version_1_vault_keeps_unconfirmed_messages_after_the_upgrade(sample: Path) -> None:
    """The table of messages awaiting a receipt appears in an old vault; only their peer
    confirms them; old message records read with no relay time."""
    vault = Vault.unlock(sample, "sample vault password")
    assert vault.unconfirmed() == []
    assert vault.messages("bob")[0].record.received == 0.0
    record = MessageRecord(peer="bob", outgoing=True, text="are you there?", ts=1.0, eid="e10")
    vault.record_outgoing(record, {}, OutboxItem("e10", "bob", b"sealed"), confirm=b"s1")
    vault.record_outgoing(None, {}, OutboxItem("e11", "bob", b"receipt"))
    (entry,) = vault.unconfirmed()
    assert (entry.eid, entry.peer, entry.body, entry.session_id) == ("e10", "bob", b"sealed", b"s1")
    vault.drop_unconfirmed("e10", "carol")
    vault.close()
    reopened = Vault.unlock(sample, "sample vault password")
    assert [e.eid for e in reopened.unconfirmed()] == ["e10"]
    reopened.drop_unconfirmed("e10", "bob")
    assert reopened.unconfirmed() == []
    reopened.close()


def test_search_finds_word_prefixes_behind_blind_indexes(tmp_path: Path) -> None:
    """`pineapple` finds "pineapple42"; the database holds neither word nor prefix in clear."""
    vault = Vault.create(tmp_path / "v", "a long enough password", "0" * 24)
    for text in ["bring the pineapple42 now", "an apple", "ok then", "okay", "x" * 100]:
        vault.add_message(MessageRecord(peer="bob", outgoing=True, text=text, ts=1.0))

    def found(query: str) -> list[str]:
        return [m.record.text for m in vault.search(query)]

    assert found("pineapple") == found("PINE") == ["bring the pineapple42 now"]
    assert found("pineapple42") == found("pine bring") == ["bring the pineapple42 now"]
    assert found("apple") == ["an apple"]  # a prefix, not any substring
    assert found("pineapples") == found("pi") == []  # two letters must be a whole word
    assert found("ok") == ["ok then"] and found("oka") == ["okay"]
    assert found("x" * 40) == ["x" * 100]  # longer than an indexed token, checked in full
    vault.close()
    raw = b"".join(f.read_bytes() for f in (tmp_path / "v").iterdir() if f.is_file())
    assert b"pineapple" not in raw and b"pine" not in raw
