"""The sync queue and the shared rate budget on a real PostgreSQL: joining, exclusive claims,
lease takeover, cursors, and two "processes" sharing one provider budget."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import asyncpg
import pytest
import pytest_asyncio

from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.connectors import jobs
from healthmesh.connectors.providers.base import (
    Limit,
    Ok,
    Provider,
    WebhookRefused,
    no_usage_headers,
)
from healthmesh.connectors.ratelimit import RateBudget

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url)
    await apply_migrations(pool, "connectors", files("healthmesh.connectors") / "migrations")
    yield pool
    await pool.close()


def _refuse(*_: object) -> None:
    raise WebhookRefused(403, "test provider")


def provider(*limits: Limit) -> Provider:
    return Provider(
        name="testprov",
        resources=(),
        limits=limits,
        check_answer=lambda answer: Ok(answer.json),
        usage_from_headers=no_usage_headers,
        verify_webhook=_refuse,  # type: ignore[arg-type]
    )


async def test_a_second_request_joins_the_queued_sync_and_widens_it(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    first = await jobs.request_sync(pool, user, "oura", "schedule", T0, resources=["sleep"])
    second = await jobs.request_sync(
        pool, user, "oura", "webhook", T0 - timedelta(days=3), resources=["workout"]
    )
    assert second == first
    row = await pool.fetchrow("SELECT * FROM connectors.sync_jobs WHERE sync_id = $1", first)
    assert row["range_start"] == T0 - timedelta(days=3)
    assert sorted(row["resources"]) == ["sleep", "workout"]
    third = await jobs.request_sync(pool, user, "oura", "manual", T0)
    assert third == first
    assert await pool.fetchval("SELECT resources FROM connectors.sync_jobs") is None  # all
    assert await pool.fetchval("SELECT count(*) FROM connectors.sync_jobs") == 1


async def test_one_running_sync_per_user_and_provider(pool: asyncpg.Pool) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    await jobs.request_sync(pool, user, "oura", "connect", T0)
    await jobs.request_sync(pool, other, "oura", "connect", T0)
    claims = await asyncio.gather(*(jobs.claim(pool, f"w{i}", 60) for i in range(6)))
    claimed = [c for c in claims if c is not None]
    assert sorted(str(c.user_id) for c in claimed) == sorted([str(user), str(other)])
    # A request while one runs waits queued behind it; nobody may claim it yet.
    waiting = await jobs.request_sync(pool, user, "oura", "manual", T0)
    assert waiting not in {c.sync_id for c in claimed}
    assert await jobs.claim(pool, "w9", 60) is None
    running = next(c for c in claimed if c.user_id == user)
    worker = await pool.fetchval(
        "SELECT worker FROM connectors.sync_jobs WHERE sync_id = $1", running.sync_id
    )
    await jobs.finish(pool, running, worker, "done", None, 3, 0)
    after = await jobs.claim(pool, "w9", 60)
    assert after is not None and after.sync_id == waiting


async def test_a_dead_workers_job_is_taken_over_and_it_can_no_longer_write(
    pool: asyncpg.Pool,
) -> None:
    user = uuid.uuid4()
    await jobs.request_sync(pool, user, "whoop", "connect", T0)
    job = await jobs.claim(pool, "dead", lease_s=0.2)
    assert job is not None
    assert await jobs.claim(pool, "alive", 60) is None
    await asyncio.sleep(0.4)
    taken = await jobs.claim(pool, "alive", 60)
    assert taken is not None and taken.sync_id == job.sync_id
    assert not await jobs.renew(pool, job.sync_id, "dead", 60)
    wrote = await jobs.window_done(pool, job, "dead", "cycle", T0, True, 1, 0, 1, 1)
    assert not wrote
    assert await jobs.cursors(pool, user, "whoop") == {}
    assert await jobs.window_done(pool, taken, "alive", "cycle", T0, True, 1, 0, 1, 1)
    assert await jobs.cursors(pool, user, "whoop") == {"cycle": T0}


async def test_the_cursor_never_moves_back(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    await jobs.request_sync(pool, user, "strava", "connect", T0)
    job = await jobs.claim(pool, "w", 60)
    assert job is not None
    await jobs.window_done(pool, job, "w", "activities", T0 + timedelta(days=5), True, 1, 0, 0, 1)
    await jobs.window_done(pool, job, "w", "activities", T0 + timedelta(days=1), True, 2, 0, 0, 1)
    assert await jobs.cursors(pool, user, "strava") == {"activities": T0 + timedelta(days=5)}


async def test_disconnecting_cancels_open_syncs(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    await jobs.link_connected(pool, user, "oura", "puid", T0)
    await jobs.request_sync(pool, user, "oura", "connect", T0)
    job = await jobs.claim(pool, "w", 60)
    assert job is not None
    await jobs.request_sync(pool, user, "oura", "manual", T0)
    await jobs.link_status(pool, user, "oura", "disconnected", None)
    statuses = await pool.fetch("SELECT status FROM connectors.sync_jobs")
    assert {r["status"] for r in statuses} == {"cancelled"}
    assert not await jobs.renew(pool, job.sync_id, "w", 60)


async def test_a_reauth_arriving_as_jobs_end_never_deadlocks(pool: asyncpg.Pool) -> None:
    """Ending a job and marking its link (a reauth from the consumer, in one transaction) take
    the link and the job in the same order; the other order deadlocked under load."""
    links = [(uuid.uuid4(), "oura") for _ in range(3)]
    claimed = []
    for user, provider in links:
        await jobs.link_connected(pool, user, provider, "puid", T0)
        await jobs.request_sync(pool, user, provider, "connect", T0)
        job = await jobs.claim(pool, f"w-{user}", 60)
        assert job is not None
        claimed.append(job)

    async def reauth(user: uuid.UUID, provider: str) -> None:
        """The consumer's transaction: it holds the link while it goes on to the jobs."""
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE connectors.links SET updated_at = now() WHERE user_id = $1", user
            )
            await asyncio.sleep(0.2)
            await jobs.link_status(conn, user, provider, "reauth_required", "refused")

    async def end(job: jobs.Job) -> None:
        await asyncio.sleep(0.05)  # while the reauth holds the link
        await jobs.finish(pool, job, f"w-{job.user_id}", "done", None, 1, 0)

    await asyncio.gather(
        *(end(job) for job in claimed), *(reauth(user, provider) for user, provider in links)
    )
    statuses = await pool.fetch("SELECT status FROM connectors.links")
    assert {r["status"] for r in statuses} == {"reauth_required"}


async def test_the_scheduler_queues_due_connections_once_and_jitters_the_next_time(
    pool: asyncpg.Pool,
) -> None:
    users = [uuid.uuid4() for _ in range(30)]
    for user in users:
        await jobs.link_connected(pool, user, "withings", None, T0)
    await jobs.link_status(pool, users[0], "withings", "reauth_required", "gone")
    counts = await asyncio.gather(*(jobs.schedule_due(pool, 10, 3600, 86400) for _ in range(5)))
    assert sum(counts) == 29
    assert await pool.fetchval("SELECT count(*) FROM connectors.sync_jobs") == 29
    assert await jobs.schedule_due(pool, 10, 3600, 86400) == 0
    spread = await pool.fetchval(
        """SELECT extract(epoch FROM max(next_sync_at) - min(next_sync_at))
           FROM connectors.links WHERE status = 'connected'"""
    )
    assert 0 < spread < 0.4 * 3600


async def test_the_schedule_skips_a_connection_that_is_syncing_or_just_synced(
    pool: asyncpg.Pool,
) -> None:
    busy, fresh, stale = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user in (busy, fresh, stale):
        await jobs.link_connected(pool, user, "whoop", None, T0)
    await jobs.request_sync(pool, fresh, "whoop", "connect", T0)
    job = await jobs.claim(pool, "w", 60)
    assert job is not None and job.user_id == fresh
    await jobs.finish(pool, job, "w", "done", None, 1, 0)
    await jobs.request_sync(pool, busy, "whoop", "connect", T0)
    assert await jobs.claim(pool, "w", 60) is not None  # busy's backfill is running

    assert await jobs.schedule_due(pool, 10, 3600, 86400) == 3  # each gets its next time
    queued = await pool.fetch(
        "SELECT user_id, reason FROM connectors.sync_jobs WHERE status = 'queued'"
    )
    assert [(r["user_id"], r["reason"]) for r in queued] == [(stale, "schedule")]


async def test_two_processes_share_one_budget(pool: asyncpg.Pool, database_url: str) -> None:
    """Two RateBudgets on separate pools stand for two worker processes: together they make
    no more calls per window than the limit allows."""
    other_pool = await open_pool(database_url)
    try:
        limited = provider(Limit("app", capacity=4, seconds=2))
        user = uuid.uuid4()
        stamps: list[float] = []

        async def caller(budget: RateBudget) -> None:
            for _ in range(6):
                await budget.take(limited, user)
                stamps.append(time.time())

        await asyncio.gather(caller(RateBudget(pool)), caller(RateBudget(other_pool)))
    finally:
        await other_pool.close()
    per_window: dict[int, int] = {}
    for stamp in stamps:
        per_window[int(stamp // 2)] = per_window.get(int(stamp // 2), 0) + 1
    assert len(stamps) == 12
    assert max(per_window.values()) <= 4, per_window
    assert len(per_window) >= 3


async def test_per_user_budgets_are_separate_and_a_pause_stops_everyone(
    pool: asyncpg.Pool,
) -> None:
    limited = provider(Limit("user", capacity=2, seconds=60, per_user=True))
    budget = RateBudget(pool)
    a, b = uuid.uuid4(), uuid.uuid4()
    for user in (a, a, b, b):
        await asyncio.wait_for(budget.take(limited, user), 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(budget.take(limited, a), 0.5)
    c = uuid.uuid4()
    await budget.pause(limited, c, 0.6)
    started = time.monotonic()
    await budget.take(limited, c)
    assert time.monotonic() - started >= 0.5


async def test_the_providers_own_count_wins_when_higher(pool: asyncpg.Pool) -> None:
    limited = provider(Limit("app", capacity=5, seconds=3600))
    budget = RateBudget(pool)
    user = uuid.uuid4()
    await budget.take(limited, user)
    await budget.observe(limited, user, {"app": 5})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(budget.take(limited, user), 0.5)
