"""File metadata in the SQLite file (the chunk bytes live in blobs on disk)."""

from __future__ import annotations

from typing import Any

from securechat.server.store.records import FileRecord
from securechat.server.store.sqlite.base import GUARD, SQLiteBase


class SQLiteFiles(SQLiteBase):
    async def create_file(self, record: FileRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.file_id,
                    record.owner,
                    record.size,
                    ",".join(sorted(record.recipients)),
                    ",".join(sorted(record.fetched_by)),
                    record.next_index,
                    int(record.complete),
                    record.created_at,
                ),
            )

    async def get_file(self, file_id: str) -> FileRecord | None:
        with GUARD:
            row = self._db.execute(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE file_id = ?",
                (file_id,),
            ).fetchone()
        return _file_record(row) if row else None

    async def set_file_progress(self, file_id: str, next_index: int, complete: bool) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE files SET next_index = ?, complete = ? WHERE file_id = ?",
                (next_index, int(complete), file_id),
            )

    async def mark_file_fetched(self, file_id: str, username: str) -> FileRecord | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE file_id = ?",
                (file_id,),
            ).fetchone()
            if row is None:
                return None
            record = _file_record(row)
            fetched = record.fetched_by | {username}
            db.execute(
                "UPDATE files SET fetched_by = ? WHERE file_id = ?",
                (",".join(sorted(fetched)), file_id),
            )
        return FileRecord(
            record.file_id,
            record.owner,
            record.size,
            record.recipients,
            frozenset(fetched),
            record.next_index,
            record.complete,
            record.created_at,
        )

    async def delete_file(self, file_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM files WHERE file_id = ?", (file_id,))

    async def files_of(self, username: str) -> list[FileRecord]:
        with GUARD:
            rows = self._db.execute(
                "SELECT file_id, owner, size, recipients, fetched_by, next_index, complete,"
                " created_at FROM files WHERE owner = ?",
                (username,),
            ).fetchall()
        return [_file_record(row) for row in rows]

    async def expired_files(self, before: float) -> list[str]:
        with GUARD:
            rows = self._db.execute(
                "SELECT file_id FROM files WHERE created_at < ?", (before,)
            ).fetchall()
        return [row[0] for row in rows]

    async def storage_used(self, username: str) -> tuple[int, int]:
        with GUARD:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE owner = ?", (username,)
            ).fetchone()
        return int(row[0]), int(row[1])


def _file_record(row: tuple[Any, ...]) -> FileRecord:
    """sqlite3 rows are untyped (`Any`): each column is converted to what the record says."""
    file_id, owner, size, recipients, fetched_by, next_index, complete, created_at = row
    return FileRecord(
        file_id=str(file_id),
        owner=str(owner),
        size=int(size),
        recipients=frozenset(filter(None, str(recipients).split(","))),
        fetched_by=frozenset(filter(None, str(fetched_by).split(","))),
        next_index=int(next_index),
        complete=bool(complete),
        created_at=float(created_at),
    )
