"""Encrypted file blobs: reserved, uploaded chunk by chunk, fetched by the named recipients.

The relay sees only ciphertext chunks and their count; the key, name and type
travel inside the end-to-end session. A blob is two files under
`<data dir>/blobs/<file id>/`: `data`, the chunks appended in order, and
`index`, the end offset of each chunk (8 bytes, big endian) appended after
its bytes. A chunk counts once its index entry is whole, so after a crash an
upload resumes from the first chunk without one (a torn tail is cut off).
One file per blob rather than one per chunk: creating 382 files for 25 MB
cost more than the writes. Memory stays at one chunk per request.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from securechat.errors import ProtocolError, StorageFullError
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import FILE_CHUNK_BYTES, MAX_FILE_PLAINTEXT_BYTES
from securechat.server.store import FileRecord, FileStore

log = logging.getLogger("securechat.files")

_OFFSET_BYTES = 8
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
CACHED_DOWNLOADS = 64
"""Records and chunk offsets of the finished blobs fetched most recently, kept in memory."""

CHUNK_OVERHEAD = 16
"""The AEAD tag each chunk adds; the relay's bound allows for it and nothing more."""

MAX_FILE_CIPHERTEXT = MAX_FILE_PLAINTEXT_BYTES + CHUNK_OVERHEAD * (
    MAX_FILE_PLAINTEXT_BYTES // FILE_CHUNK_BYTES + 1
)


class _Upload(NamedTuple):
    """This node's view of an upload in progress. Owner and size never change, so the
    record is not read again for every chunk; another node's progress shows on the disk."""

    record: FileRecord
    next_index: int
    received: int


class _Download(NamedTuple):
    """A finished blob being fetched. Its record can only lose its blob (deleted here,
    which drops this entry, or on another node, which removes the bytes read next)."""

    record: FileRecord
    ends: list[int]


class FileService:
    def __init__(
        self,
        store: FileStore,
        root: Path,
        *,
        quota_bytes: int,
        quota_files: int,
        ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.root = root
        self.quota_bytes = quota_bytes
        self.quota_files = quota_files
        self.ttl = ttl
        self.clock = clock
        self._uploads: dict[str, _Upload] = {}
        self._downloads: dict[str, _Download] = {}
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in root.iterdir():
            if (directory / "0").is_file() and not (directory / "index").exists():
                try:
                    _join_chunk_files(directory)
                except OSError as exc:
                    log.warning(
                        "could not convert a stored file to the new layout (%s); "
                        "it stays unreadable until there is room and the relay restarts",
                        type(exc).__name__,
                    )

    async def begin(self, owner: str, frame: F.FileBegin) -> F.FileReady:
        if frame.size > MAX_FILE_CIPHERTEXT:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"files are limited to {MAX_FILE_PLAINTEXT_BYTES // 1_000_000} MB",
            )
        held, used = await self.store.storage_used(owner)
        limit = None
        if used + frame.size > self.quota_bytes:
            limit = f"{self.quota_bytes // 1_000_000} MB"
        elif held >= self.quota_files:
            limit = f"{self.quota_files} files"
        if limit is not None:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"your relay storage quota ({limit}) is used up; "
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
        self._uploads[file_id] = _Upload(record, 0, 0)
        return self._ready(frame.rid, record)

    async def chunk(self, owner: str, frame: F.FileChunk) -> F.FileReady:
        upload = self._uploads.get(frame.file_id)
        if upload is None or upload.record.owner != owner:
            record = await self._get(frame.file_id, owner, owner_only=True)
            if record.complete:
                raise ProtocolError(ErrorCode.CONFLICT, "that upload is already complete")
            upload = self._progress(record)
        record, next_index, received = upload
        if frame.index != next_index:
            raise ProtocolError(
                ErrorCode.CONFLICT, f"expected chunk {next_index}, got {frame.index}"
            )
        if received + len(frame.data) > record.size:
            raise ProtocolError(ErrorCode.TOO_LARGE, "more data than the size declared")
        if not frame.data:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "a file chunk cannot be empty")
        # A 64 KiB write to the page cache is quicker than a hop to a thread.
        self._append_chunk(frame.file_id, frame.data, received)
        received += len(frame.data)
        complete = received == record.size
        self._uploads[frame.file_id] = _Upload(record, frame.index + 1, received)
        if complete:
            # The blob's index is the progress record; the store learns only the end.
            await self.store.set_file_progress(frame.file_id, frame.index + 1, True)
            self._uploads.pop(frame.file_id, None)
        return F.FileReady(
            rid=frame.rid,
            file_id=frame.file_id,
            next_index=frame.index + 1,
            size=record.size,
            complete=complete,
        )

    async def status(self, user: str, frame: F.FileStatus) -> F.FileReady:
        """Read from the disk: another node may have stored chunks since this one counted."""
        self._uploads.pop(frame.file_id, None)
        return self._ready(frame.rid, await self._get(frame.file_id, user))

    async def get(self, user: str, frame: F.FileGet) -> F.FileData:
        download = self._downloads.get(frame.file_id)
        if download is not None:
            self._downloads[frame.file_id] = self._downloads.pop(frame.file_id)
        if download is None or not _may_fetch(download.record, user):
            record = await self._get(frame.file_id, user)
            if not record.complete:
                raise ProtocolError(ErrorCode.CONFLICT, "the sender has not finished uploading")
            download = self._cache_download(record)
        record = download.record
        if frame.index >= max(record.next_index, 1):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"the file has no chunk {frame.index}")
        data = self._read_chunk(frame.file_id, frame.index, download.ends)
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

    async def cancel(self, owner: str, frame: F.FileCancel) -> None:
        """The owner withdraws a file, finished or not; recipients who have not fetched it
        yet get `not_found`, as after expiry."""
        await self._get(frame.file_id, owner, owner_only=True)
        await self.delete(frame.file_id)

    async def delete(self, file_id: str) -> None:
        await self.store.delete_file(file_id)
        self._uploads.pop(file_id, None)
        self._downloads.pop(file_id, None)
        await asyncio.to_thread(shutil.rmtree, self._dir(file_id), True)

    async def delete_all_of(self, owner: str) -> None:
        for record in await self.store.files_of(owner):
            await self.delete(record.file_id)

    async def expire(self) -> int:
        expired = await self.store.expired_files(self.clock() - self.ttl)
        for file_id in expired:
            await self.delete(file_id)
        return len(expired)

    async def check_welcome(self, file_id: str, sender: str, added: Collection[str]) -> None:
        """A group Welcome sent as a file (`group_commit.welcome_file`) must be the
        sender's own finished upload, readable by every user the Commit adds."""
        record = await self._get(file_id, sender, owner_only=True)
        if not record.complete:
            raise ProtocolError(ErrorCode.CONFLICT, "the Welcome's upload is not finished")
        missing = sorted(set(added) - record.recipients)
        if missing:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"the Welcome's file is not readable by {missing[0]}"
            )

    async def _get(self, file_id: str, user: str, owner_only: bool = False) -> FileRecord:
        record = await self.store.get_file(file_id)
        allowed = record is not None and (
            user == record.owner if owner_only else _may_fetch(record, user)
        )
        if record is None or not allowed:
            # Same answer for "missing" and "not yours": ids are not an oracle.
            raise _no_such_file()
        return record

    def _ready(self, rid: int, record: FileRecord) -> F.FileReady:
        next_index = record.next_index if record.complete else self._progress(record).next_index
        return F.FileReady(
            rid=rid,
            file_id=record.file_id,
            next_index=next_index,
            size=record.size,
            complete=record.complete,
        )

    def _progress(self, record: FileRecord) -> _Upload:
        """Next chunk index and bytes stored; after a restart, read from the index file."""
        known = self._uploads.get(record.file_id)
        if known is None:
            ends = self._recover(record.file_id)
            known = _Upload(record, len(ends), ends[-1] if ends else 0)
            self._uploads[record.file_id] = known
        return known

    def _recover(self, file_id: str) -> list[int]:
        """The whole chunks on disk; a torn tail of a crashed write is cut off."""
        directory = self._dir(file_id)
        try:
            with _blob_lock(directory), open(directory / "data", "ab") as blob:
                size = blob.seek(0, os.SEEK_END)
                ends = _read_ends(directory / "index", size)
                with open(directory / "index", "ab") as index:
                    index.truncate(len(ends) * _OFFSET_BYTES)
                blob.truncate(ends[-1] if ends else 0)
        except FileNotFoundError:
            raise _no_such_file() from None
        return ends

    def _append_chunk(self, file_id: str, data: bytes, received: int) -> None:
        # Bare descriptors: on this path, per chunk, file objects cost a third of the write.
        directory = self._dir(file_id)
        try:
            with _blob_lock(directory):
                blob = os.open(directory / "data", _APPEND, 0o600)
                try:
                    if os.fstat(blob).st_size != received:
                        # Another node stored chunks meanwhile: the count here is stale.
                        self._uploads.pop(file_id, None)
                        raise ProtocolError(
                            ErrorCode.CONFLICT,
                            "the upload moved on through another connection; ask for its status",
                        )
                    _write_whole(blob, data)
                finally:
                    os.close(blob)
                # The offset goes after the bytes it covers: an entry always means a whole chunk.
                index = os.open(directory / "index", _APPEND, 0o600)
                try:
                    _write_whole(index, (received + len(data)).to_bytes(_OFFSET_BYTES, "big"))
                finally:
                    os.close(index)
        except FileNotFoundError:
            self._uploads.pop(file_id, None)
            raise _no_such_file() from None
        except OSError as exc:
            # The next attempt starts from the last whole chunk.
            self._uploads.pop(file_id, None)
            raise StorageFullError(
                "the relay cannot store the file right now (disk full or read-only)"
            ) from exc

    def _cache_download(self, record: FileRecord) -> _Download:
        download = _Download(record, _read_ends(self._dir(record.file_id) / "index"))
        if len(self._downloads) >= CACHED_DOWNLOADS:
            del self._downloads[next(iter(self._downloads))]
        self._downloads[record.file_id] = download
        return download

    def _read_chunk(self, file_id: str, index: int, ends: list[int]) -> bytes:
        if index >= len(ends):
            raise ProtocolError(ErrorCode.NOT_FOUND, "that chunk is gone")
        start = ends[index - 1] if index else 0
        try:
            with open(self._dir(file_id) / "data", "rb") as blob:
                data = os.pread(blob.fileno(), ends[index] - start, start)
        except FileNotFoundError:
            data = b""
        if len(data) != ends[index] - start:
            raise ProtocolError(ErrorCode.NOT_FOUND, "that chunk is gone")
        return data

    def _dir(self, file_id: str) -> Path:
        return self.root / file_id


def _read_ends(index: Path, size: int | None = None) -> list[int]:
    """Chunk end offsets from an index file, up to the first that is partial, goes
    backwards or points past `size` (the data file's length): those chunks are not whole."""
    try:
        raw = index.read_bytes()
    except FileNotFoundError:
        return []
    ends: list[int] = []
    for i in range(0, len(raw) - len(raw) % _OFFSET_BYTES, _OFFSET_BYTES):
        end = int.from_bytes(raw[i : i + _OFFSET_BYTES], "big")
        if end <= (ends[-1] if ends else 0) or (size is not None and end > size):
            break
        ends.append(end)
    return ends


def _write_whole(fd: int, data: bytes) -> None:
    """A short write (the disk filled up midway) fails the chunk; recovery cuts it off."""
    if os.write(fd, data) != len(data):
        raise OSError(errno.ENOSPC, "short write")


def _may_fetch(record: FileRecord, user: str) -> bool:
    return user == record.owner or user in record.recipients


@contextmanager
def _blob_lock(directory: Path) -> Iterator[None]:
    """Serialises the writers of one blob, across nodes sharing the blob directory."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _no_such_file() -> ProtocolError:
    return ProtocolError(ErrorCode.NOT_FOUND, "no such file, or it is not shared with you")


def _join_chunk_files(directory: Path) -> None:
    """Converts a blob of the earlier layout (one file per chunk, `0`, `1`, ...).

    Built under temporary names and renamed, `index` last, so a crash or a full disk
    leaves the chunk files as they were and the next start tries again.
    """
    with _blob_lock(directory):
        if (directory / "index").exists():
            return
        ends: list[int] = []
        with open(directory / "data.tmp", "wb") as blob:
            while (chunk := directory / str(len(ends))).is_file():
                blob.write(chunk.read_bytes())
                ends.append(blob.tell())
            blob.flush()
            os.fsync(blob.fileno())
        with open(directory / "index.tmp", "wb") as index:
            index.write(b"".join(e.to_bytes(_OFFSET_BYTES, "big") for e in ends))
            index.flush()
            os.fsync(index.fileno())
        os.replace(directory / "data.tmp", directory / "data")
        os.replace(directory / "index.tmp", directory / "index")
        for number in range(len(ends)):
            (directory / str(number)).unlink()
    log.info("converted a stored file to the single-file layout (%d chunks)", len(ends))
