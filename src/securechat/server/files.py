"""Encrypted file blobs: reserved, uploaded chunk by chunk, fetched by the named recipients.

The relay sees only ciphertext chunks and their count; the key, name and type
travel inside the end-to-end session. Chunks are files under
`<data dir>/blobs/<file id>/<index>`, written through a temporary name and
renamed, so a crash leaves whole chunks only and an upload resumes from the
first missing one. Memory stays at one chunk per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from securechat.errors import ProtocolError, StorageFullError
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import FILE_CHUNK_BYTES, MAX_FILE_PLAINTEXT_BYTES
from securechat.server.store import FileRecord, Store

log = logging.getLogger("securechat.files")

CHUNK_OVERHEAD = 16
"""The AEAD tag each chunk adds; the relay's bound allows for it and nothing more."""

MAX_FILE_CIPHERTEXT = MAX_FILE_PLAINTEXT_BYTES + CHUNK_OVERHEAD * (
    MAX_FILE_PLAINTEXT_BYTES // FILE_CHUNK_BYTES + 1
)


class FileService:
    def __init__(
        self,
        store: Store,
        root: Path,
        *,
        quota_bytes: int,
        ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.root = root
        self.quota_bytes = quota_bytes
        self.ttl = ttl
        self.clock = clock
        self._uploads: dict[str, tuple[int, int]] = {}
        """Upload progress (next index, bytes received) of incomplete files, from the disk."""
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def begin(self, owner: str, frame: F.FileBegin) -> F.FileReady:
        if frame.size > MAX_FILE_CIPHERTEXT:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"files are limited to {MAX_FILE_PLAINTEXT_BYTES // 1_000_000} MB",
            )
        used = await self.store.storage_used(owner)
        if used + frame.size > self.quota_bytes:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"your relay storage quota ({self.quota_bytes // 1_000_000} MB) is used up; "
                "wait for recipients to fetch your files or for them to expire",
            )
        file_id = secrets.token_urlsafe(24)
        record = FileRecord(
            file_id=file_id,
            owner=owner,
            size=frame.size,
            recipients=frozenset(frame.recipients) - {owner},
            fetched_by=frozenset(),
            next_index=0,
            complete=frame.size == 0,
            created_at=self.clock(),
        )
        await self.store.create_file(record)
        self._dir(file_id).mkdir(mode=0o700)
        self._uploads[file_id] = (0, 0)
        return self._ready(frame.rid, record)

    async def chunk(self, owner: str, frame: F.FileChunk) -> F.FileReady:
        record = await self._get(frame.file_id, owner, owner_only=True)
        if record.complete:
            raise ProtocolError(ErrorCode.CONFLICT, "that upload is already complete")
        next_index, received = self._progress(record)
        if frame.index != next_index:
            raise ProtocolError(
                ErrorCode.CONFLICT, f"expected chunk {next_index}, got {frame.index}"
            )
        if received + len(frame.data) > record.size:
            raise ProtocolError(ErrorCode.TOO_LARGE, "more data than the size declared")
        if not frame.data:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "a file chunk cannot be empty")
        # A 64 KiB write to the page cache is quicker than a hop to a thread.
        self._write_chunk(frame.file_id, frame.index, frame.data)
        received += len(frame.data)
        complete = received == record.size
        self._uploads[frame.file_id] = (frame.index + 1, received)
        if complete:
            # The chunk files are the progress record; the store learns only the end.
            await self.store.set_file_progress(frame.file_id, frame.index + 1, True)
            del self._uploads[frame.file_id]
        return F.FileReady(
            rid=frame.rid,
            file_id=frame.file_id,
            next_index=frame.index + 1,
            size=record.size,
            complete=complete,
        )

    async def status(self, user: str, frame: F.FileStatus) -> F.FileReady:
        return self._ready(frame.rid, await self._get(frame.file_id, user))

    async def get(self, user: str, frame: F.FileGet) -> F.FileData:
        record = await self._get(frame.file_id, user)
        if not record.complete:
            raise ProtocolError(ErrorCode.CONFLICT, "the sender has not finished uploading")
        if frame.index >= max(record.next_index, 1):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"the file has no chunk {frame.index}")
        data = self._read_chunk(frame.file_id, frame.index)
        return F.FileData(
            rid=frame.rid,
            file_id=frame.file_id,
            index=frame.index,
            data=data,
            last=frame.index + 1 >= record.next_index,
        )

    async def done(self, user: str, frame: F.FileDone) -> None:
        """Frees the blob once every recipient has it."""
        record = await self._get(frame.file_id, user)
        if user == record.owner:
            return
        updated = await self.store.mark_file_fetched(frame.file_id, user)
        if updated is not None and updated.recipients <= updated.fetched_by:
            await self.delete(frame.file_id)

    async def delete(self, file_id: str) -> None:
        await self.store.delete_file(file_id)
        self._uploads.pop(file_id, None)
        await asyncio.to_thread(shutil.rmtree, self._dir(file_id), True)

    async def delete_all_of(self, owner: str) -> None:
        for record in await self.store.files_of(owner):
            await self.delete(record.file_id)

    async def expire(self) -> int:
        expired = await self.store.expired_files(self.clock() - self.ttl)
        for file_id in expired:
            await self.delete(file_id)
        return len(expired)

    async def _get(self, file_id: str, user: str, owner_only: bool = False) -> FileRecord:
        record = await self.store.get_file(file_id)
        allowed = record is not None and (
            user == record.owner or (not owner_only and user in record.recipients)
        )
        if record is None or not allowed:
            # Same answer for "missing" and "not yours": ids are not an oracle.
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such file, or it is not shared with you")
        return record

    def _ready(self, rid: int, record: FileRecord) -> F.FileReady:
        next_index = record.next_index if record.complete else self._progress(record)[0]
        return F.FileReady(
            rid=rid,
            file_id=record.file_id,
            next_index=next_index,
            size=record.size,
            complete=record.complete,
        )

    def _progress(self, record: FileRecord) -> tuple[int, int]:
        """Next chunk index and bytes stored, counted from the chunk files after a restart."""
        known = self._uploads.get(record.file_id)
        if known is None:
            directory = self._dir(record.file_id)
            index = received = 0
            while (chunk := directory / str(index)).exists():
                received += chunk.stat().st_size
                index += 1
            known = self._uploads[record.file_id] = (index, received)
        return known

    def _dir(self, file_id: str) -> Path:
        return self.root / file_id

    def _write_chunk(self, file_id: str, index: int, data: bytes) -> None:
        path = self._dir(file_id) / str(index)
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageFullError(
                "the relay cannot store the file right now (disk full or read-only)"
            ) from exc

    def _read_chunk(self, file_id: str, index: int) -> bytes:
        try:
            return (self._dir(file_id) / str(index)).read_bytes()
        except FileNotFoundError:
            raise ProtocolError(ErrorCode.NOT_FOUND, "that chunk is gone") from None
