"""The preferences service's application: `create_app(settings)` is what a runner starts."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import resources

import httpx
from fastapi import FastAPI

from healthmesh.common.access_tokens import JwksVerifier
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.http import database_ready, install_error_handlers, install_operations
from healthmesh.common.telemetry import install_tracing, make_tracer_provider
from healthmesh.preferences import sources
from healthmesh.preferences.deps import TokenVerifier
from healthmesh.preferences.routes import router
from healthmesh.preferences.settings import Settings


def create_app(settings: Settings, verifier: TokenVerifier | None = None) -> FastAPI:
    """The app; without `verifier`, tokens are checked against auth's JWKS (settings.auth_url)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = await open_pool(settings.database_url)
            stack.push_async_callback(pool.close)
            migrations = resources.files("healthmesh.preferences") / "migrations"
            await apply_migrations(pool, "preferences", migrations)
            if verifier is None:
                http = await stack.enter_async_context(httpx.AsyncClient())
                app.state.verifier = JwksVerifier(http, settings.jwks_url)
            else:
                app.state.verifier = verifier
            app.state.pool = pool
            yield

    app = FastAPI(title="HealthMesh preferences", version="1", lifespan=lifespan)

    install_error_handlers(app)
    install_operations(app, "preferences", checks=[database_ready(app)])
    install_tracing(app, make_tracer_provider("preferences", settings.otel_exporter_otlp_endpoint))
    app.include_router(router)
    app.include_router(sources.router)
    return app
