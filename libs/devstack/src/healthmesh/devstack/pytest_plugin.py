"""Test fixtures: a real PostgreSQL and a real Kafka-protocol broker for every connected test.

Which ones, by environment:
- DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS: those servers (each test gets its own database and its
  own topic prefix, so runs do not see each other);
- else HEALTHMESH_TEST_CONTAINERS=1 (needs Docker): Apache Kafka and PostgreSQL containers;
- else the embedded PostgreSQL and Tansu, started once per test session on free ports.
"""

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from healthmesh.common.broker import create_topics
from healthmesh.common.topics import Topics
from healthmesh.devstack.databases import create_database, drop_database
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import Infrastructure, start_infrastructure


@dataclass(frozen=True)
class SharedInfrastructure:
    admin_database_url: str
    kafka_bootstrap_servers: str
    data_dir: Path


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[SharedInfrastructure]:
    data_dir = Path(tempfile.mkdtemp(prefix="healthmesh-test-"))
    env = {k: v for k, v in os.environ.items() if k in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    containers: list[Any] = []
    if os.environ.get("HEALTHMESH_TEST_CONTAINERS") == "1":
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        if "DATABASE_URL" not in env:
            pg = PostgresContainer("postgres:17", driver=None).start()
            containers.append(pg)
            env["DATABASE_URL"] = pg.get_connection_url()
        if "KAFKA_BOOTSTRAP_SERVERS" not in env:
            kafka = KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft().start()
            containers.append(kafka)
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.get_bootstrap_server()
    infra: Infrastructure = start_infrastructure(
        env, data_dir, pg_port=free_port(), kafka_port=free_port(), durable=False
    )
    try:
        yield SharedInfrastructure(infra.database_url, infra.kafka_bootstrap_servers, data_dir)
    finally:
        infra.stop()
        for container in containers:
            container.stop()


@pytest_asyncio.fixture
async def database_url(infrastructure: SharedInfrastructure) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    url = await create_database(infrastructure.admin_database_url)
    yield url
    await drop_database(infrastructure.admin_database_url, url)


@pytest.fixture
def kafka_bootstrap_servers(infrastructure: SharedInfrastructure) -> str:
    return infrastructure.kafka_bootstrap_servers


@pytest_asyncio.fixture
async def topics(kafka_bootstrap_servers: str) -> Topics:
    """Every topic, under a prefix of this test's own, created on the broker."""
    registry = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    await create_topics(kafka_bootstrap_servers, registry.all(), partitions=3)
    return registry
