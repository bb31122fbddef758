from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.auth.app import create_app
from healthmesh.auth.settings import Settings
from healthmesh.common.topics import Topics


@pytest.fixture
def settings(database_url: str, kafka_bootstrap_servers: str, topics: Topics) -> Settings:
    """Settings on a fresh database and this test's own topics."""
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=topics.prefix,
        environment="test",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The auth app with its lifespan running, on a fresh database."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
        yield client
