"""The importer on a real PostgreSQL and a real broker: an Apple Health export becomes raw
batches on `raw.apple_health`, each named by the hash of its payload and counted only once
acknowledged; a file broken part-way publishes and counts what came before the break.

Several batches are published while the file is read on; what must not change is what is
published (the envelope the normalizer reads, with the same ids as when every batch was
validated and dumped through pydantic) and what is counted."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest
import pytest_asyncio
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.apple_export import ArchiveLimits
from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import ImportRequested, RawPayloadReceived
from healthmesh.common.ids import content_hash, raw_event_id
from healthmesh.common.topics import Topics
from healthmesh.connectors.handlers import Importer
from healthmesh.connectors.importers.apple_health import read_batches
from healthmesh.connectors.settings import Settings
from healthmesh.devstack.testing import eventually

pytestmark = pytest.mark.integration

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'


def steps(minute: int) -> str:
    return (
        '<Record type="HKQuantityTypeIdentifierStepCount" sourceName="Watch" unit="count" '
        f'startDate="2024-03-01 08:{minute:02d}:00 +0100" '
        f'endDate="2024-03-01 08:{minute:02d}:59 +0100" value="{minute + 1}">\n'
        '  <MetadataEntry key="HKWasUserEntered" value="0"/>\n'
        "</Record>\n"
    )


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url)
    await apply_migrations(pool, "connectors", files("healthmesh.connectors") / "migrations")
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def broker(kafka_bootstrap_servers: str) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(kafka_bootstrap_servers, TracerProvider())
    await broker.start()
    yield broker
    await broker.stop()


Received = tuple[dict[str, Any], dict[str, Any]]


async def published(kafka_bootstrap_servers: str, topic: str, expected: int) -> list[Received]:
    """(headers, body) of every message on `topic`, in the order stored (one user: one
    partition), once `expected` arrived and a moment passed in which more could have."""
    received: list[Received] = []
    reader = make_broker(kafka_bootstrap_servers, TracerProvider())

    @reader.subscriber(topic, group_id=f"test-{uuid4().hex}", auto_offset_reset="earliest")
    async def _read(msg: KafkaMessage) -> None:
        received.append((dict(msg.headers), orjson.loads(msg.body)))

    async def enough() -> bool:
        return len(received) >= expected

    await reader.start()
    try:
        await eventually(enough, timeout=30, what=f"{expected} messages on {topic}")
        await asyncio.sleep(1.0)
    finally:
        await reader.stop()
    return received


async def run_import(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    database_url: str,
    kafka_bootstrap_servers: str,
    upload_dir: Path,
    export: bytes,
    batch_records: int,
) -> tuple[ImportRequested, Path]:
    path = upload_dir / "export.xml"
    path.write_bytes(export)
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=topics.prefix,
        upload_dir=upload_dir,
        import_batch_records=batch_records,
    )
    request = ImportRequested(
        import_id=uuid4(),
        user_id=uuid4(),
        kind="apple_health",
        path="export.xml",
        requested_at=datetime.now(UTC),
    )
    await Importer(pool, broker, settings).run(request)
    return request, path


async def progress(pool: asyncpg.Pool, import_id: UUID) -> dict[str, Any]:
    row = await pool.fetchrow(
        """SELECT status, bytes_total, bytes_read, records_seen, batches_published, errors
           FROM connectors.imports WHERE import_id = $1""",
        import_id,
    )
    assert row is not None
    return dict(row)


async def test_an_export_is_published_batch_by_batch_and_counted(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    database_url: str,
    kafka_bootstrap_servers: str,
    tmp_path: Path,
) -> None:
    # 1,250 records, 100 a batch: 13 batches, more than are ever awaiting their ack at once
    export = (HEADER + "".join(steps(m % 60) for m in range(1250)) + "</HealthData>\n").encode()
    request, path = await run_import(
        pool, broker, topics, database_url, kafka_bootstrap_servers, tmp_path, export, 100
    )
    messages = await published(kafka_bootstrap_servers, topics.raw("apple_health"), 13)
    # Up to MAX_IN_FLIGHT batches are published at once, so the broker may store them in another
    # order than the file's (each batch stands alone); compared in file order.
    messages.sort(key=lambda message: message[1]["payload"]["records"][0]["line"])
    expected = [b.records for b in read_batches(path, ArchiveLimits(), 100, 256 * 1024)]
    assert len(messages) == len(expected) == 13
    for (headers, body), records in zip(messages, expected, strict=True):
        assert headers["content-type"] == "application/json"
        envelope = RawPayloadReceived.model_validate(body)
        assert envelope.payload == {"records": records}
        # The id is the hash of the payload, as it always was: importing the same file again
        # (or the file imported before this code) gives the same raw events.
        assert envelope.id == raw_event_id(
            "apple_health", request.user_id, "export", content_hash({"records": records})
        )
        assert (envelope.user_id, envelope.import_id) == (request.user_id, request.import_id)
        assert (envelope.source, envelope.resource) == ("apple_health", "export")
    assert [b["payload"]["records"][0]["value"] for _, b in messages[:3]] == ["1", "41", "21"]
    assert await progress(pool, request.import_id) == {
        "status": "parsed",
        "bytes_total": len(export),
        "bytes_read": len(export),
        "records_seen": 1250,
        "batches_published": 13,
        "errors": [],
    }


async def test_a_broken_export_publishes_and_counts_what_came_before_the_break(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    database_url: str,
    kafka_bootstrap_servers: str,
    tmp_path: Path,
) -> None:
    # 10 records of 3 lines each after the 2 header lines: the broken one starts on line 33
    export = (
        HEADER
        + "".join(steps(m) for m in range(10))
        + '<Record type="HKQuantityTypeIdentifierStepC'
    ).encode()
    request, _ = await run_import(
        pool, broker, topics, database_url, kafka_bootstrap_servers, tmp_path, export, 4
    )
    messages = await published(kafka_bootstrap_servers, topics.raw("apple_health"), 3)
    messages.sort(key=lambda message: message[1]["payload"]["records"][0]["line"])  # file order
    assert [len(body["payload"]["records"]) for _, body in messages] == [4, 4, 2]
    done = await progress(pool, request.import_id)
    assert (done["status"], done["records_seen"], done["batches_published"]) == ("failed", 10, 3)
    assert [e["where"] for e in done["errors"]] == ["line 33"]
