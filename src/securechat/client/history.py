"""History: the conversations, their pages, search, unread counts, and catching up.

Everything here reads or edits what the vault already holds; only deleting a
conversation also asks the relay to drop what it still queues for it.
"""

from __future__ import annotations

import contextlib

from securechat.client import payloads as P
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.events import Event, FileOffered, MessageReceived
from securechat.client.records import ConversationRecord, StoredMessage
from securechat.crypto.filestream import FileManifest
from securechat.errors import SecureChatError
from securechat.protocol import frames as F


class History:
    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx

    def history(
        self,
        peer: str,
        before_id: int | None = None,
        limit: int = 50,
        after_id: int | None = None,
    ) -> list[StoredMessage]:
        return self._ctx.need_vault().messages(peer, before_id, limit, after_id)

    def received_after(self, after_id: int, limit: int = 200) -> tuple[list[Event], int]:
        """The messages and file offers received after `after_id`, as the events they raised.

        Returns them with the last id read, which is the cursor to go on from: a
        reader that was away (a daemon's client, a restarted daemon) catches up
        from the vault instead of from events it missed.
        """
        vault = self._ctx.need_vault()
        events: list[Event] = []
        stored = vault.messages_after(after_id, limit)
        for message in stored:
            record = message.record
            if record.outgoing:
                continue
            if record.kind == "text":
                events.append(
                    MessageReceived(
                        record.conversation_id,
                        record.sender,
                        record.text,
                        record.ts,
                        message.id,
                        record.received,
                        bool(record.received) and P.clocks_disagree(record.ts, record.received),
                    )
                )
            elif record.kind == "file" and (blob := vault.get(K.offered_file(record.file_id))):
                manifest = FileManifest.from_bytes(blob)
                events.append(
                    FileOffered(
                        record.conversation_id,
                        record.sender,
                        record.file_id,
                        manifest.name,
                        manifest.size,
                        message.id,
                    )
                )
        return events, stored[-1].id if stored else after_id

    def search(self, query: str, limit: int = 50) -> list[StoredMessage]:
        return self._ctx.need_vault().search(query, limit)

    def conversations(self) -> list[ConversationRecord]:
        """Every conversation with its unread count, most recent first."""
        return self._ctx.need_vault().conversations()

    def peer_deleted(self, peer: str) -> bool:
        """The relay reported `peer`'s account deleted: nothing sent to them can arrive."""
        return self._ctx.need_vault().get(K.gone(peer)) is not None

    def mark_read(self, peer: str) -> None:
        self._ctx.need_vault().mark_read(peer)

    async def delete_conversation(self, peer: str) -> None:
        """Forgets the history here and whatever the relay still queues for it.

        The end-to-end session and the pinned key stay, as in Signal: the peer
        cannot see the delete, so their next message must still open here, and
        a reply must still open there.
        """
        vault = self._ctx.need_vault()
        if ConversationId.parse(peer).is_direct:
            # `delete_conversation` names a peer; a group is no peer (the relay would refuse it).
            with contextlib.suppress(SecureChatError):
                await self._ctx.relay.request(lambda rid: F.DeleteConversation(rid=rid, peer=peer))
        vault.delete_conversation(peer)
