"""The normalizer as it runs: real PostgreSQL, real broker, its own app and subscriber."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI
from faststream.kafka import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import make_broker
from healthmesh.common.events import ConnectionChanged, MetricChanges, RawPayloadReceived, dump
from healthmesh.common.topics import Topics
from healthmesh.devstack.testing import collect, eventually
from healthmesh.normalizer.app import create_app
from healthmesh.normalizer.settings import Settings

pytestmark = pytest.mark.integration

MAPPING = {"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}


def csv_envelope(
    user: uuid.UUID, rows: list[tuple[str, str]], import_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return dump(
        RawPayloadReceived(
            id=uuid.uuid4(),
            user_id=user,
            source="csv",
            resource="rows",
            fetched_at=datetime.now(UTC),
            import_id=import_id,
            payload={
                "mapping": MAPPING,
                "rows": [
                    {"row": i + 2, "values": {"Date": d, "Steps": v}}
                    for i, (d, v) in enumerate(rows)
                ],
            },
        )
    )


@pytest_asyncio.fixture
async def normalizer(
    database_url: str, kafka_bootstrap_servers: str, topics: Topics
) -> AsyncIterator[FastAPI]:
    app = create_app(
        Settings(
            database_url=database_url,
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            topic_prefix=topics.prefix,
            environment="test",
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def publish(kafka_bootstrap_servers: str) -> AsyncIterator[Any]:
    broker = make_broker(kafka_bootstrap_servers, TracerProvider())
    await broker.start()

    async def send(topic: str, body: Any) -> None:
        await broker.publish(body, topic=topic, key=b"k")

    yield send
    await broker.stop()


async def count_samples(database_url: str, user: uuid.UUID) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM normalizer.samples WHERE user_id = $1", user)
        )
    finally:
        await conn.close()


async def test_samples_are_stored_and_announced_once_even_when_replayed(
    normalizer: FastAPI,
    publish: Any,
    topics: Topics,
    database_url: str,
    kafka_bootstrap_servers: str,
) -> None:
    user = uuid.uuid4()
    body = csv_envelope(user, [("2024-03-01", "100"), ("2024-03-02", "200")])
    async with collect(kafka_bootstrap_servers, topics.metrics_unified) as events:
        await publish(topics.raw("csv"), body)
        await publish(topics.raw("csv"), body)  # a redelivery: same envelope again
        await eventually(lambda: _has(changes(events), 2), what="two metric changes")
        await asyncio.sleep(2)
        assert sorted(c["sample"]["value"] for c in changes(events)) == [100, 200]
        assert {c["event"] for c in changes(events)} == {"created"}
        assert {e["schema"] for e in events} == {"metric_batch.v2"}
        assert {e["user_id"] for e in events} == {str(user)}
        # A corrected value is an update with the next revision, not a second sample.
        await publish(topics.raw("csv"), csv_envelope(user, [("2024-03-02", "250")]))
        await eventually(lambda: _has(changes(events), 3), what="the update")
    update = changes(events)[2]
    assert (update["event"], update["revision"], update["sample"]["value"]) == ("updated", 2, 250)
    assert await count_samples(database_url, user) == 2


async def test_an_unreadable_message_goes_to_the_dlq_and_the_rest_goes_through(
    normalizer: FastAPI,
    publish: Any,
    topics: Topics,
    database_url: str,
    kafka_bootstrap_servers: str,
) -> None:
    user = uuid.uuid4()
    async with collect(kafka_bootstrap_servers, topics.dlq("raw.csv")) as dead:
        await publish(topics.raw("csv"), b"{not json")
        await publish(topics.raw("csv"), {"schema": "raw.v1", "id": "nope"})
        await publish(topics.raw("csv"), csv_envelope(user, [("2024-03-01", "5")]))
        await eventually(lambda: _has(dead, 2), what="two dead letters")
        await eventually(lambda: _count_is(database_url, user, 1), what="the good sample")
    reasons = sorted(d["reason"] for d in dead)
    assert all(r.startswith("not a raw.v1 envelope") for r in reasons)
    assert dead[0]["original"] in ("{not json", '{"schema":"raw.v1","id":"nope"}')


async def test_a_failed_transaction_rewinds_and_the_batch_comes_back(
    normalizer: FastAPI,
    publish: Any,
    topics: Topics,
    database_url: str,
) -> None:
    """Offsets are committed after the database commit: while the table is unreachable the
    message is not lost, and once it is back the message is processed."""
    user = uuid.uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ALTER TABLE normalizer.samples RENAME TO samples_away")
        await publish(topics.raw("csv"), csv_envelope(user, [("2024-03-01", "7")]))
        await asyncio.sleep(3)
        assert await conn.fetchval("SELECT count(*) FROM normalizer.samples_away") == 0
        await conn.execute("ALTER TABLE normalizer.samples_away RENAME TO samples")
    finally:
        await conn.close()
    await eventually(lambda: _count_is(database_url, user, 1), what="the retried sample")


async def test_import_batches_are_counted_once(
    normalizer: FastAPI,
    publish: Any,
    topics: Topics,
    database_url: str,
) -> None:
    user, import_id = uuid.uuid4(), uuid.uuid4()
    body = csv_envelope(user, [("2024-03-01", "1"), ("2024-03-02", "x")], import_id)
    await publish(topics.raw("csv"), body)
    await publish(topics.raw("csv"), body)
    await eventually(lambda: _count_is(database_url, user, 1), what="the sample")
    await asyncio.sleep(1)
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT * FROM normalizer.import_progress_v1 WHERE import_id = $1", import_id
        )
    finally:
        await conn.close()
    assert (row["batches_committed"], row["records_imported"], row["records_rejected"]) == (1, 1, 1)
    assert orjson.loads(row["errors"])[0]["where"] == "row 3"


def changes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample changes carried by metrics.unified messages, in order, each with its sample."""
    return [
        change.model_dump(mode="json")
        for event in events
        for change in MetricChanges.model_validate(event).flat()
    ]


async def _has(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def _count_is(database_url: str, user: uuid.UUID, n: int) -> bool:
    return await count_samples(database_url, user) == n


async def test_the_trace_continues_from_the_raw_message_to_metrics_unified(
    normalizer: FastAPI, topics: Topics, kafka_bootstrap_servers: str
) -> None:
    """Trace context travels in Kafka headers, through the outbox, to the published event."""
    provider = TracerProvider()
    seen: list[dict[str, str]] = []
    listener = make_broker(kafka_bootstrap_servers, provider)

    @listener.subscriber(
        topics.metrics_unified, group_id=f"t-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    async def _record(msg: KafkaMessage) -> None:
        seen.append(dict(msg.headers))

    await listener.start()
    try:
        with provider.get_tracer("test").start_as_current_span("upload") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            await listener.publish(
                csv_envelope(uuid.uuid4(), [("2024-03-01", "1")]), topic=topics.raw("csv"), key=b"k"
            )
        await eventually(lambda: _has(seen, 1), what="the metric event")
    finally:
        await listener.stop()
    assert seen[0]["traceparent"].split("-")[1] == trace_id


async def test_disconnecting_with_delete_data_removes_that_sources_samples(
    normalizer: FastAPI,
    publish: Any,
    topics: Topics,
    database_url: str,
    kafka_bootstrap_servers: str,
) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        for owner, source in ((user, "oura"), (user, "csv"), (other, "oura")):
            await conn.execute(
                """INSERT INTO normalizer.samples (user_id, metric, source, start_at, end_at, id,
                       value, unit, utc_offset_s, quality, raw_event_id)
                   VALUES ($1, 'steps', $2, now(), now(), $3, 5, 'count', 0, 1, $3)""",
                owner,
                source,
                uuid.uuid4(),
            )
    finally:
        await conn.close()
    change = ConnectionChanged(
        event="connection.disconnected",
        user_id=user,
        provider="oura",
        delete_data=True,
        occurred_at=datetime.now(UTC),
    )
    async with collect(kafka_bootstrap_servers, topics.metrics_unified) as events:
        await publish(topics.connections_changed, dump(change))
        await eventually(lambda: _has(events, 1), what="the deletion event")
    assert [(c["event"], c["revision"], c["sample"]["source"]) for c in changes(events)] == [
        ("deleted", 2, "oura")
    ]
    conn = await asyncpg.connect(database_url)
    try:
        left = await conn.fetch("SELECT user_id, source FROM normalizer.samples ORDER BY source")
    finally:
        await conn.close()
    assert {(r["user_id"], r["source"]) for r in left} == {(user, "csv"), (other, "oura")}
