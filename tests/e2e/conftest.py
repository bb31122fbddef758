"""The five services as real processes over the test PostgreSQL and broker."""

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from healthmesh.common.broker import create_topics
from healthmesh.common.topics import Topics
from healthmesh.devstack.databases import create_database
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.pytest_plugin import SharedInfrastructure
from healthmesh.devstack.stack import (
    SERVICES,
    Infrastructure,
    Service,
    service_env,
    start_service,
    start_services,
    start_simulator,
    stop_services,
    wait_ready,
)

BACKFILL_DAYS = 30
WEBHOOK_VERIFY_TOKEN = "e2e-verify-token"


@dataclass
class Stack:
    services: dict[str, Service]
    env: dict[str, str]
    ports: dict[str, int]
    data_dir: Path
    database_url: str
    topics: Topics

    @property
    def gateway(self) -> str:
        return self.services["gateway"].url

    @property
    def simulator(self) -> str:
        return self.services["simulator"].url

    def restart(self, name: str) -> None:
        service = start_service(name, self.env, self.ports[name], self.data_dir / "logs")
        self.services[name] = service
        wait_ready(service)


@pytest.fixture(scope="session")
def stack(infrastructure: SharedInfrastructure) -> Iterator[Stack]:
    database_url = asyncio.run(create_database(infrastructure.admin_database_url, "e2e"))
    topics = Topics(prefix=f"e2e{uuid.uuid4().hex[:8]}.")
    asyncio.run(create_topics(infrastructure.kafka_bootstrap_servers, topics.all(), partitions=3))
    data_dir = Path(tempfile.mkdtemp(prefix="healthmesh-e2e-"))
    ports = {service: free_port() for service in SERVICES}
    infra = Infrastructure(database_url, infrastructure.kafka_bootstrap_servers)
    env = service_env(os.environ, infra, ports, data_dir)
    env.update(
        HEALTHMESH_TOPIC_PREFIX=topics.prefix,
        HEALTHMESH_ENVIRONMENT="test",
        HEALTHMESH_BATCH_MAX_RECORDS="5",
        HEALTHMESH_IMPORT_BATCH_ROWS="500",
        HEALTHMESH_MAX_UPLOAD_BYTES=str(20 * 1024 * 1024),
        # Provider syncs: a month of history, quick retries and takeovers, verifiable webhooks.
        HEALTHMESH_BACKFILL_DAYS=str(BACKFILL_DAYS),
        HEALTHMESH_SYNC_LEASE_S="4",
        HEALTHMESH_SYNC_RETRY_BASE_S="0.5",
        HEALTHMESH_PROVIDER_TIMEOUT_S="2",
        HEALTHMESH_PROVIDER_RETRY_BASE_S="0.1",
        HEALTHMESH_PROVIDER_RETRY_CAP_S="1",
        HEALTHMESH_PROVIDER_RATE_LIMIT_WAIT_S="1",
        HEALTHMESH_SCHEDULE_TICK_S="1",
        HEALTHMESH_WEBHOOK_VERIFY_TOKEN=WEBHOOK_VERIFY_TOKEN,
        HEALTHMESH_FITBIT_WEBHOOK_AUTHORIZATION="Bearer sandbox-webhook-secret",
    )
    simulator = start_simulator(
        {
            **env,
            "HEALTHMESH_SIMULATOR_TOKEN_LATENCY_S": "0.3",
            "HEALTHMESH_SIMULATOR_FAULT_TIMEOUT_S": "4",
        },
        free_port(),
        data_dir / "logs",
    )
    env["HEALTHMESH_PROVIDER_BASE_URL"] = simulator.url
    try:
        services = start_services(env, data_dir, ports)
    except BaseException:
        simulator.process.stop()
        raise
    running = Stack(
        {s.name: s for s in [simulator, *services]}, env, ports, data_dir, database_url, topics
    )
    try:
        yield running
    finally:
        stop_services(list(running.services.values()))


@pytest_asyncio.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30.0) as http:
        yield http


async def sign_up(client: httpx.AsyncClient) -> dict[str, str]:
    """A new user; returns the Authorization header for them."""
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery staple"
    created = await client.post("/v1/users", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    token = await client.post("/v1/auth/token", data={"username": email, "password": password})
    assert token.status_code == 200, token.text
    return {"authorization": f"Bearer {token.json()['access_token']}"}


async def wait_until_finished(
    client: httpx.AsyncClient, auth: dict[str, str], import_id: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await client.get(f"/v1/imports/{import_id}", headers=auth)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in ("done", "failed"):
            return dict(answer.json())
        await asyncio.sleep(0.3)
    raise AssertionError(f"import {import_id} not finished after {timeout}s: {answer.json()}")
