"""The auth service's application: `create_app(settings)` is the one object a runner starts."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI

from healthmesh.auth.passwords import Passwords
from healthmesh.auth.routes import router
from healthmesh.auth.settings import Settings
from healthmesh.auth.signing_keys import load_signing_keys
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.http import install_error_handlers, install_operations
from healthmesh.common.telemetry import install_tracing, make_tracer_provider


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings.database_url)
        try:
            await apply_migrations(pool, "auth", resources.files("healthmesh.auth") / "migrations")
            app.state.signing_keys = await load_signing_keys(pool)
            app.state.passwords = await asyncio.to_thread(Passwords)
            app.state.pool = pool
            yield
        finally:
            await pool.close()

    app = FastAPI(title="HealthMesh auth", version="1", lifespan=lifespan)
    app.state.settings = settings

    async def database() -> None:
        async with app.state.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    install_error_handlers(app)
    install_operations(app, "auth", checks=[database])
    install_tracing(app, make_tracer_provider("auth", settings.otel_exporter_otlp_endpoint))
    app.include_router(router)
    return app
