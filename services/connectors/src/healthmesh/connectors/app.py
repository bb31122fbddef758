"""The connectors service: file importers now; provider workers join here.

Table of contents: `create_app` wires the pool (migrations applied), the broker with the import
subscriber (acknowledged after the whole file is published, so a crash replays the request),
and the health endpoints.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import ImportRequested, RawPayloadReceived
from healthmesh.common.http import (
    broker_ready,
    database_ready,
    install_error_handlers,
    install_operations,
)
from healthmesh.common.logging import get_logger
from healthmesh.common.telemetry import install_tracing, make_tracer_provider
from healthmesh.common.topics import Topics
from healthmesh.connectors.handlers import Importer
from healthmesh.connectors.settings import Settings

SERVICE = "connectors"
log = get_logger(__name__)


def subscribe_imports(broker: KafkaBroker, settings: Settings, app: FastAPI) -> None:
    @broker.subscriber(
        Topics(settings.topic_prefix).imports_requested,
        group_id=settings.importer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        max_poll_interval_ms=3_600_000,
    )
    async def on_import_requested(request: ImportRequested, msg: KafkaMessage) -> None:
        """Acknowledged once the file is fully published or has failed for a stated reason;
        an unexpected error rewinds it to be tried again."""
        importer: Importer = app.state.importer
        try:
            await importer.run(request)
        except Exception:
            log.exception("import crashed; rewinding", import_id=str(request.import_id))
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        await msg.ack()


def create_app(settings: Settings) -> FastAPI:
    tracer_provider = make_tracer_provider(SERVICE, settings.otel_exporter_otlp_endpoint)
    broker = make_broker(settings.kafka_bootstrap_servers, tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings.database_url)
        try:
            await apply_migrations(
                pool, "connectors", files("healthmesh.connectors") / "migrations"
            )
            app.state.pool = pool
            app.state.importer = Importer(pool, broker, settings)
            await broker.start()
            yield
        finally:
            await broker.stop()
            await pool.close()

    app = FastAPI(title="HealthMesh connectors", lifespan=lifespan)
    subscribe_imports(broker, settings, app)
    broker.publisher(
        Topics(settings.topic_prefix).raw("csv"),
        title="raw.csv",
        description="Batches of rows of uploaded CSV files, as read, with the column mapping.",
        schema=RawPayloadReceived,
    )
    app.state.broker = broker
    install_error_handlers(app)

    install_operations(app, SERVICE, [database_ready(app), broker_ready(broker)])
    install_tracing(app, tracer_provider)
    return app
