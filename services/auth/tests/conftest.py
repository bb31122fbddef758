from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.auth.app import create_app
from healthmesh.auth.settings import Settings


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The auth app with its lifespan running, on a fresh database."""
    app = create_app(Settings(database_url=database_url, environment="test"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
        yield client
