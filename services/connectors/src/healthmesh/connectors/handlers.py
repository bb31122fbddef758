"""Import requests: parse the uploaded file and publish its raw batches, recording progress.

Progress is written only after the broker acknowledged each batch, so `batches_published`
never counts a batch that could be lost.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from healthmesh.common.apple_export import UnsafeArchive
from healthmesh.common.events import ImportRequested, RawPayloadReceived, dump
from healthmesh.common.ids import content_hash, raw_event_id
from healthmesh.common.logging import get_logger
from healthmesh.common.topics import Topics
from healthmesh.connectors import db
from healthmesh.connectors.importers import apple_health, cronometer, csv_file, myfitnesspal
from healthmesh.connectors.importers.apple_health_xml import ExportError
from healthmesh.connectors.importers.csv_file import UnreadableFile
from healthmesh.connectors.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class FileBatch:
    """One raw batch of an uploaded file, and how far into the file it reaches."""

    resource: str
    payload: dict[str, Any]
    bytes_read: int
    records: int


class Importer:
    def __init__(self, pool: asyncpg.Pool, broker: KafkaBroker, settings: Settings) -> None:
        self._pool = pool
        self._broker = broker
        self._settings = settings
        self._topics = Topics(settings.topic_prefix)

    def _resolve(self, relative: str) -> Path:
        root = self._settings.upload_dir.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise UnreadableFile("file", "path outside the upload store")
        return path

    async def run(self, request: ImportRequested) -> None:
        try:
            path = self._resolve(request.path)
            size = path.stat().st_size
        except (OSError, UnreadableFile) as exc:
            await db.start_import(self._pool, request.import_id, request.user_id, request.kind, 0)
            await db.finish_import(
                self._pool,
                request.import_id,
                "failed",
                [{"where": "file", "reason": f"uploaded file unavailable: {type(exc).__name__}"}],
            )
            return
        await db.start_import(self._pool, request.import_id, request.user_id, request.kind, size)
        try:
            for batch in self._batches(request, path):
                envelope = RawPayloadReceived(
                    id=raw_event_id(
                        request.kind, request.user_id, batch.resource, content_hash(batch.payload)
                    ),
                    user_id=request.user_id,
                    source=request.kind,
                    resource=batch.resource,
                    fetched_at=datetime.now(UTC),
                    import_id=request.import_id,
                    payload=batch.payload,
                )
                await self._broker.publish(
                    dump(envelope),
                    topic=self._topics.raw(request.kind),
                    key=str(request.user_id).encode(),
                )
                await db.record_progress(
                    self._pool, request.import_id, batch.bytes_read, batch.records
                )
        except (UnreadableFile, ExportError, UnsafeArchive) as exc:
            where, reason = _failure(exc)
            log.info("import stopped at an unreadable place", where=where)
            await db.finish_import(
                self._pool, request.import_id, "failed", [{"where": where, "reason": reason}]
            )
            return
        await db.finish_import(self._pool, request.import_id, "parsed", [])

    def _batches(self, request: ImportRequested, path: Path) -> Iterator[FileBatch]:
        settings = self._settings
        if request.kind == "csv":
            if request.mapping is None:
                raise UnreadableFile("file", "a csv import needs a column mapping")
            mapping = dump(request.mapping)
            for rows in csv_file.read_batches(
                path, request.mapping, settings.import_batch_rows, settings.import_batch_bytes
            ):
                payload = {"mapping": mapping, "rows": rows.rows}
                yield FileBatch("rows", payload, rows.bytes_read, len(rows.rows))
        elif request.kind == "apple_health":
            for items in apple_health.read_batches(
                path,
                settings.archive_limits,
                settings.import_batch_records,
                settings.import_batch_bytes,
            ):
                payload = {"records": items.records}
                yield FileBatch(
                    apple_health.RESOURCE, payload, items.bytes_read, len(items.records)
                )
        elif request.kind in ("cronometer", "myfitnesspal"):
            days = (
                cronometer.read_batches(
                    path, settings.import_batch_rows, settings.import_batch_bytes
                )
                if request.kind == "cronometer"
                else myfitnesspal.read_batches(
                    path,
                    settings.archive_limits,
                    settings.import_batch_rows,
                    settings.import_batch_bytes,
                )
            )
            for day_batch in days:
                resource = day_batch.export.resource
                # The zone of the file's local dates: given at upload, else the user's profile's.
                days_payload: dict[str, Any] = {
                    "file": resource,
                    "timezone": request.timezone,
                    "rows": day_batch.rows,
                }
                yield FileBatch(resource, days_payload, day_batch.bytes_read, len(day_batch.rows))
        else:
            raise UnreadableFile("file", f"no importer for kind {request.kind!r} yet")


def _failure(exc: Exception) -> tuple[str, str]:
    """Where reading stopped, and why."""
    if isinstance(exc, UnreadableFile):
        return exc.where, exc.reason
    if isinstance(exc, ExportError):
        return f"line {exc.line}", exc.reason
    return "file", str(exc)
