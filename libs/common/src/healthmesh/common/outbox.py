"""Transactional outbox: events that must follow a database write are inserted in the same
transaction (`add`), then published by a relay (`relay_forever`) and deleted once the broker
acknowledged them. A crash between commit and publish delays an event; it never loses one, and
at worst publishes it twice (consumers deduplicate by event id / revision).

Each service keeps its own `<schema>.outbox` table (id bigserial, topic, key, payload jsonb).
"""

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from faststream.kafka import KafkaBroker

from healthmesh.common.logging import get_logger

log = get_logger(__name__)

OUTBOX_TABLE_SQL = """
CREATE TABLE {schema}.outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes
    payload: dict[str, Any]


class Outbox:
    def __init__(self, schema: str) -> None:
        self._table = f"{schema}.outbox"
        self.wakeup = asyncio.Event()

    async def add(self, conn: asyncpg.Connection, messages: Sequence[OutboxMessage]) -> None:
        """Queue messages inside the caller's transaction."""
        if not messages:
            return
        await conn.execute(
            f"INSERT INTO {self._table} (topic, key, payload) "
            "SELECT t, k, p::jsonb FROM unnest($1::text[], $2::bytea[], $3::text[]) AS m(t, k, p)",
            [m.topic for m in messages],
            [m.key for m in messages],
            [orjson.dumps(m.payload).decode() for m in messages],
        )

    async def publish_pending(
        self, pool: asyncpg.Pool, broker: KafkaBroker, limit: int = 1000
    ) -> int:
        """Publish up to `limit` queued messages in order; return how many went out."""
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT id, topic, key, payload FROM {self._table} "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            if not rows:
                return 0
            # Sent together so the producer batches them; each send is awaited for its ack.
            await asyncio.gather(
                *(broker.publish(r["payload"], topic=r["topic"], key=r["key"]) for r in rows)
            )
            await conn.execute(
                f"DELETE FROM {self._table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

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
