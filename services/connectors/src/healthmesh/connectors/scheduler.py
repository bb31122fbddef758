"""Periodic incremental syncs for every connected (user, provider).

No task per user: each tick asks the database for the connections that are due (in batches,
FOR UPDATE SKIP LOCKED, so several connectors processes may tick at once), queues their syncs
and sets their next time with jitter, so a million connections cost a few queries per tick.
"""

import asyncio
import random

import asyncpg

from healthmesh.common.logging import get_logger
from healthmesh.connectors import jobs
from healthmesh.connectors.ratelimit import RateBudget

log = get_logger(__name__)


async def schedule_forever(
    pool: asyncpg.Pool,
    budget: RateBudget,
    interval_s: float,
    tick_s: float,
    lookback_s: float,
    batch: int = 500,
) -> None:
    while True:
        try:
            queued = batch
            while queued == batch:
                queued = await jobs.schedule_due(pool, batch, interval_s, lookback_s)
                if queued:
                    log.info("scheduled syncs", count=queued)
            await budget.forget_old()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("scheduling failed; next tick retries", error=type(exc).__name__)
        await asyncio.sleep(tick_s * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
