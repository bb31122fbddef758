from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.simulator.app import create_app
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.settings import Settings

# A fixed "now" keeps every generated value the same from run to run.
START = datetime(2026, 3, 15, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings() -> Settings:
    """A short history keeps the suite fast; everything else is the real default."""
    return Settings(days=30)


@pytest.fixture
def webhook_calls() -> list[httpx.Request]:
    return []


@pytest.fixture
def receiver(webhook_calls: list[httpx.Request]) -> httpx.MockTransport:
    """Stands in for an app's webhook endpoint: records requests, answers handshakes."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host.endswith(".invalid"):
            raise httpx.ConnectError("no such host", request=request)
        webhook_calls.append(request)
        params = request.url.params
        if "hub.challenge" in params:
            return httpx.Response(200, json={"hub.challenge": params["hub.challenge"]})
        if "challenge" in params:
            return httpx.Response(200, json={"challenge": params["challenge"]})
        if (
            request.content == b'{"type": "verification"}'
            or request.content == b'{"type":"verification"}'
        ):
            return httpx.Response(201 if "authorization" in request.headers else 401)
        return httpx.Response(204)

    return httpx.MockTransport(answer)


@pytest.fixture
async def app(
    settings: Settings, clock: FakeClock, receiver: httpx.MockTransport
) -> AsyncIterator[FastAPI]:
    async with httpx.AsyncClient(transport=receiver) as outbound:
        app = create_app(settings, clock=clock, http=outbound)
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client
