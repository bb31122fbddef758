"""The gateway: the public REST API (../shared/API.md).

Table of contents: `create_app` opens the pool (its own schema migrated), the HTTP client to
the other services (auth, preferences, connectors), the JWKS verifier, the broker and the outbox
relay that publishes import requests, the pool of upload writers and the sweep of expired
uploads, then mounts the routes: identity, connections (with the OAuth callback and the
webhooks), imports, resumable uploads, CSV presets (and the preview), metrics, their
explanations, the daily summary, conflicts, preferences (and sources); then the error handlers,
/healthz, /readyz and /metrics (readiness: the database, the broker and auth's keys) and tracing.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files

import httpx
from fastapi import FastAPI

from healthmesh.common.access_tokens import JwksVerifier
from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import ImportRequested
from healthmesh.common.http import (
    broker_ready,
    database_ready,
    install_error_handlers,
    install_operations,
)
from healthmesh.common.logging import configure_logging
from healthmesh.common.outbox import Outbox
from healthmesh.common.service import collect_cycles_less_often
from healthmesh.common.shutdown import close_pool, stop_within
from healthmesh.common.telemetry import install_tracing, make_tracer_provider
from healthmesh.common.topics import Topics
from healthmesh.gateway.resumable import sweep_forever
from healthmesh.gateway.routes import (
    conflicts,
    connections,
    csv_presets,
    explain,
    identity,
    imports,
    metrics,
    preferences,
    summary,
    uploads,
)
from healthmesh.gateway.settings import Settings

SERVICE = "gateway"


def create_app(settings: Settings, verifier: JwksVerifier | None = None) -> FastAPI:
    """`verifier` defaults to one reading auth's JWKS; tests pass one over a fake auth."""
    tracer_provider = make_tracer_provider(SERVICE, settings.otel_exporter_otlp_endpoint)
    broker = make_broker(settings.kafka_bootstrap_servers, tracer_provider)
    outbox = Outbox("gateway", tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        pool = await open_pool(settings.database_url)
        writers = await open_pool(
            settings.database_url, min_size=0, max_size=settings.upload_writers
        )
        http = httpx.AsyncClient()
        try:
            await apply_migrations(pool, "gateway", files("healthmesh.gateway") / "migrations")
            app.state.pool = pool
            app.state.upload_writers = writers
            app.state.http = http
            app.state.verifier = verifier or JwksVerifier(
                http, f"{settings.auth_url}/.well-known/jwks.json"
            )
            await broker.start()
            sweeping = asyncio.create_task(
                sweep_forever(
                    pool,
                    writers,
                    settings.upload_dir,
                    settings.upload_expiry_s,
                    settings.upload_sweep_interval_s,
                )
            )
            try:
                async with outbox.relaying(pool, broker):
                    yield
            finally:
                sweeping.cancel()
        finally:
            await stop_within("broker", broker.stop)
            await stop_within("http client", http.aclose)
            await close_pool(writers, "upload writers' pool")
            await close_pool(pool)

    app = FastAPI(
        title="HealthMesh API",
        version="1",
        description="One REST API over every connected health-data source.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.broker = broker
    broker.publisher(
        Topics(settings.topic_prefix).imports_requested,
        title="imports.requested",
        description="A file was uploaded and awaits import; published through the outbox.",
        schema=ImportRequested,
    )
    app.state.outbox = outbox
    for module in (
        identity,
        connections,
        imports,
        uploads,
        csv_presets,
        metrics,
        explain,
        summary,
        conflicts,
        preferences,
    ):
        app.include_router(module.router)
    install_error_handlers(app)

    async def auth_keys() -> None:
        answer = await app.state.http.get(f"{settings.auth_url}/.well-known/jwks.json", timeout=2)
        answer.raise_for_status()

    install_operations(app, SERVICE, [database_ready(app), broker_ready(broker), auth_keys])
    install_tracing(app, tracer_provider)
    return app


def from_environment() -> FastAPI:
    """The app `python -m healthmesh.gateway` serves, built in each worker process from the
    environment (common.service.serve)."""
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    collect_cycles_less_often()
    return create_app(settings)
