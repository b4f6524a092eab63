"""Stored file blobs on disk: whole chunks survive a crash, the earlier layout is converted."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from securechat.errors import ProtocolError, StorageFullError
from securechat.protocol import frames as F
from securechat.server.files import FileService
from securechat.server.store import FileRecord
from securechat.server.store.sqlite import SQLiteStore

CHUNKS = [bytes([n]) * 1000 for n in range(3)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "relay.sqlite3")
    yield opened
    await opened.close()


def service(store: SQLiteStore, root: Path) -> FileService:
    return FileService(store, root, quota_bytes=10**9, quota_files=1000, ttl=3600, clock=time.time)


async def begin(files: FileService) -> str:
    ready = await files.begin("alice", F.FileBegin(rid=1, size=3000, recipients=["bob"]))
    return ready.file_id


async def upload_all(files: FileService, file_id: str, start: int = 0) -> None:
    for index in range(start, len(CHUNKS)):
        await files.chunk(
            "alice", F.FileChunk(rid=1, file_id=file_id, index=index, data=CHUNKS[index])
        )


async def fetch_all(files: FileService, file_id: str) -> list[bytes]:
    return [
        (await files.get("bob", F.FileGet(rid=1, file_id=file_id, index=i))).data
        for i in range(len(CHUNKS))
    ]


async def test_a_torn_write_is_cut_off_and_the_upload_resumes_after_it(
    store: SQLiteStore, tmp_path: Path
) -> None:
    files = service(store, tmp_path / "blobs")
    file_id = await begin(files)
    for index in range(2):
        await files.chunk(
            "alice", F.FileChunk(rid=1, file_id=file_id, index=index, data=CHUNKS[index])
        )
    # The relay dies in the middle of the third chunk: half its bytes, part of its offset.
    with open(tmp_path / "blobs" / file_id / "data", "ab") as blob:
        blob.write(CHUNKS[2][:400])
    with open(tmp_path / "blobs" / file_id / "index", "ab") as index:
        index.write(b"\x00\x00\x0b")

    restarted = service(store, tmp_path / "blobs")
    status = await restarted.status("alice", F.FileStatus(rid=1, file_id=file_id))
    assert status.next_index == 2 and not status.complete
    done = await restarted.chunk(
        "alice", F.FileChunk(rid=1, file_id=file_id, index=2, data=CHUNKS[2])
    )
    assert done.complete
    assert await fetch_all(restarted, file_id) == CHUNKS


async def test_blobs_stored_one_file_per_chunk_are_converted_at_start(
    store: SQLiteStore, tmp_path: Path
) -> None:
    root = tmp_path / "blobs"
    directory = root / "OldLayoutBlob0000000000"
    directory.mkdir(parents=True)
    for index, chunk in enumerate(CHUNKS):
        (directory / str(index)).write_bytes(chunk)
    await store.create_file(
        FileRecord(
            file_id=directory.name,
            owner="alice",
            size=3000,
            recipients=frozenset({"bob"}),
            fetched_by=frozenset(),
            next_index=3,
            complete=True,
            created_at=time.time(),
        )
    )
    files = service(store, root)
    assert sorted(p.name for p in directory.iterdir()) == ["data", "index"]
    assert await fetch_all(files, directory.name) == CHUNKS


async def test_two_nodes_sharing_the_blob_directory_continue_one_upload(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """Upload through A, then B, then A again: A's own count is stale and must not be used."""
    node_a, node_b = service(store, tmp_path / "blobs"), service(store, tmp_path / "blobs")
    file_id = await begin(node_a)
    await node_a.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=0, data=CHUNKS[0]))
    assert (await node_b.status("alice", F.FileStatus(rid=1, file_id=file_id))).next_index == 1
    await node_b.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=1, data=CHUNKS[1]))

    with pytest.raises(ProtocolError) as stale:
        await node_a.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=1, data=CHUNKS[1]))
    assert stale.value.code == "conflict"
    assert (await node_a.status("alice", F.FileStatus(rid=1, file_id=file_id))).next_index == 2
    done = await node_a.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=2, data=CHUNKS[2]))
    assert done.complete
    assert await fetch_all(node_b, file_id) == CHUNKS


async def test_an_offset_past_the_end_of_the_data_is_not_a_chunk(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """A power cut can keep an index entry and lose its bytes: the chunk is sent again."""
    files = service(store, tmp_path / "blobs")
    file_id = await begin(files)
    await files.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=0, data=CHUNKS[0]))
    with open(tmp_path / "blobs" / file_id / "index", "ab") as index:
        index.write((5000).to_bytes(8, "big"))

    restarted = service(store, tmp_path / "blobs")
    status = await restarted.status("alice", F.FileStatus(rid=1, file_id=file_id))
    assert status.next_index == 1
    await upload_all(restarted, file_id, start=1)
    assert await fetch_all(restarted, file_id) == CHUNKS


async def test_a_conversion_cut_short_is_done_again_at_the_next_start(
    store: SQLiteStore, tmp_path: Path
) -> None:
    directory = tmp_path / "blobs" / "HalfConvertedBlob000000"
    directory.mkdir(parents=True)
    for index, chunk in enumerate(CHUNKS):
        (directory / str(index)).write_bytes(chunk)
    (directory / "data.tmp").write_bytes(b"left by a crash")
    await store.create_file(
        FileRecord(directory.name, "alice", 3000, frozenset({"bob"}), frozenset(), 3, True, 0.0)
    )
    files = service(store, tmp_path / "blobs")
    assert sorted(p.name for p in directory.iterdir()) == ["data", "index"]
    assert await fetch_all(files, directory.name) == CHUNKS


async def test_the_record_is_read_once_per_transfer_not_per_chunk(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = service(store, tmp_path / "blobs")
    reads: list[str] = []
    real_get_file = store.get_file

    async def counting(file_id: str) -> FileRecord | None:
        reads.append(file_id)
        return await real_get_file(file_id)

    monkeypatch.setattr(store, "get_file", counting)
    file_id = await begin(files)
    await upload_all(files, file_id)
    assert reads == []
    assert await fetch_all(files, file_id) == CHUNKS
    assert reads == [file_id]


async def test_cached_records_still_refuse_other_users(store: SQLiteStore, tmp_path: Path) -> None:
    """Once a transfer is under way, another user is refused exactly as before."""
    files = service(store, tmp_path / "blobs")
    file_id = await begin(files)
    await files.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=0, data=CHUNKS[0]))
    with pytest.raises(ProtocolError) as foreign_chunk:
        await files.chunk("eve", F.FileChunk(rid=1, file_id=file_id, index=1, data=CHUNKS[1]))
    assert foreign_chunk.value.code == "not_found"
    await upload_all(files, file_id, start=1)
    await files.get("bob", F.FileGet(rid=1, file_id=file_id, index=0))
    with pytest.raises(ProtocolError) as foreign_get:
        await files.get("eve", F.FileGet(rid=1, file_id=file_id, index=1))
    assert foreign_get.value.code == "not_found"
    assert (await files.get("alice", F.FileGet(rid=1, file_id=file_id, index=1))).data == CHUNKS[1]


@pytest.mark.parametrize("deleted_by", ["this node", "another node"])
async def test_a_download_under_way_stops_when_the_blob_is_deleted(
    store: SQLiteStore, tmp_path: Path, deleted_by: str
) -> None:
    """Expiry, an account deletion or the last recipient's `file_done`, here or elsewhere."""
    node_a, node_b = service(store, tmp_path / "blobs"), service(store, tmp_path / "blobs")
    file_id = await begin(node_a)
    await upload_all(node_a, file_id)
    first = await node_a.get("bob", F.FileGet(rid=1, file_id=file_id, index=0))
    assert first.data == CHUNKS[0]
    await (node_a if deleted_by == "this node" else node_b).delete(file_id)
    with pytest.raises(ProtocolError) as gone:
        await node_a.get("bob", F.FileGet(rid=1, file_id=file_id, index=1))
    assert gone.value.code == "not_found"


async def test_an_upload_under_way_stops_when_another_node_deletes_it(
    store: SQLiteStore, tmp_path: Path
) -> None:
    node_a, node_b = service(store, tmp_path / "blobs"), service(store, tmp_path / "blobs")
    file_id = await begin(node_a)
    await node_a.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=0, data=CHUNKS[0]))
    await node_b.delete(file_id)
    with pytest.raises(ProtocolError) as gone:
        await node_a.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=1, data=CHUNKS[1]))
    assert gone.value.code == "not_found"
    assert not (tmp_path / "blobs" / file_id).exists()


@pytest.mark.parametrize("short", ["data", "index"])
async def test_a_short_write_fails_the_chunk_and_is_cut_off(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    """The disk fills up midway through a chunk or its offset: the sender hears that the
    relay cannot store it, and the upload resumes cleanly from the last whole chunk."""
    files = service(store, tmp_path / "blobs")
    file_id = await begin(files)
    await files.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=0, data=CHUNKS[0]))
    real_write = os.write
    calls: list[int] = []

    def filling_up(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == (1 if short == "data" else 2):
            return real_write(fd, data[: len(data) // 2])
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", filling_up)
    with pytest.raises(StorageFullError):
        await files.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=1, data=CHUNKS[1]))
    monkeypatch.setattr(os, "write", real_write)

    status = await files.status("alice", F.FileStatus(rid=1, file_id=file_id))
    assert status.next_index == 1
    await upload_all(files, file_id, start=1)
    assert await fetch_all(files, file_id) == CHUNKS


@pytest.mark.parametrize("finished", [False, True])
async def test_the_owner_can_withdraw_a_file(
    store: SQLiteStore, tmp_path: Path, finished: bool
) -> None:
    """`file_cancel` frees a file's space, finished or not; nobody else can cancel it."""
    files = service(store, tmp_path / "blobs")
    file_id = await begin(files)
    if finished:
        await upload_all(files, file_id)
    else:
        await files.chunk("alice", F.FileChunk(rid=1, file_id=file_id, index=0, data=CHUNKS[0]))
    assert await store.storage_used("alice") == (1, 3000)
    for user in ("bob", "eve"):
        with pytest.raises(ProtocolError) as refused:
            await files.cancel(user, F.FileCancel(rid=1, file_id=file_id))
        assert refused.value.code == "not_found"
    if finished:
        await files.get("bob", F.FileGet(rid=1, file_id=file_id, index=0))
    await files.cancel("alice", F.FileCancel(rid=1, file_id=file_id))
    assert await store.get_file(file_id) is None
    assert await store.storage_used("alice") == (0, 0)
    assert not (tmp_path / "blobs" / file_id).exists()
    with pytest.raises(ProtocolError) as gone:
        await files.get("bob", F.FileGet(rid=1, file_id=file_id, index=1))
    assert gone.value.code == "not_found"


async def test_quota_counts_bytes_and_files(store: SQLiteStore, tmp_path: Path) -> None:
    """Empty files use no bytes, so the number of files held is capped too."""
    files = FileService(
        store, tmp_path / "blobs", quota_bytes=5_000_000, quota_files=3, ttl=3600, clock=time.time
    )

    async def begin_sized(size: int) -> str:
        ready = await files.begin("alice", F.FileBegin(rid=1, size=size, recipients=["bob"]))
        return ready.file_id

    big = await begin_sized(3_000_000)
    with pytest.raises(ProtocolError) as over_bytes:
        await begin_sized(3_000_000)
    assert (over_bytes.value.code, "(5 MB)" in over_bytes.value.message) == ("too_large", True)
    await begin_sized(0)
    empty = await begin_sized(0)
    with pytest.raises(ProtocolError) as over_files:
        await begin_sized(0)
    assert (over_files.value.code, "(3 files)" in over_files.value.message) == ("too_large", True)
    assert len(list((tmp_path / "blobs").iterdir())) == 3
    await files.cancel("alice", F.FileCancel(rid=1, file_id=empty))
    await files.cancel("alice", F.FileCancel(rid=1, file_id=big))
    await begin_sized(3_000_000)
    await begin_sized(0)
    assert await store.storage_used("alice") == (3, 3_000_000)
