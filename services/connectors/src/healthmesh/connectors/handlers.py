"""Import requests: parse the uploaded file and publish its raw batches, recording progress.

Progress is written only after the broker acknowledged each batch, so `batches_published`
never counts a batch that could be lost.
"""

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from faststream.kafka import KafkaBroker

from healthmesh.common.events import ImportRequested, RawPayloadReceived, dump
from healthmesh.common.ids import content_hash, raw_event_id
from healthmesh.common.logging import get_logger
from healthmesh.common.topics import Topics
from healthmesh.connectors import db
from healthmesh.connectors.importers.csv_file import UnreadableFile, read_batches
from healthmesh.connectors.settings import Settings

log = get_logger(__name__)


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
        if request.kind != "csv" or request.mapping is None:
            await db.finish_import(
                self._pool,
                request.import_id,
                "failed",
                [{"where": "file", "reason": f"no importer for kind {request.kind!r} yet"}],
            )
            return
        try:
            for batch in read_batches(
                path,
                request.mapping,
                self._settings.import_batch_rows,
                self._settings.import_batch_bytes,
            ):
                payload = {"mapping": dump(request.mapping), "rows": batch.rows}
                envelope = RawPayloadReceived(
                    id=raw_event_id("csv", request.user_id, "rows", content_hash(payload)),
                    user_id=request.user_id,
                    source="csv",
                    resource="rows",
                    fetched_at=datetime.now(UTC),
                    import_id=request.import_id,
                    payload=payload,
                )
                await self._broker.publish(
                    dump(envelope), topic=self._topics.raw("csv"), key=str(request.user_id).encode()
                )
                await db.record_progress(
                    self._pool, request.import_id, batch.bytes_read, len(batch.rows)
                )
        except UnreadableFile as exc:
            log.info("import stopped at an unreadable place", where=exc.where)
            await db.finish_import(
                self._pool,
                request.import_id,
                "failed",
                [{"where": exc.where, "reason": exc.reason}],
            )
            return
        await db.finish_import(self._pool, request.import_id, "parsed", [])
