"""The normalizer: consumes raw.*, writes unified samples, publishes metrics.unified.

Table of contents: `create_app` wires the pool (migrations applied), the broker with one batch
subscriber over every raw topic (offsets committed by hand, after the database commit), the
outbox relay that publishes committed changes, and the raw archive's retention. The
`reprocess` command (reprocess.py) replays the archive through today's mappers.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import asyncpg
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import ConnectionChanged, DeadLettered, MetricChanges, dump
from healthmesh.common.http import (
    broker_ready,
    database_ready,
    install_error_handlers,
    install_operations,
)
from healthmesh.common.logging import configure_logging, get_logger
from healthmesh.common.outbox import Outbox
from healthmesh.common.service import collect_cycles_less_often
from healthmesh.common.shutdown import close_pool, stop_within
from healthmesh.common.telemetry import install_tracing, make_tracer_provider
from healthmesh.common.topics import RAW_SOURCES, Topics, raw_topic
from healthmesh.common.units import load_units
from healthmesh.normalizer import db
from healthmesh.normalizer.handlers import ConnectionHandler, RawHandler, RawMessage
from healthmesh.normalizer.mapping import mappers
from healthmesh.normalizer.settings import Settings

SERVICE = "normalizer"
log = get_logger(__name__)


def subscribe_raw(broker: KafkaBroker, settings: Settings, app: FastAPI) -> None:
    topics = Topics(settings.topic_prefix)

    @broker.subscriber(
        *(topics.raw(source) for source in RAW_SOURCES),
        group_id=settings.consumer_group,
        batch=True,
        max_records=settings.batch_max_records,
        max_partition_fetch_bytes=settings.fetch_partition_bytes,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        decoder=_undecoded,
    )
    async def on_raw(msg: KafkaMessage) -> None:
        """Offsets are committed only after the batch's transaction committed; on failure the
        batch is rewound and comes back."""
        handler: RawHandler = app.state.handler
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        messages = [
            RawMessage(r.topic, r.partition, r.offset, r.key, r.value or b"", _trace_headers(r))
            for r in records
        ]
        try:
            dead_letters = await handler.handle(messages)
            for letter in dead_letters:
                await broker.publish(dump(letter.event), topic=letter.topic, key=letter.key)
                log.warning("dead-lettered", topic=letter.topic, reason=letter.event.reason)
        except Exception:
            log.exception("batch failed; rewinding to retry", size=len(messages))
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        await msg.ack()


async def _undecoded(_msg: StreamMessage[Any]) -> None:
    """The raw subscriber's decoder: nothing. The handler reads each record's bytes (it
    validates the envelope itself); faststream's own decoder parsed every body as JSON (a
    batch of an import is 256 kB), 5 % of an Apple Health import's time, for nothing."""
    return None


def subscribe_connections(broker: KafkaBroker, settings: Settings, app: FastAPI) -> None:
    @broker.subscriber(
        Topics(settings.topic_prefix).connections_changed,
        group_id=f"{settings.consumer_group}-connections",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
    )
    async def on_connection_changed(change: ConnectionChanged, msg: KafkaMessage) -> None:
        """Acknowledged after the deletion (if any) committed; a failure rewinds it."""
        handler: ConnectionHandler = app.state.connection_handler
        try:
            await handler.handle(change)
        except Exception:
            log.exception("connection event failed; rewinding")
            await msg.nack()
            await asyncio.sleep(1.0)
            return
        await msg.ack()


def _trace_headers(record: Any) -> dict[str, str]:
    return {
        name: value.decode("latin-1")
        for name, value in (record.headers or ())
        if name in ("traceparent", "tracestate") and isinstance(value, bytes)
    }


async def prune_archive_forever(pool: asyncpg.Pool, settings: Settings) -> None:
    """Keep the raw archive within its retention, a chunk at a time so no lock is held long."""
    if settings.raw_archive_retention_days <= 0:
        return
    while True:
        cutoff = datetime.now(UTC) - timedelta(days=settings.raw_archive_retention_days)
        try:
            while True:
                async with pool.acquire() as conn:
                    if await db.prune_archive(conn, cutoff, limit=5_000) < 5_000:
                        break
        except Exception:
            log.exception("pruning the raw archive failed; trying again later")
        await asyncio.sleep(settings.archive_prune_interval_s)


def declare_publications(broker: KafkaBroker, topics: Topics) -> None:
    """What this service publishes, declared so the AsyncAPI document shows it."""
    broker.publisher(
        topics.metrics_unified,
        title="metrics.unified",
        description="Every created, updated or deleted unified sample, a user's changes of one "
        "commit together, keyed by user id; published from the transactional outbox after the "
        "database commit.",
        schema=MetricChanges,
    )
    for source in RAW_SOURCES:
        broker.publisher(
            topics.dlq(raw_topic(source)),
            title=f"dlq.raw.{source}",
            description=f"raw.{source} messages that could not be read or mapped, with why.",
            schema=DeadLettered,
        )


def create_app(settings: Settings) -> FastAPI:
    tracer_provider = make_tracer_provider(SERVICE, settings.otel_exporter_otlp_endpoint)
    broker = make_broker(settings.kafka_bootstrap_servers, tracer_provider)
    outbox = Outbox("normalizer", tracer_provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings.database_url)
        try:
            await apply_migrations(
                pool, "normalizer", files("healthmesh.normalizer") / "migrations"
            )
            app.state.pool = pool
            load_units()  # before the first batch, not in it
            app.state.handler = RawHandler(pool, outbox, Topics(settings.topic_prefix), mappers())
            app.state.connection_handler = ConnectionHandler(
                pool, outbox, Topics(settings.topic_prefix)
            )
            await broker.start()
            pruning = asyncio.create_task(prune_archive_forever(pool, settings))
            try:
                async with outbox.relaying(pool, broker):
                    yield
            finally:
                pruning.cancel()
        finally:
            await stop_within("broker", broker.stop)
            await close_pool(pool)

    app = FastAPI(title="HealthMesh normalizer", lifespan=lifespan)
    subscribe_raw(broker, settings, app)
    subscribe_connections(broker, settings, app)
    declare_publications(broker, Topics(settings.topic_prefix))
    install_error_handlers(app)

    install_operations(app, SERVICE, [database_ready(app), broker_ready(broker)])
    install_tracing(app, tracer_provider)
    app.state.broker = broker
    return app


def from_environment() -> FastAPI:
    """The app `python -m healthmesh.normalizer` serves, built in each worker process from the
    environment (common.service.serve)."""
    settings = Settings()
    configure_logging("normalizer", settings.log_level)
    collect_cycles_less_often()
    return create_app(settings)
