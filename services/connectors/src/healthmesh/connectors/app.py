"""The connectors service: provider syncs and file importers.

Table of contents: `create_app` wires the pool (migrations applied), the broker with
- the import subscriber (acknowledged after the whole file is published, so a crash replays it),
- the connections subscriber (a connection queues its backfill; a disconnection cancels syncs),
the sync workers and the scheduler (background tasks; see syncer.py and scheduler.py), the
webhook and internal sync endpoints (routes.py), and the health endpoints.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import ConnectionChanged, ImportRequested, RawPayloadReceived
from healthmesh.common.http import (
    broker_ready,
    database_ready,
    install_error_handlers,
    install_operations,
)
from healthmesh.common.logging import configure_logging, get_logger
from healthmesh.common.shutdown import close_pool, stop_within
from healthmesh.common.telemetry import install_tracing, make_tracer_provider
from healthmesh.common.topics import Topics
from healthmesh.connectors import jobs, routes
from healthmesh.connectors.handlers import Importer
from healthmesh.connectors.provider_http import Backoff
from healthmesh.connectors.ratelimit import RateBudget
from healthmesh.connectors.registry import PROVIDERS, REAL_BASE_URLS
from healthmesh.connectors.scheduler import schedule_forever
from healthmesh.connectors.settings import Settings
from healthmesh.connectors.syncer import SyncConfig, SyncDeps, SyncWorkers
from healthmesh.connectors.tokens import AuthClient
from healthmesh.connectors.webhooks import WebhookSecretsSource

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


def subscribe_connections(broker: KafkaBroker, settings: Settings, app: FastAPI) -> None:
    @broker.subscriber(
        Topics(settings.topic_prefix).connections_changed,
        group_id=settings.links_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
    )
    async def track_connection(event: ConnectionChanged, msg: KafkaMessage) -> None:
        """Acknowledged after the database commit; a failure rewinds the event."""
        try:
            await apply_connection_event(app.state.pool, event, settings.backfill_days)
            app.state.workers.wake()  # a connection queued its backfill
        except Exception:
            log.exception("connection event not applied; rewinding")
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        await msg.ack()


async def apply_connection_event(pool: asyncpg.Pool, event: ConnectionChanged, days: int) -> None:
    """connected: remember the link and queue a sync (a backfill for resources never synced);
    reauth_required / disconnected: stop syncing it."""
    async with pool.acquire() as conn, conn.transaction():
        if event.event == "connection.connected":
            await jobs.link_connected(
                conn, event.user_id, event.provider, event.provider_user_id, event.occurred_at
            )
            await jobs.request_sync(
                conn,
                event.user_id,
                event.provider,
                "connect",
                datetime.now(UTC) - timedelta(days=days),
            )
        elif event.event == "connection.reauth_required":
            await jobs.link_status(
                conn,
                event.user_id,
                event.provider,
                "reauth_required",
                "the provider refused the connection; reconnect",
            )
        else:
            await jobs.link_status(conn, event.user_id, event.provider, "disconnected", None)


def provider_base_url(settings: Settings) -> Callable[[str], str]:
    def base_url(provider: str) -> str:
        if settings.provider_base_url:
            return f"{settings.provider_base_url.rstrip('/')}/{provider}"
        return REAL_BASE_URLS[provider]

    return base_url


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
            async with httpx.AsyncClient() as http:
                budget = RateBudget(pool, settings.rate_limit_scale)
                app.state.sync = SyncDeps(
                    pool=pool,
                    broker=broker,
                    http=http,
                    auth=AuthClient(http, settings.auth_url, settings.internal_token),
                    budget=budget,
                    providers=PROVIDERS,
                    base_url=provider_base_url(settings),
                    topics=Topics(settings.topic_prefix),
                    config=SyncConfig(
                        backfill_days=settings.backfill_days,
                        lease_s=settings.sync_lease_s,
                        max_attempts=settings.sync_max_attempts,
                        retry_base_s=settings.sync_retry_base_s,
                        provider_timeout_s=settings.provider_timeout_s,
                        backoff=Backoff(
                            base_s=settings.provider_retry_base_s,
                            cap_s=settings.provider_retry_cap_s,
                            attempts=settings.provider_retry_attempts,
                            default_rate_limit_wait_s=settings.provider_rate_limit_wait_s,
                        ),
                    ),
                )
                app.state.webhook_secrets = WebhookSecretsSource(settings, http)
                app.state.workers = SyncWorkers(app.state.sync, settings.sync_concurrency)
                await broker.start()
                async with background(
                    app.state.workers.run_forever(),
                    schedule_forever(
                        pool,
                        budget,
                        settings.sync_interval_s,
                        settings.schedule_tick_s,
                        lookback_s=24 * 3600,
                    ),
                ):
                    yield
        finally:
            await stop_within("broker", broker.stop)
            await close_pool(pool)

    app = FastAPI(title="HealthMesh connectors", lifespan=lifespan)
    app.state.settings = settings
    subscribe_imports(broker, settings, app)
    subscribe_connections(broker, settings, app)
    broker.publisher(
        Topics(settings.topic_prefix).raw("csv"),
        title="raw.csv",
        description="Batches of rows of uploaded CSV files, as read, with the column mapping.",
        schema=RawPayloadReceived,
    )
    broker.publisher(
        Topics(settings.topic_prefix).raw("apple_health"),
        title="raw.apple_health",
        description="Batches of the items of an uploaded Apple Health export, in file order: "
        'resource `export`, payload `{"records": [item, ...]}`, each item its XML attributes '
        "as text (a correlation or workout with its nested records).",
        schema=RawPayloadReceived,
    )
    for provider in PROVIDERS:
        broker.publisher(
            Topics(settings.topic_prefix).raw(provider),
            title=f"raw.{provider}",
            description=f"{provider} API payloads exactly as received: one document per event "
            "(time series: one UTC day of rows), resource named in the envelope.",
            schema=RawPayloadReceived,
        )
    app.state.broker = broker
    app.include_router(routes.router)
    install_error_handlers(app)

    install_operations(app, SERVICE, [database_ready(app), broker_ready(broker)])
    install_tracing(app, tracer_provider)
    return app


@contextlib.asynccontextmanager
async def background(*loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `loops` while the app serves; a loop that dies is logged, not silently lost."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    for task in tasks:
        task.add_done_callback(_report_death)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await stop_within(
            "background loops", lambda: asyncio.gather(*tasks, return_exceptions=True)
        )


def _report_death(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background loop died", error=repr(task.exception()))


def from_environment() -> FastAPI:
    """The app `python -m healthmesh.connectors` serves, built in each worker process from the
    environment (common.service.serve)."""
    settings = Settings()
    configure_logging("connectors", settings.log_level)
    return create_app(settings)
