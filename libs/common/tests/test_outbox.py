from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from healthmesh.common.broker import make_broker
from healthmesh.common.db import open_pool
from healthmesh.common.outbox import OUTBOX_TABLE_SQL, Outbox, OutboxMessage
from healthmesh.common.topics import Topics
from healthmesh.devstack.testing import collect, eventually

pytestmark = pytest.mark.integration

SCHEMA = "svc"


class _Rollback(Exception):
    pass


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url, max_size=4)
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE SCHEMA {SCHEMA}")
            await conn.execute(OUTBOX_TABLE_SQL.format(schema=SCHEMA))
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def broker(kafka_bootstrap_servers: str) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(kafka_bootstrap_servers, TracerProvider())
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def _messages(topic: str, count: int, key: bytes = b"user-1") -> list[OutboxMessage]:
    return [OutboxMessage(topic, key, {"n": n, "text": f"event {n}"}) for n in range(count)]


async def _queued(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT topic, key, payload FROM {SCHEMA}.outbox ORDER BY id")
    return [dict(r) | {"payload": orjson.loads(r["payload"])} for r in rows]


async def test_outbox_table_sql_formats_with_a_schema_name(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE SCHEMA other")
        await conn.execute(OUTBOX_TABLE_SQL.format(schema="other"))
        assert await conn.fetchval("SELECT to_regclass('other.outbox')") is not None
    finally:
        await conn.close()


async def test_messages_added_in_a_rolled_back_transaction_are_not_queued(
    pool: asyncpg.Pool, broker: KafkaBroker, topics: Topics
) -> None:
    outbox = Outbox(SCHEMA)

    async with pool.acquire() as conn:
        with pytest.raises(_Rollback):
            async with conn.transaction():
                await outbox.add(conn, _messages(topics.metrics_unified, 3))
                assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox") == 3
                raise _Rollback

    assert await _queued(pool) == []
    assert await outbox.publish_pending(pool, broker) == 0


async def test_committed_messages_are_queued_as_given(pool: asyncpg.Pool) -> None:
    outbox = Outbox(SCHEMA)

    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, [OutboxMessage("t.a", b"\x00k\xff", {"nested": {"x": [1, None]}})])
        await outbox.add(conn, [])

    assert await _queued(pool) == [
        {"topic": "t.a", "key": b"\x00k\xff", "payload": {"nested": {"x": [1, None]}}}
    ]


async def test_publish_pending_publishes_in_order_and_empties_the_table(
    pool: asyncpg.Pool, broker: KafkaBroker, topics: Topics, kafka_bootstrap_servers: str
) -> None:
    outbox = Outbox(SCHEMA)
    topic = topics.metrics_unified
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, _messages(topic, 30))

    published = await outbox.publish_pending(pool, broker)

    assert published == 30
    assert await _queued(pool) == []
    expected = [{"n": n, "text": f"event {n}"} for n in range(30)]
    async with collect(kafka_bootstrap_servers, topic) as received:

        async def all_arrived() -> bool:
            return len(received) >= len(expected)

        await eventually(all_arrived, what="30 outbox messages on the topic")
    assert received == expected
    assert await outbox.publish_pending(pool, broker) == 0


async def test_one_relay_at_a_time_publishes_an_outbox(
    pool: asyncpg.Pool, broker: KafkaBroker, topics: Topics
) -> None:
    """Another worker's relay mid-publish holds the outbox: this one leaves every message to it
    (publishing beside it could reorder one key's messages), then takes over once it is done."""
    outbox = Outbox(SCHEMA)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, _messages(topics.metrics_unified, 3))

    async with pool.acquire() as other, other.transaction():
        await other.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"outbox:{SCHEMA}.outbox")
        assert await outbox.publish_pending(pool, broker) == 0
        assert len(await _queued(pool)) == 3

    assert await outbox.publish_pending(pool, broker) == 3
    assert await _queued(pool) == []


async def test_publish_pending_sends_each_message_to_its_own_topic(
    pool: asyncpg.Pool, broker: KafkaBroker, topics: Topics, kafka_bootstrap_servers: str
) -> None:
    outbox = Outbox(SCHEMA)
    raw, unified = topics.raw("csv"), topics.metrics_unified
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(
            conn,
            [
                OutboxMessage(raw, b"user-1", {"to": "raw", "n": 0}),
                OutboxMessage(unified, b"user-1", {"to": "unified", "n": 1}),
                OutboxMessage(raw, b"user-1", {"to": "raw", "n": 2}),
            ],
        )

    assert await outbox.publish_pending(pool, broker) == 3

    async with (
        collect(kafka_bootstrap_servers, raw) as on_raw,
        collect(kafka_bootstrap_servers, unified) as on_unified,
    ):

        async def both_arrived() -> bool:
            return len(on_raw) >= 2 and len(on_unified) >= 1

        await eventually(both_arrived, what="messages on both topics")
    assert on_raw == [{"to": "raw", "n": 0}, {"to": "raw", "n": 2}]
    assert on_unified == [{"to": "unified", "n": 1}]


async def test_publish_pending_takes_at_most_limit_oldest_first(
    pool: asyncpg.Pool, broker: KafkaBroker, topics: Topics
) -> None:
    outbox = Outbox(SCHEMA)
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, _messages(topics.metrics_unified, 5))

    assert await outbox.publish_pending(pool, broker, limit=2) == 2

    assert [r["payload"]["n"] for r in await _queued(pool)] == [2, 3, 4]
    assert await outbox.publish_pending(pool, broker, limit=2) == 2
    assert await outbox.publish_pending(pool, broker, limit=2) == 1
    assert await _queued(pool) == []


async def test_the_relay_continues_the_trace_of_the_transaction_that_queued(
    pool: asyncpg.Pool, broker: KafkaBroker, topics: Topics
) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    outbox = Outbox(SCHEMA, provider)
    with provider.get_tracer("test").start_as_current_span("request") as request:
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, _messages(topics.metrics_unified, 2))
    given = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, [OutboxMessage(topics.metrics_unified, b"u", {}, given)])

    assert await outbox.publish_pending(pool, broker) == 3

    relayed = [s for s in spans.get_finished_spans() if s.name == "outbox relay"]
    assert len(relayed) == 3
    parents = sorted(
        (format(s.context.trace_id, "032x"), format(s.parent.span_id, "016x"))
        for s in relayed
        if s.parent is not None
    )
    ours = (
        format(request.get_span_context().trace_id, "032x"),
        format(request.get_span_context().span_id, "016x"),
    )
    assert parents == sorted([ours, ours, ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")])
