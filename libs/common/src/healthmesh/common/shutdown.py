"""A service's shutdown, step by step, each step bounded in time.

A step that hangs (a broker that never answers the consumer's leave-group, a task stuck holding
a database connection) must not keep the steps after it from running, closing the database pool
above all, nor the process from exiting: each lifespan runs its steps through `stop_within`,
which gives up on a step after a while and says which one it was.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from healthmesh.common.logging import get_logger

log = get_logger(__name__)

STEP_TIMEOUT_S = 10.0


async def stop_within(
    step: str, stop: Callable[[], Awaitable[object]], timeout_s: float = STEP_TIMEOUT_S
) -> bool:
    """Run one shutdown step; whether it finished. A step that fails or hangs is logged (naming
    it) and left behind, so the next step runs."""
    task = asyncio.ensure_future(stop())
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.error("shutdown step hung; going on without it", step=step, timeout_s=timeout_s)
        return False
    error = None if task.cancelled() else task.exception()
    if error is not None:
        log.error("shutdown step failed; going on", step=step, error=repr(error))
        return False
    return True


async def close_pool(
    pool: asyncpg.Pool, step: str = "database pool", timeout_s: float = STEP_TIMEOUT_S
) -> None:
    """Close the pool; if a connection is not given back in time, cut every connection."""
    if not await stop_within(step, pool.close, timeout_s):
        pool.terminate()


async def cancel_and_wait(task: "asyncio.Task[object]", step: str) -> None:
    """Cancel a background task and wait (bounded) for it to end."""
    task.cancel()

    async def ended() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await task

    await stop_within(step, ended)
