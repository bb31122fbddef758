"""Transactional outbox: events that must follow a database write are inserted in the same
transaction (`add`), then published by a relay (`relay_forever`) and deleted once the broker
acknowledged them. A crash between commit and publish delays an event; it never loses one, and
at worst publishes it twice (consumers deduplicate by event id / revision).

Each service keeps its own `<schema>.outbox` table (OUTBOX_TABLE_SQL). A payload is stored as
the JSON bytes the relay publishes (`encode`), so neither side parses it again: the normalizer
queues one event per few hundred samples it writes, and a jsonb column cost as much as the write.
The trace context of the transaction that queued a message is stored with it and continued when
the relay publishes, so one trace runs from an HTTP request or consumed message to what it caused
downstream.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from faststream.kafka import KafkaBroker
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from healthmesh.common.logging import get_logger
from healthmesh.common.shutdown import cancel_and_wait

log = get_logger(__name__)

OUTBOX_TABLE_SQL = """
CREATE TABLE {schema}.outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    payload bytea NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def encode(payload: dict[str, Any]) -> bytes:
    """The JSON published for `payload`: anything orjson writes (dicts of JSON values, UUIDs,
    datetimes, dataclasses), with UTC written as `Z` the way pydantic writes it."""
    return orjson.dumps(payload, default=_uuid_subclass, option=orjson.OPT_UTC_Z)


def _uuid_subclass(value: object) -> str:
    """orjson writes only `uuid.UUID` itself; asyncpg returns a subclass of it."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes
    payload: dict[str, Any]
    """Written with `encode`."""
    trace_context: dict[str, str] | None = None
    """W3C trace headers to continue; None continues the current span (the usual case)."""


_JSON = {"content-type": "application/json"}
"""The stored payload is already JSON: said so, as FastStream says it for a dict it encodes."""


class Outbox:
    def __init__(self, schema: str, tracer_provider: TracerProvider | None = None) -> None:
        self._schema = schema
        self._table = f"{schema}.outbox"
        self._tracer = (tracer_provider or TracerProvider()).get_tracer(__name__)
        self.wakeup = asyncio.Event()

    async def add(self, conn: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
        """Queue messages inside the caller's transaction (COPY: a batch may hold thousands)."""
        if not messages:
            return
        current: dict[str, str] = {}
        propagate.inject(current)
        await conn.copy_records_to_table(
            "outbox",
            schema_name=self._schema,
            columns=("topic", "key", "payload", "trace_context"),
            records=[
                (m.topic, m.key, encode(m.payload), m.trace_context or current) for m in messages
            ],
        )

    async def publish_pending(
        self, pool: asyncpg.Pool, broker: KafkaBroker, limit: int = 1000
    ) -> int:
        """Publish up to `limit` queued messages in order; return how many went out. One relay
        at a time per outbox (an advisory lock; the others return 0 and try again later): two
        relays publishing side by side, of several worker processes or replicas of a service,
        could send one key's messages out of order."""
        async with pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"outbox:{self._table}"
            ):
                return 0
            rows = await conn.fetch(
                f"SELECT id, topic, key, payload, trace_context FROM {self._table} "
                "ORDER BY id LIMIT $1",
                limit,
            )
            if not rows:
                return 0
            # Sent together so the producer batches them; each send is awaited for its ack.
            await asyncio.gather(*(self._publish(broker, row) for row in rows))
            await conn.execute(
                f"DELETE FROM {self._table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

    async def _publish(self, broker: KafkaBroker, row: asyncpg.Record) -> None:
        stored = row["trace_context"]
        parent = propagate.extract(orjson.loads(stored) if isinstance(stored, str) else stored)
        with self._tracer.start_as_current_span(
            "outbox relay", context=parent, kind=SpanKind.PRODUCER
        ):
            await broker.publish(row["payload"], topic=row["topic"], key=row["key"], headers=_JSON)

    @contextlib.asynccontextmanager
    async def relaying(self, pool: asyncpg.Pool, broker: KafkaBroker) -> AsyncIterator[None]:
        """Run the relay for the duration of the block (a service's lifespan)."""
        task = asyncio.create_task(self.relay_forever(pool, broker))
        try:
            yield
        finally:
            await cancel_and_wait(task, "outbox relay")

    async def relay_forever(
        self, pool: asyncpg.Pool, broker: KafkaBroker, idle_poll_s: float = 1.0
    ) -> None:
        """Publish whatever is queued; sleep until woken by `wakeup` or `idle_poll_s` passes."""
        while True:
            try:
                published = await self.publish_pending(pool, broker)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay failed; will retry", error=repr(exc))
                published = 0
                await asyncio.sleep(idle_poll_s)
            if published == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), timeout=idle_poll_s)
                self.wakeup.clear()
