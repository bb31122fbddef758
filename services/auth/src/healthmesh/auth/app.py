"""The auth service's application: `create_app(settings)` is the one object a runner starts."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import httpx
from fastapi import FastAPI

from healthmesh.auth import connection_routes
from healthmesh.auth.connections import Connections
from healthmesh.auth.crypto import TokenCipher, parse_keys
from healthmesh.auth.passwords import Passwords
from healthmesh.auth.providers import registry
from healthmesh.auth.routes import router
from healthmesh.auth.settings import Settings
from healthmesh.auth.signing_keys import load_signing_keys
from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import ConnectionChanged
from healthmesh.common.http import (
    broker_ready,
    database_ready,
    install_error_handlers,
    install_operations,
)
from healthmesh.common.logging import configure_logging
from healthmesh.common.outbox import Outbox
from healthmesh.common.shutdown import close_pool, stop_within
from healthmesh.common.telemetry import install_tracing, make_tracer_provider
from healthmesh.common.topics import Topics


def token_cipher(settings: Settings) -> TokenCipher:
    return TokenCipher(parse_keys(settings.token_keys), settings.token_active_key)


def create_app(settings: Settings) -> FastAPI:
    tracer_provider = make_tracer_provider("auth", settings.otel_exporter_otlp_endpoint)
    broker = make_broker(settings.kafka_bootstrap_servers, tracer_provider)
    outbox = Outbox("auth", tracer_provider)
    cipher = token_cipher(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings.database_url)
        http = httpx.AsyncClient()
        try:
            await apply_migrations(pool, "auth", resources.files("healthmesh.auth") / "migrations")
            app.state.signing_keys = await load_signing_keys(pool)
            app.state.passwords = await asyncio.to_thread(Passwords)
            app.state.pool = pool
            app.state.connections = Connections(
                pool, http, registry(settings), cipher, outbox, settings
            )
            await broker.start()
            async with outbox.relaying(pool, broker):
                yield
        finally:
            await stop_within("broker", broker.stop)
            await stop_within("http client", http.aclose)
            await close_pool(pool)

    app = FastAPI(title="HealthMesh auth", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.broker = broker
    broker.publisher(
        Topics(settings.topic_prefix).connections_changed,
        title="connections.changed",
        description="A provider connection was connected, disconnected or needs the user to "
        "reconnect; published through the outbox after the database commit.",
        schema=ConnectionChanged,
    )

    install_error_handlers(app)
    install_operations(app, "auth", checks=[database_ready(app), broker_ready(broker)])
    install_tracing(app, tracer_provider)
    app.include_router(router)
    app.include_router(connection_routes.router)
    return app


def from_environment() -> FastAPI:
    """The app `python -m healthmesh.auth` serves, built in each worker process from the
    environment (common.service.serve)."""
    settings = Settings()
    configure_logging("auth", settings.log_level)
    return create_app(settings)
