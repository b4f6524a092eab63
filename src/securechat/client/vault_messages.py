"""The vault's messages read back: a conversation's pages, one message, history search.

History search: each message's distinct words, and their prefixes of three
or more characters (crypto.search_tokens), are stored as blind indexes in
`terms`; a query intersects the rows of its words, then decrypts only those
candidates to confirm the match, so `pineapple` finds "pineapple42". Someone
holding the file without the key sees how many messages share an (unknown)
word or prefix, and nothing readable.

Messages stored before prefixes were indexed have only their whole words'
tags, in the same table under the same labels: they are found by whole words,
and by prefix only once re-stored. Nothing is re-indexed on unlock, so an old
vault opens as fast as before and an older client still reads a newer vault.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager

import msgspec

from securechat.client.records import MessageRecord, StoredMessage
from securechat.crypto.vault import MAX_TOKEN_LENGTH, MIN_PREFIX, RecordCipher, search_tokens

_MAX_TERMS_PER_MESSAGE = 4096
"""Tokens indexed per message: a word gives at most 31 (itself and its prefixes)."""

_DELIVERY_RANK = {"": 0, "sending": 1, "failed": 2, "sent": 3, "delivered": 4}

_encode = msgspec.msgpack.encode
_decode_message = msgspec.msgpack.Decoder(MessageRecord).decode


def words(text: str) -> set[str]:
    """The whole words of a text as search sees them: NFKC, case-folded."""
    return set(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


def matches(query: str, text: str) -> bool:
    """Whether every word of `query` starts a word of `text` (a short one must be whole).

    The same rule the index answers, checked on the decrypted text: a tag hit
    is only a candidate, since tags are truncated and long words cut.
    """
    wanted = words(query)
    have = words(text)
    return bool(wanted) and all(
        any(word.startswith(w) for word in have) if len(w) >= MIN_PREFIX else w in have
        for w in wanted
    )


class VaultMessages:
    """The messages and terms tables, over the connection `vault_store.Vault` opens.

    A base of `Vault` rather than an object it holds, so the reads stay its methods and
    the index is written on the connection of the transaction that stores the message.
    """

    # Set by Vault: its connection, cipher and owner, its blind index and transaction.
    _db: sqlite3.Connection
    cipher: RecordCipher
    owner: str
    _tag: Callable[[str, str], bytes]
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def _insert_message(self, db: sqlite3.Connection, record: MessageRecord) -> int:
        """Seals and indexes a message inside the caller's transaction `db`."""
        conv = self._tag("conv", record.conversation_id.key)
        eid_tag = self._tag("eid", record.eid) if record.eid else None
        cur = db.execute(
            "INSERT INTO messages (conv, eid_tag, record) VALUES (?, ?, x'')", (conv, eid_tag)
        )
        message_id = int(cur.lastrowid or 0)
        db.execute(
            "UPDATE messages SET record = ? WHERE id = ?",
            (self.cipher.seal("message", str(message_id).encode(), _encode(record)), message_id),
        )
        terms = sorted(search_tokens(record.text))[:_MAX_TERMS_PER_MESSAGE]
        db.executemany(
            "INSERT INTO terms VALUES (?, ?)",
            [(self._tag("term", term), message_id) for term in terms],
        )
        return message_id

    def update_delivery(self, eid: str, state: str) -> StoredMessage | None:
        """Moves a message's delivery state forward; never back (None when unchanged).

        The relay's `accepted` and the peer's receipt race on the wire: a late
        `sent` must not overwrite `delivered`.
        """
        row = self._db.execute(
            "SELECT id, record FROM messages WHERE eid_tag = ?", (self._tag("eid", eid),)
        ).fetchone()
        if row is None:
            return None
        message = self._open_message(row[0], row[1])
        if _DELIVERY_RANK.get(state, 0) <= _DELIVERY_RANK.get(message.record.state, 0):
            return None
        updated = msgspec.structs.replace(message.record, state=state)
        with self._tx() as db:
            db.execute(
                "UPDATE messages SET record = ? WHERE id = ?",
                (self.cipher.seal("message", str(row[0]).encode(), _encode(updated)), row[0]),
            )
        return StoredMessage(row[0], updated)

    def message_by_eid(self, eid: str) -> StoredMessage | None:
        row = self._db.execute(
            "SELECT id, record FROM messages WHERE eid_tag = ?", (self._tag("eid", eid),)
        ).fetchone()
        return self._open_message(row[0], row[1]) if row else None

    def messages(
        self,
        peer: str,
        before_id: int | None = None,
        limit: int = 50,
        after_id: int | None = None,
    ) -> list[StoredMessage]:
        """A page of a conversation, oldest first: ending just before `before_id`, or
        starting just after `after_id` (to show a search hit with what followed it)."""
        conv = self._tag("conv", peer)
        if after_id is not None:
            rows = self._db.execute(
                "SELECT id, record FROM messages WHERE conv = ? AND id > ? ORDER BY id LIMIT ?",
                (conv, after_id, limit),
            ).fetchall()
            return [self._open_message(mid, blob) for mid, blob in rows]
        rows = self._db.execute(
            "SELECT id, record FROM messages WHERE conv = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (conv, before_id if before_id is not None else 2**63 - 1, limit),
        ).fetchall()
        return [self._open_message(mid, blob) for mid, blob in reversed(rows)]

    def messages_after(self, after_id: int, limit: int = 200) -> list[StoredMessage]:
        """Every conversation's messages stored after `after_id`, oldest first.

        Ids only grow (AUTOINCREMENT), so an id is a cursor a reader can resume from.
        """
        rows = self._db.execute(
            "SELECT id, record FROM messages WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [self._open_message(mid, blob) for mid, blob in rows]

    def message(self, message_id: int) -> StoredMessage | None:
        row = self._db.execute(
            "SELECT id, record FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return self._open_message(row[0], row[1]) if row else None

    def search(self, query: str, limit: int = 50) -> list[StoredMessage]:
        """Messages with a word starting with each word of `query`, newest first."""
        wanted = {w[:MAX_TOKEN_LENGTH] for w in words(query)}
        if not wanted:
            return []
        tags = [self._tag("term", w) for w in wanted]
        placeholders = ",".join("?" * len(tags))
        rows = self._db.execute(
            f"SELECT message_id FROM terms WHERE term IN ({placeholders})"  # noqa: S608
            " GROUP BY message_id HAVING COUNT(DISTINCT term) = ?"
            " ORDER BY message_id DESC LIMIT ?",
            (*tags, len(tags), limit * 4),
        ).fetchall()
        found: list[StoredMessage] = []
        for (message_id,) in rows:
            message = self.message(message_id)
            if message and matches(query, message.record.text):
                found.append(message)
                if len(found) == limit:
                    break
        return found

    def _open_message(self, message_id: int, blob: bytes) -> StoredMessage:
        plain = self.cipher.open("message", str(message_id).encode(), blob)
        return StoredMessage(message_id, _decode_message(plain).explicit(self.owner))
