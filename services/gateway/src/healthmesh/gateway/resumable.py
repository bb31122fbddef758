"""Resumable uploads, in the manner of tus: an upload is declared with its length, then appended
chunk by chunk at the offset the server reports, so a phone whose connection drops continues where
the bytes stopped instead of starting over.

The row in `gateway.uploads` is the truth: `received` counts bytes written *and* fsync'd. The file
may hold more (a tail a crashed request wrote but never committed); the next chunk cuts it off. A
chunk is written under the upload's PostgreSQL advisory lock, held for the whole chunk on a
connection of a pool apart from the API's: one writer per upload across every gateway replica,
released by PostgreSQL itself if the process dies.
"""

import asyncio
import contextlib
import errno
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import asyncpg
from fastapi import Request
from starlette.requests import ClientDisconnect

from healthmesh.common.http import ApiError
from healthmesh.common.logging import get_logger
from healthmesh.gateway import db

CHUNK_TYPE = "application/offset+octet-stream"
FOLDER = ".resumable"
"""Under the upload store: one file per upload, named by its id."""
WRITER_WAIT_S = 5.0
"""How long a request waits for a free writer connection before answering 503."""
SWEEP_BATCH = 500

log = get_logger(__name__)


@dataclass(frozen=True)
class Upload:
    id: UUID
    filename: str
    length: int
    offset: int
    expires_at: datetime

    @classmethod
    def of(cls, row: Any) -> "Upload":
        return cls(row["id"], row["filename"], row["length"], row["received"], row["expires_at"])

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    def view(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "filename": self.filename,
            "length": self.length,
            "offset": self.offset,
            "complete": self.complete,
            "expires_at": self.expires_at.isoformat(),
        }

    def headers(self) -> dict[str, str]:
        return {
            "Upload-Offset": str(self.offset),
            "Upload-Length": str(self.length),
            "Cache-Control": "no-store",
        }


def upload_path(upload_dir: Path, upload_id: UUID) -> Path:
    return upload_dir / FOLDER / str(upload_id)


def no_such_upload() -> ApiError:
    """Another user's, an expired, a removed or a made-up upload: the same 404 for each."""
    return ApiError(404, "not_found", "no such upload")


def parse_id(text: str) -> UUID:
    """An upload id from the client; anything that is not one names no upload of theirs."""
    try:
        return UUID(text)
    except ValueError:
        raise no_such_upload() from None


async def find(conn: asyncpg.Connection | asyncpg.Pool, upload_id: UUID, user_id: UUID) -> Upload:
    """The caller's live upload; another user's, an expired or a removed one is 404 alike."""
    row = await db.get_upload(conn, upload_id, user_id)
    if row is None:
        raise no_such_upload()
    return Upload.of(row)


def create_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=False)


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def _lock_key(upload_id: UUID) -> int:
    return int.from_bytes(upload_id.bytes[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def exclusive(writers: asyncpg.Pool, upload_id: UUID) -> AsyncIterator[asyncpg.Connection]:
    """Hold the upload's advisory lock on a writer connection, which the block also uses for its
    queries. 423 if another request holds it; 503 if every writer connection is busy."""
    try:
        conn = await writers.acquire(timeout=WRITER_WAIT_S)
    except TimeoutError:
        raise ApiError(503, "busy", "too many uploads are being received; retry shortly") from None
    key = _lock_key(upload_id)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            raise ApiError(
                423, "upload_locked", "another request is writing this upload; retry after it"
            )
        try:
            yield conn
        finally:
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await writers.release(conn)  # the pool's reset also drops any lock left behind


def _open_at(path: Path, offset: int) -> BinaryIO:
    """The upload's file, positioned at `offset` and cut there (an uncommitted tail goes)."""
    try:
        out = path.open("r+b")
    except FileNotFoundError:
        raise ApiError(410, "upload_lost", "this upload's bytes are gone; start again") from None
    if os.fstat(out.fileno()).st_size < offset:
        out.close()
        raise ApiError(410, "upload_lost", "this upload's bytes are gone; start again")
    out.truncate(offset)
    out.seek(offset)
    return out


async def receive_chunk(
    request: Request,
    conn: asyncpg.Connection,
    upload: Upload,
    user_id: UUID,
    *,
    path: Path,
    end: int,
    checkpoint_bytes: int,
    expiry_s: float,
) -> Upload:
    """Append the request body to the upload from its offset, up to byte `end`, streaming it to
    disk. What arrived is committed every `checkpoint_bytes`, at the end, and also when the client
    drops the connection mid-chunk, so the next HEAD says where to continue. Call it holding the
    upload's lock on `conn`."""
    out = _open_at(path, upload.offset)
    written = committed = upload.offset
    try:
        try:
            async for data in request.stream():
                if conn.is_closed():  # the lock went with the connection: stop writing at once
                    raise ApiError(503, "unavailable", "lost the database; retry the chunk")
                if written + len(data) > end:
                    raise ApiError(413, "payload_too_large", "the body is longer than declared")
                out.write(data)
                written += len(data)
                if written - committed >= checkpoint_bytes:
                    upload = await _commit(conn, out, upload.id, user_id, written, expiry_s)
                    committed = written
        except ClientDisconnect:
            pass  # keep what arrived: the client continues from the offset HEAD reports
        if written > committed:
            upload = await _commit(conn, out, upload.id, user_id, written, expiry_s)
    finally:
        out.close()
    return upload


async def _commit(
    conn: asyncpg.Connection,
    out: BinaryIO,
    upload_id: UUID,
    user_id: UUID,
    offset: int,
    expiry_s: float,
) -> Upload:
    """Bytes on disk for good first, then the offset that promises them."""
    out.flush()
    await asyncio.to_thread(os.fsync, out.fileno())
    row = await db.record_upload_offset(conn, upload_id, user_id, offset, expiry_s)
    if row is None:  # not while we hold the lock; refuse rather than write on for nobody
        raise no_such_upload()
    return Upload.of(row)


async def stage_for_import(
    pool: asyncpg.Pool, user_id: UUID, upload_id_text: str, upload_dir: Path, target: Path
) -> Upload:
    """Link the caller's completed upload to `target`, where the import checks and queues it as it
    does an uploaded file part. The upload stays until the import's transaction takes it
    (`db.take_completed_upload`): a refused import can be retried without uploading again."""
    upload = await find(pool, parse_id(upload_id_text), user_id)
    if not upload.complete:
        raise ApiError(
            409,
            "upload_incomplete",
            f"the upload has {upload.offset} of its {upload.length} bytes; finish it first",
        )
    source = upload_path(upload_dir, upload.id)
    try:
        await asyncio.to_thread(_link_or_copy, source, target)
    except FileNotFoundError:
        raise no_such_upload() from None
    return upload


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs nothing whatever the size; a store without hard links gets a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.EOPNOTSUPP):
            raise
        shutil.copyfile(source, target)


async def sweep(
    pool: asyncpg.Pool, writers: asyncpg.Pool, upload_dir: Path, expiry_s: float
) -> int:
    """Remove expired uploads, skipping one a request is writing right now (its lock is held),
    then files whose row is gone and which nobody touched for `expiry_s` (left by a crash between
    a row's removal and its file's). Returns how many uploads expired."""
    removed = 0
    for upload_id in await db.expired_uploads(pool, SWEEP_BATCH):
        try:
            async with exclusive(writers, upload_id) as conn:
                if await db.delete_expired_upload(conn, upload_id):
                    remove_file(upload_path(upload_dir, upload_id))
                    removed += 1
        except ApiError:
            continue  # being written (or no writer free): its turn comes at the next sweep
    for path in _untouched_files(upload_dir / FOLDER, time.time() - expiry_s):
        try:
            orphan = not await db.upload_exists(pool, UUID(path.name))
        except ValueError:
            continue
        if orphan:
            remove_file(path)
    return removed


def _untouched_files(folder: Path, before: float) -> list[Path]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                if entry.stat().st_mtime < before:
                    found.append(Path(entry.path))
    return found


async def sweep_forever(
    pool: asyncpg.Pool, writers: asyncpg.Pool, upload_dir: Path, expiry_s: float, interval_s: float
) -> None:
    while True:
        try:
            await sweep(pool, writers, upload_dir, expiry_s)
        except Exception:
            log.exception("removing expired uploads failed; trying again later")
        await asyncio.sleep(interval_s)
