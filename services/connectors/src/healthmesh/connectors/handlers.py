"""Import requests: parse the uploaded file and publish its raw batches, recording progress.

Progress is written only after the broker acknowledged each batch, so `batches_published`
never counts a batch that could be lost. The file is read in a thread of its own while the
event loop publishes the batches before it (up to `MAX_IN_FLIGHT` awaiting their ack), and
each batch's JSON is written once: its hash names the raw event, and it goes into the envelope
as it is.
"""

import asyncio
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from faststream.kafka import KafkaBroker

from healthmesh.common.apple_export import UnsafeArchive
from healthmesh.common.events import ImportRequested, RawPayloadReceived, dump
from healthmesh.common.ids import canonical_hash, canonical_json, raw_event_id
from healthmesh.common.logging import get_logger
from healthmesh.common.topics import Topics
from healthmesh.connectors import db
from healthmesh.connectors.importers import apple_health, cronometer, csv_file, myfitnesspal
from healthmesh.connectors.importers.apple_health_xml import ExportError
from healthmesh.connectors.importers.csv_file import UnreadableFile
from healthmesh.connectors.settings import Settings

log = get_logger(__name__)

MAX_IN_FLIGHT = 4
"""Batches published and not yet acknowledged while the file is read on."""
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class FileBatch:
    """One raw batch of an uploaded file, and how far into the file it reaches."""

    resource: str
    payload: dict[str, Any]
    bytes_read: int
    records: int
    payload_json: bytes | None = None
    """`canonical_json(payload)`, when the reader has written it already."""


@dataclass(frozen=True)
class RawBatch:
    """A batch as published: the raw envelope's JSON, and what its ack adds to the progress."""

    body: bytes
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
            await self._publish_all(request, path)
        except (UnreadableFile, ExportError, UnsafeArchive) as exc:
            where, reason = _failure(exc)
            log.info("import stopped at an unreadable place", where=where)
            await db.finish_import(
                self._pool, request.import_id, "failed", [{"where": where, "reason": reason}]
            )
            return
        await db.finish_import(self._pool, request.import_id, "parsed", [])

    async def _publish_all(self, request: ImportRequested, path: Path) -> None:
        """Publish every batch and record each one's progress after its ack, in file order.
        A file unreadable from some place raises once the batches before it are counted.

        The reading runs in one thread of its own (lxml keeps a parse to the thread that
        began it): the event loop stays free to publish, and the broker stores a batch while
        the next is read."""
        loop = asyncio.get_running_loop()
        raw = self._raw_batches(request, path)
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-reader")
        unacked: deque[tuple[asyncio.Task[Any], RawBatch]] = deque()
        try:
            try:
                while (batch := await loop.run_in_executor(reader, next, raw, None)) is not None:
                    unacked.append((asyncio.create_task(self._publish(request, batch)), batch))
                    if len(unacked) > MAX_IN_FLIGHT:
                        await self._acknowledged(request, *unacked.popleft())
            except (UnreadableFile, ExportError, UnsafeArchive):
                while unacked:  # what was read before the unreadable place is counted
                    await self._acknowledged(request, *unacked.popleft())
                raise
            while unacked:
                await self._acknowledged(request, *unacked.popleft())
        finally:
            for task, _ in unacked:  # only left when a publish failed or we were cancelled
                task.cancel()
            await asyncio.gather(*(task for task, _ in unacked), return_exceptions=True)
            reader.submit(raw.close)  # after a read still running: one thing at a time there
            reader.shutdown(wait=False)

    async def _publish(self, request: ImportRequested, batch: RawBatch) -> None:
        await self._broker.publish(
            batch.body,
            topic=self._topics.raw(request.kind),
            key=str(request.user_id).encode(),
            headers=_JSON,
        )

    async def _acknowledged(
        self, request: ImportRequested, published: "asyncio.Task[Any]", batch: RawBatch
    ) -> None:
        await published
        await db.record_progress(self._pool, request.import_id, batch.bytes_read, batch.records)

    def _raw_batches(self, request: ImportRequested, path: Path) -> Generator[RawBatch, None, None]:
        """Each batch as its raw envelope's JSON (run in the reader thread)."""
        for batch in self._batches(request, path):
            payload_json = batch.payload_json or canonical_json(batch.payload)
            envelope = RawPayloadReceived(
                id=raw_event_id(
                    request.kind, request.user_id, batch.resource, canonical_hash(payload_json)
                ),
                user_id=request.user_id,
                source=request.kind,
                resource=batch.resource,
                fetched_at=datetime.now(UTC),
                import_id=request.import_id,
                payload=None,
            )
            yield RawBatch(raw_body(envelope, payload_json), batch.bytes_read, batch.records)

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
                    apple_health.RESOURCE,
                    payload,
                    items.bytes_read,
                    len(items.records),
                    items.payload_json(),
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
            weight = _weight_unit(request, path, settings) if request.kind == "myfitnesspal" else {}
            for day_batch in days:
                resource = day_batch.export.resource
                # The zone of the file's local dates: given at upload, else the user's profile's.
                days_payload: dict[str, Any] = {
                    "file": resource,
                    "timezone": request.timezone,
                    "rows": day_batch.rows,
                }
                if resource == "measurement":
                    days_payload.update(weight)
                yield FileBatch(resource, days_payload, day_batch.bytes_read, len(day_batch.rows))
        else:
            raise UnreadableFile("file", f"no importer for kind {request.kind!r} yet")


def _weight_unit(request: ImportRequested, path: Path, settings: Settings) -> dict[str, Any]:
    """What a MyFitnessPal measurement payload adds: the unit of its `Weight` column, which the
    file does not name [MFP], as given at upload, else inferred from the zip's Exercise-Summary
    (flagged as such by the mapper); nothing when neither says (the mapper assumes kg)."""
    if request.weight_unit is not None:
        return {"weight_unit": request.weight_unit, "weight_unit_inferred": False}
    unit = myfitnesspal.inferred_weight_unit(path, settings.archive_limits)
    return {} if unit is None else {"weight_unit": unit, "weight_unit_inferred": True}


def raw_body(envelope: RawPayloadReceived, payload_json: bytes) -> bytes:
    """`envelope` as JSON with `payload_json` written in as its payload. Validating a payload
    of thousands of items as a pydantic JsonValue and dumping it again cost more than reading
    them from the file; the reader made it of JSON values only."""
    return orjson.dumps({**dump(envelope), "payload": orjson.Fragment(payload_json)})


def _failure(exc: Exception) -> tuple[str, str]:
    """Where reading stopped, and why."""
    if isinstance(exc, UnreadableFile):
        return exc.where, exc.reason
    if isinstance(exc, ExportError):
        return f"line {exc.line}", exc.reason
    return "file", str(exc)
