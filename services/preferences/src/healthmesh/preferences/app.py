"""The preferences service's application: `create_app(settings)` is what a runner starts.

Table of contents: the lifespan opens the pool (its schema migrated), the JWKS verifier, the
broker and the outbox relay that publishes `preferences.changed`; then the routes: the caller's
preferences, and the sources with their capabilities.
"""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import resources

import httpx
from fastapi import FastAPI

from healthmesh.common.access_tokens import JwksVerifier
from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import PreferencesChanged
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
from healthmesh.preferences import sources
from healthmesh.preferences.changes import Changes
from healthmesh.preferences.deps import TokenVerifier
from healthmesh.preferences.routes import router
from healthmesh.preferences.settings import Settings


def create_app(settings: Settings, verifier: TokenVerifier | None = None) -> FastAPI:
    """The app; without `verifier`, tokens are checked against auth's JWKS (settings.auth_url)."""
    tracer_provider = make_tracer_provider("preferences", settings.otel_exporter_otlp_endpoint)
    broker = make_broker(settings.kafka_bootstrap_servers, tracer_provider)
    outbox = Outbox("preferences", tracer_provider)
    topic = Topics(settings.topic_prefix).preferences_changed

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = await open_pool(settings.database_url)
            stack.push_async_callback(close_pool, pool)
            migrations = resources.files("healthmesh.preferences") / "migrations"
            await apply_migrations(pool, "preferences", migrations)
            if verifier is None:
                http = await stack.enter_async_context(httpx.AsyncClient())
                app.state.verifier = JwksVerifier(http, settings.jwks_url)
            else:
                app.state.verifier = verifier
            app.state.pool = pool
            stack.push_async_callback(stop_within, "broker", broker.stop)
            await broker.start()
            await stack.enter_async_context(outbox.relaying(pool, broker))
            yield

    app = FastAPI(title="HealthMesh preferences", version="1", lifespan=lifespan)
    app.state.broker = broker
    app.state.changes = Changes(outbox, topic)
    broker.publisher(
        topic,
        title="preferences.changed",
        description="A user's source priority for a category, or override for a metric, was "
        "set or removed; published through the outbox after the database commit.",
        schema=PreferencesChanged,
    )

    install_error_handlers(app)
    install_operations(app, "preferences", checks=[database_ready(app), broker_ready(broker)])
    install_tracing(app, tracer_provider)
    app.include_router(router)
    app.include_router(sources.router)
    return app


def from_environment() -> FastAPI:
    """The app `python -m healthmesh.preferences` serves, built in each worker process from the
    environment (common.service.serve)."""
    settings = Settings()
    configure_logging("preferences", settings.log_level)
    return create_app(settings)
