import asyncpg
import pytest
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import make_broker
from healthmesh.common.topics import Topics

pytestmark = pytest.mark.integration


async def test_each_test_gets_an_empty_database_of_its_own(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        assert tables == 0
        assert (await conn.fetchval("SELECT current_database()")).startswith("test_")
    finally:
        await conn.close()


async def test_broker_accepts_publishes_on_the_test_topics(
    kafka_bootstrap_servers: str, topics: Topics
) -> None:
    broker = make_broker(kafka_bootstrap_servers, TracerProvider())
    await broker.start()
    try:
        await broker.publish({"hello": 1}, topic=topics.metrics_unified, key=b"u")
    finally:
        await broker.stop()
