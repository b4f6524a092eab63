"""The local vault: everything a client keeps on disk, encrypted under the vault key.

Two files in the user's directory: `vault.header` (the vault key wrapped by
the password and by the recovery code; see crypto.vault) and `vault.sqlite3`
whose every value column is a record sealed with `RecordCipher`, bound to
its table and row so rows cannot be swapped. Lookup columns hold keyed
blind indexes (HMAC under a vault subkey), never names or words.

The messages and their search index are vault_messages.py's, a base of `Vault`
over the same connection, so one transaction still spans history and state.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgspec

from securechat.client import vault_keys as K
from securechat.client.records import ConversationRecord, MessageRecord, Unconfirmed
from securechat.client.relay_client import OutboxItem
from securechat.client.vault_messages import VaultMessages
from securechat.crypto.vault import RecordCipher, VaultHeader
from securechat.errors import StorageFullError, StoreError

HEADER_FILE = "vault.header"
DATABASE_FILE = "vault.sqlite3"
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (name BLOB PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, item BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen (tag BLOB PRIMARY KEY, ts REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conv BLOB NOT NULL,
    eid_tag BLOB,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_conv ON messages(conv, id);
CREATE INDEX IF NOT EXISTS messages_eid ON messages(eid_tag);
CREATE TABLE IF NOT EXISTS terms (term BLOB NOT NULL, message_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS terms_term ON terms(term, message_id);
CREATE TABLE IF NOT EXISTS conversations (conv BLOB PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS unconfirmed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    eid_tag BLOB NOT NULL UNIQUE,
    item BLOB NOT NULL
);
"""


_encode = msgspec.msgpack.encode
_decode_conversation = msgspec.msgpack.Decoder(ConversationRecord).decode
_decode_outbox = msgspec.msgpack.Decoder(tuple[str, str, bytes]).decode
_decode_unconfirmed = msgspec.msgpack.Decoder(Unconfirmed).decode


def write_atomic(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageFullError(f"cannot write {path}: {exc.strerror}") from exc


class Vault(VaultMessages):
    def __init__(
        self, directory: Path, header: VaultHeader, vault_key: bytes, owner: str = ""
    ) -> None:
        self.directory = directory
        self.owner = owner
        """The account whose vault this is: the sender of its v1 outgoing records."""
        self.header = header
        self._key = vault_key
        self.cipher = RecordCipher(vault_key)
        self.conversation_opened: Callable[[str], None] | None = None
        """Told of each conversation a message creates (a new one, or one deleted here):
        the client follows the peer's presence (`ClientContext.conversation_opened`)."""
        self.pin_writes = 0
        """Pins written or deleted through this object: with `data_version`, whether
        anything computed from the pins may have changed."""
        try:
            self._db = sqlite3.connect(
                directory / DATABASE_FILE, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Freed space is zeroed, so a deleted record's ciphertext does not stay readable
            # in free pages (cost measured in bench/bench_vault.py).
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the vault database in {directory}: {exc}") from exc

    # --- opening -------------------------------------------------------------------

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / HEADER_FILE).is_file()

    @classmethod
    def create(cls, directory: Path, password: str, recovery_code: str, owner: str = "") -> Vault:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        header, key = VaultHeader.create(password, recovery_code)
        write_atomic(directory / HEADER_FILE, header.to_bytes())
        return cls(directory, header, key, owner)

    @classmethod
    def unlock(cls, directory: Path, password: str, owner: str = "") -> Vault:
        """Raises WrongPassword (a CryptoError) with nothing changed on disk."""
        header = cls._read_header(directory)
        return cls(directory, header, header.unlock_password(password), owner)

    @classmethod
    def unlock_with_recovery(cls, directory: Path, code: str, owner: str = "") -> Vault:
        header = cls._read_header(directory)
        return cls(directory, header, header.unlock_recovery(code), owner)

    @staticmethod
    def _read_header(directory: Path) -> VaultHeader:
        try:
            data = (directory / HEADER_FILE).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"no vault in {directory}: register or log in first") from None
        return VaultHeader.from_bytes(data)

    def change_password(self, new_password: str) -> None:
        self.header = self.header.rewrap_password(self._key, new_password)
        write_atomic(self.directory / HEADER_FILE, self.header.to_bytes())

    def change_recovery_code(self, new_code: str) -> None:
        self.header = self.header.rewrap_recovery(self._key, new_code)
        write_atomic(self.directory / HEADER_FILE, self.header.to_bytes())

    def close(self) -> None:
        self._db.close()

    def wipe(self) -> None:
        """Deletes the vault and everything in the user's directory."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise StorageFullError(f"cannot write the vault: {exc}") from exc

    def data_version(self) -> int:
        """Changes when another connection (another process on this vault) commits:
        whatever was kept in memory from the vault may be out of date then."""
        row = self._db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def _tag(self, kind: str, value: str) -> bytes:
        return self.cipher.blind_index(f"{kind}\x00{value}")

    # --- key/value (identity, prekeys, sessions, pins, settings) -------------------

    def get(self, name: str) -> bytes | None:
        tag = self._tag("kv", name)
        row = self._db.execute("SELECT value FROM kv WHERE name = ?", (tag,)).fetchone()
        return self.cipher.open("kv", name.encode(), row[0]) if row else None

    def put(self, name: str, value: bytes) -> None:
        with self._tx() as db:
            self._put(db, name, value)

    def _put(self, db: sqlite3.Connection, name: str, value: bytes) -> None:
        if name.startswith(K.PIN_PREFIX):
            self.pin_writes += 1
        db.execute(
            "INSERT OR REPLACE INTO kv VALUES (?, ?)",
            (self._tag("kv", name), self.cipher.seal("kv", name.encode(), value)),
        )

    def delete(self, name: str) -> None:
        with self._tx() as db:
            self._delete(db, name)
        self._checkpoint()

    def _delete(self, db: sqlite3.Connection, name: str) -> None:
        if name.startswith(K.PIN_PREFIX):
            self.pin_writes += 1
        db.execute("DELETE FROM kv WHERE name = ?", (self._tag("kv", name),))

    def _checkpoint(self) -> None:
        """After a deletion: the WAL still holds the pages as they were before it.

        A checkpoint copies the zeroed pages into the database and TRUNCATE empties the
        WAL, so the deleted record leaves no copy on disk.
        """
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            raise StorageFullError(f"cannot write the vault: {exc}") from exc

    # --- outbox --------------------------------------------------------------------

    def outbox_add(self, item: OutboxItem) -> None:
        with self._tx() as db:
            self._outbox_add(db, item)

    def _outbox_add(self, db: sqlite3.Connection, item: OutboxItem) -> None:
        cur = db.execute("INSERT INTO outbox (item) VALUES (x'')")
        seq = int(cur.lastrowid or 0)
        sealed = self.cipher.seal(
            "outbox", str(seq).encode(), _encode((item.eid, item.to, item.body))
        )
        db.execute("UPDATE outbox SET item = ? WHERE seq = ?", (sealed, seq))

    def outbox_remove(self, eid: str) -> None:
        for seq, item in self._outbox_rows():
            if item.eid == eid:
                with self._tx() as db:
                    db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                return

    def outbox_items(self) -> list[OutboxItem]:
        return [item for _, item in self._outbox_rows()]

    def _outbox_rows(self) -> list[tuple[int, OutboxItem]]:
        rows = self._db.execute("SELECT seq, item FROM outbox ORDER BY seq").fetchall()
        items = []
        for seq, blob in rows:
            eid, to, body = _decode_outbox(self.cipher.open("outbox", str(seq).encode(), blob))
            items.append((int(seq), OutboxItem(eid, to, body)))
        return items

    # --- received ids (exactly once to the application) ----------------------------

    def seen(self, sender: str, eid: str) -> bool:
        tag = self._tag("seen", f"{sender}\x00{eid}")
        return self._db.execute("SELECT 1 FROM seen WHERE tag = ?", (tag,)).fetchone() is not None

    # --- history -------------------------------------------------------------------

    def record_incoming(
        self,
        sender: str,
        eid: str,
        record: MessageRecord | None,
        state: dict[str, bytes],
        drop: tuple[str, ...] = (),
    ) -> int | None:
        """One transaction: mark (sender, eid) seen, store the message and the new session state.

        A crash before the commit leaves the envelope unseen and the state unchanged, so
        the redelivery decrypts again; after it, the redelivery is recognised and dropped.
        `drop` names key/value entries the envelope ends (a dismissed key change).
        """
        ids = self.record_all([record] if record else [], state, seen=(sender, eid), drop=drop)
        return ids[0] if ids else None

    def record_all(
        self,
        records: Sequence[MessageRecord],
        state: dict[str, bytes],
        *,
        seen: tuple[str, str] | None = None,
        drop: tuple[str, ...] = (),
    ) -> list[int]:
        """One transaction: the messages (ids returned in order), the state, and `seen`.

        A group delivery stores all it did at once (its message or the lines a
        Commit adds, the group state, pins), before the relay is acknowledged.
        Incoming messages count as unread; outgoing ones and system lines do not,
        unless `seen` says they arrived from the relay.
        """
        with self._tx() as db:
            if seen is not None:
                db.execute(
                    "INSERT OR IGNORE INTO seen VALUES (?, ?)",
                    (self._tag("seen", f"{seen[0]}\x00{seen[1]}"), time.time()),
                )
            for name, value in state.items():
                self._put(db, name, value)
            for name in drop:
                self._delete(db, name)
            return [
                self._add_message(db, r, unread=not r.outgoing and seen is not None)
                for r in records
            ]

    def record_outgoing(
        self,
        record: MessageRecord | None,
        state: dict[str, bytes],
        item: OutboxItem | None,
        *,
        confirm: bytes | None = None,
    ) -> int | None:
        """Stores a sent message, the advanced session and the outbox entry together.

        `confirm` (the session's id): keep the body until the peer's receipt names
        it, to send it again.
        """
        with self._tx() as db:
            for name, value in state.items():
                self._put(db, name, value)
            if item is not None:
                self._outbox_add(db, item)
                if confirm is not None:
                    entry = Unconfirmed(
                        eid=item.eid,
                        peer=item.to,
                        body=item.body,
                        sent_at=time.time(),
                        session_id=confirm,
                    )
                    self._save_unconfirmed(db, entry)
            return self._add_message(db, record, unread=False) if record else None

    # --- sent, not confirmed by the peer -------------------------------------------

    def _save_unconfirmed(self, db: sqlite3.Connection, entry: Unconfirmed) -> None:
        tag = self._tag("unconfirmed", entry.eid)
        db.execute(
            "INSERT OR REPLACE INTO unconfirmed (eid_tag, item) VALUES (?, ?)",
            (tag, self.cipher.seal("unconfirmed", tag, _encode(entry))),
        )

    def update_unconfirmed(self, entry: Unconfirmed) -> None:
        tag = self._tag("unconfirmed", entry.eid)
        with self._tx() as db:
            db.execute(
                "UPDATE unconfirmed SET item = ? WHERE eid_tag = ?",
                (self.cipher.seal("unconfirmed", tag, _encode(entry)), tag),
            )

    def drop_unconfirmed(self, eid: str, peer: str) -> None:
        """Confirmed by `peer` (or given up): only a message sent to them is theirs to confirm."""
        tag = self._tag("unconfirmed", eid)
        row = self._db.execute("SELECT item FROM unconfirmed WHERE eid_tag = ?", (tag,)).fetchone()
        if (
            row is None
            or _decode_unconfirmed(self.cipher.open("unconfirmed", tag, row[0])).peer != peer
        ):
            return
        with self._tx() as db:
            db.execute("DELETE FROM unconfirmed WHERE eid_tag = ?", (tag,))

    def unconfirmed(self) -> list[Unconfirmed]:
        """Oldest first."""
        rows = self._db.execute("SELECT eid_tag, item FROM unconfirmed ORDER BY seq").fetchall()
        return [
            _decode_unconfirmed(self.cipher.open("unconfirmed", tag, blob)) for tag, blob in rows
        ]

    def add_message(self, record: MessageRecord, drop: tuple[str, ...] = ()) -> int:
        """Stores a message written here, deleting the `drop` entries in the same transaction.

        A `system` record written here is the user's own doing, so it is not unread.
        """
        with self._tx() as db:
            for name in drop:
                self._delete(db, name)
            unread = not record.outgoing and record.kind != "system"
            return self._add_message(db, record, unread=unread)

    def _add_message(self, db: sqlite3.Connection, record: MessageRecord, unread: bool) -> int:
        message_id = self._insert_message(db, record)
        self._touch_conversation(db, record.conversation_id.key, record.ts, unread)
        return message_id

    # --- conversations -------------------------------------------------------------

    def _touch_conversation(
        self, db: sqlite3.Connection, peer: str, ts: float, unread: bool
    ) -> None:
        current = self._conversation(peer)
        if current is None:
            current = ConversationRecord(peer=peer)
            if self.conversation_opened is not None:
                self.conversation_opened(peer)
        updated = ConversationRecord(
            peer=peer,
            last_ts=max(current.last_ts, ts),
            unread=current.unread + (1 if unread else 0),
        )
        self._save_conversation(db, updated)

    def _save_conversation(self, db: sqlite3.Connection, record: ConversationRecord) -> None:
        conv = self._tag("conv", record.peer)
        db.execute(
            "INSERT OR REPLACE INTO conversations VALUES (?, ?)",
            (conv, self.cipher.seal("conversation", conv, _encode(record))),
        )

    def _conversation(self, peer: str) -> ConversationRecord | None:
        conv = self._tag("conv", peer)
        row = self._db.execute(
            "SELECT record FROM conversations WHERE conv = ?", (conv,)
        ).fetchone()
        if row is None:
            return None
        return _decode_conversation(self.cipher.open("conversation", conv, row[0]))

    def ensure_conversation(self, peer: str) -> bool:
        """True when the conversation is new."""
        if self._conversation(peer) is not None:
            return False
        with self._tx() as db:
            self._save_conversation(db, ConversationRecord(peer=peer))
        return True

    def conversations(self) -> list[ConversationRecord]:
        rows = self._db.execute("SELECT conv, record FROM conversations").fetchall()
        records = [
            _decode_conversation(self.cipher.open("conversation", conv, blob))
            for conv, blob in rows
        ]
        return sorted(records, key=lambda r: -r.last_ts)

    def mark_read(self, peer: str) -> None:
        current = self._conversation(peer)
        if current and current.unread:
            with self._tx() as db:
                self._save_conversation(db, msgspec.structs.replace(current, unread=0))

    def delete_conversation(self, peer: str) -> None:
        conv = self._tag("conv", peer)
        waiting = [e.eid for e in self.unconfirmed() if e.peer == peer]
        with self._tx() as db:
            db.executemany(
                "DELETE FROM unconfirmed WHERE eid_tag = ?",
                [(self._tag("unconfirmed", eid),) for eid in waiting],
            )
            db.execute(
                "DELETE FROM terms WHERE message_id IN (SELECT id FROM messages WHERE conv = ?)",
                (conv,),
            )
            db.execute("DELETE FROM messages WHERE conv = ?", (conv,))
            db.execute("DELETE FROM conversations WHERE conv = ?", (conv,))
        self._checkpoint()
