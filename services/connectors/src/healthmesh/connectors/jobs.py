"""The connectors' SQL for provider syncs: links, cursors and the sync queue.

The queue's rules live in the schema (002_sync.sql): one queued and one running job per
(user, provider). A request while one is queued joins it (same sync_id, range widened); while
one runs, the request waits queued behind it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID, uuid4

import asyncpg

Executor: TypeAlias = "asyncpg.Pool | asyncpg.Connection"


@dataclass(frozen=True)
class Job:
    sync_id: UUID
    user_id: UUID
    provider: str
    reason: str
    range_start: datetime
    range_end: datetime | None
    resources: list[str] | None
    progress: dict[str, str]
    attempts: int


# --- links -----------------------------------------------------------------------------------


async def link_connected(
    conn: Executor,
    user_id: UUID,
    provider: str,
    provider_user_id: str | None,
    connected_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO connectors.links
               (user_id, provider, provider_user_id, status, connected_at, next_sync_at)
           VALUES ($1, $2, $3, 'connected', $4, now())
           ON CONFLICT (user_id, provider) DO UPDATE SET
               provider_user_id = coalesce(EXCLUDED.provider_user_id,
                                           connectors.links.provider_user_id),
               status = 'connected', connected_at = EXCLUDED.connected_at,
               last_error = NULL, updated_at = now()""",
        user_id,
        provider,
        provider_user_id,
        connected_at,
    )


async def link_status(
    conn: Executor, user_id: UUID, provider: str, status: str, error: str | None
) -> None:
    """reauth_required or disconnected: no more syncs; open jobs are cancelled."""
    await conn.execute(
        """UPDATE connectors.links SET status = $3, last_error = $4, updated_at = now()
           WHERE user_id = $1 AND provider = $2""",
        user_id,
        provider,
        status,
        error,
    )
    await conn.execute(
        """UPDATE connectors.sync_jobs SET status = 'cancelled', finished_at = now(),
               error = $3, lease_until = NULL
           WHERE user_id = $1 AND provider = $2 AND status IN ('queued', 'running')""",
        user_id,
        provider,
        f"connection {status}",
    )


async def link_of(conn: Executor, user_id: UUID, provider: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM connectors.links WHERE user_id = $1 AND provider = $2", user_id, provider
    )


async def learned_provider_user(pool: asyncpg.Pool, job: Job, provider_user_id: str) -> None:
    """Store the id the identity call gave; that call counts among the job's necessary ones."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """UPDATE connectors.links SET provider_user_id = $3, updated_at = now()
               WHERE user_id = $1 AND provider = $2""",
            job.user_id,
            job.provider,
            provider_user_id,
        )
        await conn.execute(
            "UPDATE connectors.sync_jobs SET min_calls = min_calls + 1 WHERE sync_id = $1",
            job.sync_id,
        )


async def users_of_provider_user(
    conn: Executor, provider: str, provider_user_id: str
) -> list[UUID]:
    rows = await conn.fetch(
        """SELECT user_id FROM connectors.links
           WHERE provider = $1 AND provider_user_id = $2 AND status = 'connected'""",
        provider,
        provider_user_id,
    )
    return [row["user_id"] for row in rows]


# --- requests --------------------------------------------------------------------------------


async def request_sync(
    conn: Executor,
    user_id: UUID,
    provider: str,
    reason: str,
    start: datetime,
    end: datetime | None = None,
    resources: list[str] | None = None,
    attempts: int = 0,
    not_before_s: float = 0.0,
) -> UUID:
    """Queue a sync, or join the one already queued for this (user, provider): its range and
    resources widen to cover both requests, and its id is returned."""
    sync_id: UUID = await conn.fetchval(
        """INSERT INTO connectors.sync_jobs AS j
               (sync_id, user_id, provider, reason, status, range_start, range_end, resources,
                attempts, not_before)
           VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8,
                   now() + make_interval(secs => $9))
           ON CONFLICT (user_id, provider) WHERE status = 'queued' DO UPDATE SET
               range_start = least(j.range_start, EXCLUDED.range_start),
               range_end = CASE WHEN j.range_end IS NULL OR EXCLUDED.range_end IS NULL THEN NULL
                                ELSE greatest(j.range_end, EXCLUDED.range_end) END,
               resources = CASE WHEN j.resources IS NULL OR EXCLUDED.resources IS NULL THEN NULL
                                ELSE ARRAY(SELECT DISTINCT unnest(j.resources || EXCLUDED.resources)
                                           ORDER BY 1) END,
               attempts = greatest(j.attempts, EXCLUDED.attempts),
               not_before = least(j.not_before, EXCLUDED.not_before)
           RETURNING sync_id""",
        uuid4(),
        user_id,
        provider,
        reason,
        start,
        end,
        resources,
        attempts,
        not_before_s,
    )
    return sync_id


# --- workers ---------------------------------------------------------------------------------


async def claim(pool: asyncpg.Pool, worker: str, lease_s: float) -> Job | None:
    """The oldest runnable job: queued with nobody running for its (user, provider), or running
    under an expired lease (its worker died). Safe under concurrent claimers."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """SELECT j.* FROM connectors.sync_jobs j
               WHERE j.not_before <= now()
                 AND ((j.status = 'queued' AND NOT EXISTS (
                          SELECT 1 FROM connectors.sync_jobs r
                          WHERE r.user_id = j.user_id AND r.provider = j.provider
                            AND r.status = 'running'))
                      OR (j.status = 'running' AND j.lease_until < now()))
               ORDER BY j.not_before
               LIMIT 1
               FOR UPDATE SKIP LOCKED"""
        )
        if row is None:
            return None
        try:
            async with conn.transaction():
                await conn.execute(
                    """UPDATE connectors.sync_jobs SET status = 'running', worker = $2,
                           lease_until = now() + make_interval(secs => $3),
                           started_at = coalesce(started_at, now())
                       WHERE sync_id = $1""",
                    row["sync_id"],
                    worker,
                    lease_s,
                )
        except asyncpg.UniqueViolationError:
            return None  # another worker started this (user, provider) a moment ago
    return Job(
        sync_id=row["sync_id"],
        user_id=row["user_id"],
        provider=row["provider"],
        reason=row["reason"],
        range_start=row["range_start"],
        range_end=row["range_end"],
        resources=list(row["resources"]) if row["resources"] is not None else None,
        progress=dict(row["progress"]),
        attempts=row["attempts"],
    )


async def renew(pool: asyncpg.Pool, sync_id: UUID, worker: str, lease_s: float) -> bool:
    """Extend the lease; False when the job is no longer ours (cancelled, or taken over)."""
    renewed = await pool.fetchval(
        """UPDATE connectors.sync_jobs SET lease_until = now() + make_interval(secs => $3)
           WHERE sync_id = $1 AND worker = $2 AND status = 'running'
           RETURNING true""",
        sync_id,
        worker,
        lease_s,
    )
    return bool(renewed)


async def cursors(pool: Executor, user_id: UUID, provider: str) -> dict[str, datetime]:
    rows = await pool.fetch(
        """SELECT resource, synced_until FROM connectors.cursors
           WHERE user_id = $1 AND provider = $2""",
        user_id,
        provider,
    )
    return {row["resource"]: row["synced_until"] for row in rows}


async def window_done(
    pool: asyncpg.Pool,
    job: Job,
    worker: str,
    resource: str,
    until: datetime,
    advance_cursor: bool,
    calls: int,
    rate_limited: int,
    events: int,
    min_calls: int,
) -> bool:
    """Record a published window: job progress, counters and (when the window continued from
    the cursor) the cursor. False when the job is no longer ours; nothing is written then."""
    async with pool.acquire() as conn, conn.transaction():
        ours = await conn.fetchval(
            """UPDATE connectors.sync_jobs SET
                   progress = progress || jsonb_build_object($3::text, $4::text),
                   calls = $5, rate_limited = $6, events = events + $7,
                   min_calls = min_calls + $8
               WHERE sync_id = $1 AND worker = $2 AND status = 'running'
               RETURNING true""",
            job.sync_id,
            worker,
            resource,
            until.isoformat(),
            calls,
            rate_limited,
            events,
            min_calls,
        )
        if not ours:
            return False
        if advance_cursor:
            await conn.execute(
                """INSERT INTO connectors.cursors AS c (user_id, provider, resource, synced_until)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (user_id, provider, resource) DO UPDATE SET
                       synced_until = greatest(c.synced_until, EXCLUDED.synced_until),
                       updated_at = now()""",
                job.user_id,
                job.provider,
                resource,
                until,
            )
    return True


async def finish(
    pool: asyncpg.Pool,
    job: Job,
    worker: str,
    status: str,
    error: str | None,
    calls: int,
    rate_limited: int,
) -> None:
    """End a job; a successful one stamps the link's last_sync_at."""
    async with pool.acquire() as conn, conn.transaction():
        # The link first, then the job: the order `link_status` takes them in, so a reauth or a
        # disconnect arriving as a job ends cannot deadlock with it.
        await conn.execute(
            "SELECT 1 FROM connectors.links WHERE user_id = $1 AND provider = $2 FOR UPDATE",
            job.user_id,
            job.provider,
        )
        ours = await conn.fetchval(
            """UPDATE connectors.sync_jobs SET status = $3, error = $4, finished_at = now(),
                   lease_until = NULL, calls = $5, rate_limited = $6
               WHERE sync_id = $1 AND worker = $2 AND status = 'running'
               RETURNING true""",
            job.sync_id,
            worker,
            status,
            error,
            calls,
            rate_limited,
        )
        if not ours:
            return
        await conn.execute(
            """UPDATE connectors.links SET
                   last_sync_at = CASE WHEN $3 = 'done' THEN now() ELSE last_sync_at END,
                   last_error = CASE WHEN $3 = 'done' THEN NULL ELSE $4 END,
                   updated_at = now()
               WHERE user_id = $1 AND provider = $2""",
            job.user_id,
            job.provider,
            status,
            error,
        )


async def job_view(pool: Executor, sync_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        """SELECT sync_id, user_id, provider, reason, status, range_start, range_end, resources,
                  calls, min_calls, rate_limited, events, error, requested_at, started_at,
                  finished_at
           FROM connectors.sync_jobs WHERE sync_id = $1""",
        sync_id,
    )
    return dict(row) if row else None


# --- scheduler -------------------------------------------------------------------------------


async def schedule_due(pool: asyncpg.Pool, batch: int, interval_s: float, lookback_s: float) -> int:
    """Queue an incremental sync for up to `batch` connections that are due, and set each one's
    next time (interval ± 20 % jitter) in the same transaction. Many schedulers may run.
    A connection with a sync queued or running, or one that finished a sync within the last
    interval (its first backfill, a webhook's), is only given its next time: the sync it has
    or just had covers this round."""
    async with pool.acquire() as conn, conn.transaction():
        due = await conn.fetch(
            """WITH due AS (
                   SELECT user_id, provider FROM connectors.links
                   WHERE status = 'connected' AND next_sync_at <= now()
                   ORDER BY next_sync_at LIMIT $1
                   FOR UPDATE SKIP LOCKED)
               UPDATE connectors.links l
               SET next_sync_at = now() + make_interval(secs => $2 * (0.8 + random() * 0.4))
               FROM due WHERE l.user_id = due.user_id AND l.provider = due.provider
               RETURNING l.user_id, l.provider,
                   l.last_sync_at > now() - make_interval(secs => $2 * 0.8) AS fresh""",
            batch,
            interval_s,
        )
        for row in due:
            if row["fresh"]:
                continue
            await conn.execute(
                """INSERT INTO connectors.sync_jobs
                       (sync_id, user_id, provider, reason, status, range_start)
                   SELECT $1, $2, $3, 'schedule', 'queued', now() - make_interval(secs => $4)
                   WHERE NOT EXISTS (
                       SELECT 1 FROM connectors.sync_jobs
                       WHERE user_id = $2 AND provider = $3 AND status IN ('queued', 'running'))
                   ON CONFLICT (user_id, provider) WHERE status = 'queued' DO NOTHING""",
                uuid4(),
                row["user_id"],
                row["provider"],
                lookback_s,
            )
    return len(due)
