"""Shutdown steps are bounded: one that hangs or fails is logged and the next one runs."""

import asyncio
import time

import asyncpg
import pytest
from structlog.testing import capture_logs

from healthmesh.common.db import open_pool
from healthmesh.common.shutdown import cancel_and_wait, close_pool, stop_within


async def test_a_step_that_finishes_is_waited_for() -> None:
    ran: list[str] = []

    async def step() -> None:
        await asyncio.sleep(0.01)
        ran.append("step")

    assert await stop_within("quick", step, timeout_s=5)
    assert ran == ["step"]


async def test_a_step_that_hangs_is_left_behind_and_named() -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    with capture_logs() as logs:
        started = time.monotonic()
        assert not await stop_within("broker", hang, timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert [(e["event"], e["step"]) for e in logs] == [
        ("shutdown step hung; going on without it", "broker")
    ]


async def test_a_step_that_ignores_cancellation_does_not_hold_up_the_next() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # cleaning up for a while before it ends

    started = time.monotonic()
    assert not await stop_within("stubborn", stubborn, timeout_s=0.2)
    assert time.monotonic() - started < 2


async def test_a_step_that_fails_is_logged_with_its_error() -> None:
    async def fail() -> None:
        raise RuntimeError("connection reset")

    with capture_logs() as logs:
        assert not await stop_within("http client", fail, timeout_s=5)
    assert logs[0]["step"] == "http client"
    assert "connection reset" in logs[0]["error"]


async def test_a_background_task_is_cancelled_and_waited_for() -> None:
    task: asyncio.Task[object] = asyncio.create_task(asyncio.sleep(60))
    await cancel_and_wait(task, "relay")
    assert task.cancelled()


@pytest.mark.integration
async def test_a_pool_whose_connection_is_never_given_back_is_cut(database_url: str) -> None:
    pool = await open_pool(database_url)
    held = await pool.acquire()  # a task stuck with it would never release it
    started = time.monotonic()
    await close_pool(pool, timeout_s=0.3)
    assert time.monotonic() - started < 5
    with pytest.raises(asyncpg.InterfaceError):
        await held.fetchval("SELECT 1")
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire()
