"""Files: uploads that survive reconnects and restarts, offers inside the session, downloads.

The chunk-level work (sealing, resuming, verifying) is `transfers`; this module
decides what the vault remembers about each file: the uploads still to finish,
the manifests offered, and where a received file was saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import msgspec

from securechat import paths
from securechat.client import payloads as P
from securechat.client import transfers
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.conversation import ConversationId
from securechat.client.direct import DirectSessions
from securechat.client.events import DeliveryState, TransferProgress
from securechat.client.groups import Groups
from securechat.client.records import MessageRecord
from securechat.client.relay_client import new_envelope_id
from securechat.crypto.filestream import FileManifest, SealLedger, tags_digest
from securechat.errors import (
    ClientError,
    ClientErrorCode,
    ConnectionLost,
    ServerRejected,
    SessionError,
)
from securechat.protocol import frames as F


class PendingUpload(msgspec.Struct, frozen=True, array_like=True):
    """An upload that must finish (and be offered) after a reconnect."""

    blob_id: str
    peer: str
    """The `ConversationId.key` it is offered in: the peer, or `#` and a group id."""
    path: str
    manifest: bytes


class Files:
    def __init__(self, ctx: ClientContext, direct: DirectSessions, groups: Groups) -> None:
        self._ctx = ctx
        self._direct = direct
        self._groups = groups
        self._uploading: set[str] = set()

    async def send_file(self, peer: str, path: str | Path) -> str:
        """Encrypts and uploads a file, then offers it to `peer` inside the session.

        Returns the relay's blob id. An interrupted upload resumes after reconnecting.
        """
        self._direct.usable_session(peer)
        return await self._send(ConversationId.direct(peer), [peer], path)

    async def send_group_file(self, group_id: str, path: str | Path) -> str:
        """As `send_file`, uploaded once: the offer, inside a group message, carries the
        file key to every member, and the relay lets each member download it."""
        recipients = self._groups.sending.recipients(group_id)
        return await self._send(ConversationId.group(group_id), recipients, path)

    async def _send(
        self, conversation: ConversationId, recipients: list[str], path: str | Path
    ) -> str:
        ctx = self._ctx
        vault = ctx.need_vault()
        peer = conversation.key
        outgoing = await asyncio.to_thread(transfers.outgoing_file, Path(path).expanduser())
        # The digest only goes into the offer: a thread computes it while the chunks go out.
        hashing = asyncio.ensure_future(asyncio.to_thread(transfers.file_tags, outgoing))
        try:
            blob_id = await transfers.begin_upload(ctx.relay, outgoing.size, recipients)
        except BaseException:
            await asyncio.gather(hashing, return_exceptions=True)
            raise
        self._uploading.add(blob_id)
        ledger = SealLedger()
        uploading = asyncio.ensure_future(
            transfers.upload(ctx.relay, outgoing, blob_id, self._progress(blob_id, "up"), ledger)
        )
        try:
            tags = await hashing
            # Kept (and resumable) only if every chunk already sent sealed to these tags.
            transfers.expect_tags(ledger, tags, outgoing.path)
            manifest = outgoing.manifest(tags_digest(tags))
            pending = PendingUpload(
                blob_id, peer, str(outgoing.path.resolve()), manifest.to_bytes()
            )
            vault.put(K.UPLOADS, msgspec.msgpack.encode([*self.pending(), pending]))
        except BaseException as exc:
            uploading.cancel()
            await asyncio.gather(uploading, return_exceptions=True)
            self._uploading.discard(blob_id)
            if isinstance(exc, transfers.TransferError):
                await self._abandon(blob_id)
            raise
        try:
            await uploading
            await self._offer(pending, manifest)
        except (transfers.TransferError, ServerRejected) as exc:
            if _permanent(exc):
                await self._abandon(blob_id)
            raise
        except ConnectionLost as exc:
            if ctx.relay.reconnect and ctx.relay.connected:
                # Back already: the reconnect skipped this upload while it was still ours
                # (or did not know it yet). The task starts after the `finally` below.
                ctx.spawn(self.finish_upload(pending))
            raise transfers.TransferError(
                f"the upload of {outgoing.path.name} was interrupted; "
                "it resumes when the relay is back"
            ) from exc
        finally:
            self._uploading.discard(blob_id)
        return blob_id

    def pending(self) -> list[PendingUpload]:
        blob = self._ctx.need_vault().get(K.UPLOADS)
        return msgspec.msgpack.decode(blob, type=list[PendingUpload]) if blob else []

    def resume_all(self) -> None:
        """After a (re)connect: every upload still pending finishes in the background."""
        for pending in self.pending():
            self._ctx.spawn(self.finish_upload(pending))

    async def finish_upload(self, pending: PendingUpload) -> None:
        """Resumes an upload cut by a disconnect or a restart, then offers the file."""
        if pending.blob_id in self._uploading:
            return
        self._uploading.add(pending.blob_id)
        try:
            manifest = FileManifest.from_bytes(pending.manifest)
            await transfers.resume_upload(
                self._ctx.relay,
                transfers.OutgoingFile.of(Path(pending.path), manifest),
                manifest,
                pending.blob_id,
                self._progress(pending.blob_id, "up"),
            )
            # Still guarded: a reconnect meanwhile must not offer the file a second time.
            await self._offer(pending, manifest)
        except (transfers.TransferError, ServerRejected) as exc:
            if _permanent(exc):
                await self._abandon(pending.blob_id)
            raise
        finally:
            self._uploading.discard(pending.blob_id)

    async def _abandon(self, blob_id: str) -> None:
        """An upload that cannot finish: forget it, and free its space on the relay."""
        self._forget(blob_id)
        # Best effort: offline, or a relay that predates file_cancel, the blob expires.
        with contextlib.suppress(ClientError):
            await self._ctx.relay.request(lambda rid: F.FileCancel(rid=rid, file_id=blob_id))

    def _forget(self, blob_id: str) -> None:
        remaining = [p for p in self.pending() if p.blob_id != blob_id]
        self._ctx.need_vault().put(K.UPLOADS, msgspec.msgpack.encode(remaining))

    async def _offer(self, pending: PendingUpload, manifest: FileManifest) -> None:
        vault, _, me = self._ctx.need_identity()
        offer = P.FileOffer(manifest=pending.manifest, blob_id=pending.blob_id)
        text = f"{manifest.name} ({transfers.human_size(manifest.size)})"
        conversation = ConversationId.parse(pending.peer)
        if not conversation.is_direct:
            vault.put(K.offered_file(pending.blob_id), pending.manifest)
            await self._groups.sending.send_inner(
                conversation.name, offer, kind="file", text=text, file_id=pending.blob_id
            )
            self._forget(pending.blob_id)
            return
        eid = new_envelope_id()
        record = MessageRecord(
            peer=pending.peer,
            conversation=ConversationId.direct(pending.peer).key,
            sender=me,
            outgoing=True,
            kind="file",
            file_id=pending.blob_id,
            text=text,
            ts=time.time(),
            eid=eid,
            state=DeliveryState.SENDING,
        )
        vault.put(K.offered_file(pending.blob_id), pending.manifest)
        await self._direct.send_inner(pending.peer, offer, record, eid)
        self._forget(pending.blob_id)

    async def download(self, blob_id: str, directory: str | Path | None = None) -> Path:
        """Fetches, verifies and saves a received file; returns where it was saved.

        A file saved before (even in an earlier run) is not fetched again: the relay
        deletes a blob once every recipient has it.
        """
        vault = self._ctx.need_vault()
        blob = vault.get(K.offered_file(blob_id))
        if blob is None:
            raise SessionError(f"no file {blob_id} was offered to you", ClientErrorCode.NO_FILE)
        saved = vault.get(K.saved_file(blob_id))
        if saved is not None and Path(saved.decode()).is_file():
            return Path(saved.decode())
        target = Path(directory) if directory else paths.downloads_dir(self._ctx.data_dir)
        path = await transfers.download(
            self._ctx.relay,
            FileManifest.from_bytes(blob),
            blob_id,
            target,
            self._progress(blob_id, "down"),
        )
        vault.put(K.saved_file(blob_id), str(path).encode())
        return path

    def saved_file(self, blob_id: str) -> Path | None:
        """Where a received file was saved, in this run or an earlier one, if it is still there.

        Lets the chat show a download's location again after a restart.
        """
        saved = self._ctx.need_vault().get(K.saved_file(blob_id))
        if saved is None:
            return None
        path = Path(saved.decode(errors="replace"))
        return path if path.is_file() else None

    def _progress(self, blob_id: str, direction: str) -> transfers.Progress:
        def report(done: int, total: int) -> None:
            self._ctx.emit(TransferProgress(blob_id, done, total, direction))

        return report


def _permanent(exc: ClientError) -> bool:
    """A failed upload that trying again after a reconnect cannot fix."""
    return isinstance(exc, transfers.TransferError) or (
        isinstance(exc, ServerRejected) and not exc.transient
    )
