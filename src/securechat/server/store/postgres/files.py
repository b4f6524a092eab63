"""File metadata in PostgreSQL (the chunk bytes live in blobs on disk)."""

from __future__ import annotations

from typing import Any

from securechat.server.store.postgres.base import PostgresBase
from securechat.server.store.records import FileRecord


class PostgresFiles(PostgresBase):
    _FILE_COLUMNS = "file_id, owner, size, recipients, fetched_by, next_index, complete, created_at"

    async def create_file(self, record: FileRecord) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO files VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                record.file_id,
                record.owner,
                record.size,
                sorted(record.recipients),
                sorted(record.fetched_by),
                record.next_index,
                record.complete,
                record.created_at,
            )

    async def get_file(self, file_id: str) -> FileRecord | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE file_id = $1",
                file_id,
            )
        return _file_record(row) if row else None

    async def set_file_progress(self, file_id: str, next_index: int, complete: bool) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE files SET next_index = $2, complete = $3 WHERE file_id = $1",
                file_id,
                next_index,
                complete,
            )

    async def mark_file_fetched(self, file_id: str, username: str) -> FileRecord | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "UPDATE files SET fetched_by ="
                " array(SELECT DISTINCT unnest(fetched_by || $2::text))"
                " WHERE file_id = $1 RETURNING file_id, owner, size, recipients, fetched_by,"
                " next_index, complete, created_at",
                file_id,
                username,
            )
        return _file_record(row) if row else None

    async def delete_file(self, file_id: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM files WHERE file_id = $1", file_id)

    async def files_of(self, username: str) -> list[FileRecord]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE owner = $1",
                username,
            )
        return [_file_record(row) for row in rows]

    async def expired_files(self, before: float) -> list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT file_id FROM files WHERE created_at < $1", before)
        return [row[0] for row in rows]

    async def storage_used(self, username: str) -> tuple[int, int]:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE owner = $1", username
            )
        return int(row[0]), int(row[1])


def _file_record(row: Any) -> FileRecord:
    return FileRecord(
        file_id=row["file_id"],
        owner=row["owner"],
        size=int(row["size"]),
        recipients=frozenset(row["recipients"]),
        fetched_by=frozenset(row["fetched_by"]),
        next_index=int(row["next_index"]),
        complete=bool(row["complete"]),
        created_at=float(row["created_at"]),
    )
