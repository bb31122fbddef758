"""An in-process provider simulator for the provider modules' tests (no network, fixed clock)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.connectors.provider_http import Backoff, ProviderHttp
from healthmesh.connectors.providers.base import Provider
from healthmesh.simulator.app import create_app
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.settings import Settings as SimulatorSettings
from healthmesh.simulator.testing import connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The simulator's fixed "now": every generated value is the same from run to run."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW.timestamp())


@pytest.fixture
def simulator_settings() -> SimulatorSettings:
    return SimulatorSettings(days=400)


@pytest.fixture
async def simulator(
    simulator_settings: SimulatorSettings, clock: FakeClock
) -> AsyncIterator[FastAPI]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_receiver)) as outbound:
        app = create_app(simulator_settings, clock=clock, http=outbound)
        async with app.router.lifespan_context(app):
            yield app


def _no_receiver(request: httpx.Request) -> httpx.Response:
    return httpx.Response(204)


@pytest.fixture
async def sim(simulator: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process simulator at http://sim."""
    transport = httpx.ASGITransport(app=simulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]


@pytest.fixture
def provider_http(sim: httpx.AsyncClient) -> ProviderHttpFactory:
    """`await provider_http(PROVIDER, "sim-user")`: connect that simulated person to the
    provider (the real OAuth dance against the simulator) and get a ProviderHttp for them, with
    no shared budget and quick retries."""

    async def make(provider: Provider, sim_user: str) -> ProviderHttp:
        answer = await connect(sim, provider.name, user=sim_user)
        token = str(answer["access_token"])

        async def tokens(rejected: str | None) -> str:
            return token

        return ProviderHttp(
            sim,
            provider,
            f"http://sim/{provider.name}",
            user_id=uuid4(),
            tokens=tokens,
            budget=None,
            backoff=Backoff(base_s=0.001, cap_s=0.01),
            timeout_s=5.0,
        )

    return make
