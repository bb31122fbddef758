"""Running syncs: workers claim jobs from the queue and pull each resource window by window.

For each resource of the job: start at the job's range, or earlier where the resource's cursor
lags (minus the resource's overlap), or at the backfill horizon when it was never synced; resume
after the job's recorded progress. Each window is fetched page by page, turned into deterministic
raw events and published (acks=all, a few at a time); only then is the window recorded and the
cursor advanced. A crash anywhere re-fetches at most one window per resource; the ids make that
change nothing.
"""

import asyncio
import contextlib
import math
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from faststream.kafka import KafkaBroker

from healthmesh.common.broker import PublishFailed, publish_many
from healthmesh.common.events import dump
from healthmesh.common.logging import get_logger
from healthmesh.common.topics import Topics
from healthmesh.connectors import jobs
from healthmesh.connectors.fetching import batches, envelopes, windows
from healthmesh.connectors.provider_http import (
    Backoff,
    CallRefused,
    ProviderHttp,
    ReauthRequired,
    SyncStopped,
)
from healthmesh.connectors.providers.base import Call, MalformedPage, Provider, Resource
from healthmesh.connectors.ratelimit import RateBudget
from healthmesh.connectors.tokens import AuthClient

log = get_logger(__name__)


class LeaseLost(Exception):
    """The job was cancelled or taken over by another worker: stop without writing."""


@dataclass(frozen=True)
class SyncConfig:
    backfill_days: int = 365
    lease_s: float = 60.0
    max_attempts: int = 5
    retry_base_s: float = 30.0
    provider_timeout_s: float = 30.0
    backoff: Backoff | None = None


@dataclass
class SyncDeps:
    pool: asyncpg.Pool
    broker: KafkaBroker
    http: httpx.AsyncClient
    auth: AuthClient
    budget: RateBudget
    providers: dict[str, Provider]
    base_url: Callable[[str], str]
    """Base URL of a provider's API (real host, or the simulator in sandbox mode)."""
    topics: Topics
    config: SyncConfig


class SyncWorkers:
    """`concurrency` claim-and-run loops in this process; jobs are shared with every other
    connectors process through the queue.

    An idle worker asks the queue again after `poll_s`, twice as long after each empty answer,
    up to `max_poll_s`: eight idle workers asking twice a second cost an import running
    alongside a sixth of its process's time. A worker that claims a job wakes the idle ones
    (more may be waiting), and so does `wake` (a sync this process just queued)."""

    def __init__(
        self, deps: SyncDeps, concurrency: int, poll_s: float = 0.5, max_poll_s: float = 5.0
    ) -> None:
        self._deps = deps
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._max_poll_s = max(poll_s, max_poll_s)
        self._name = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Idle workers ask the queue now rather than at their next poll."""
        self._woken.set()
        self._woken = asyncio.Event()  # the set one released everyone waiting on it

    async def run_forever(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index in range(self._concurrency):
                group.create_task(self._loop(f"{self._name}/{index}"))

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)

    async def _loop(self, worker: str) -> None:
        idle_s = self._poll_s
        while True:
            try:
                job = await jobs.claim(self._deps.pool, worker, self._deps.config.lease_s)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("claiming a sync failed", error=type(exc).__name__)
                job = None
            if job is None:
                await self._idle(idle_s)
                idle_s = min(2 * idle_s, self._max_poll_s)
                continue
            idle_s = self._poll_s
            self.wake()
            try:
                await run_job(self._deps, job, worker)
            except (OSError, asyncpg.PostgresError) as exc:
                # The database failed us while ending the job: its lease runs out and it is
                # taken over; this worker goes on with the next one rather than dying.
                log.warning("ending a sync failed", sync_id=str(job.sync_id), error=repr(exc))


async def run_job(deps: SyncDeps, job: jobs.Job, worker: str) -> None:
    """Run one claimed job to an end state, renewing its lease meanwhile."""
    provider = deps.providers.get(job.provider)
    if provider is None:
        await jobs.finish(
            deps.pool, job, worker, "failed", f"no connector for {job.provider}", 0, 0
        )
        return
    http = ProviderHttp(
        deps.http,
        provider,
        deps.base_url(job.provider),
        job.user_id,
        deps.auth.token_source(job.user_id, job.provider),
        deps.budget,
        deps.config.backoff,
        deps.config.provider_timeout_s,
    )
    log.info(
        "sync started",
        sync_id=str(job.sync_id),
        provider=job.provider,
        user_id=str(job.user_id),
        reason=job.reason,
    )
    work = asyncio.create_task(_learn_identity_then_pull(deps, job, worker, http))
    keeper = asyncio.create_task(_keep_lease(deps, job, worker, work))
    status, error = "done", None
    try:
        refused = await work
        if refused:
            status, error = "failed", "; ".join(refused)
    except (asyncio.CancelledError, LeaseLost):
        log.info("sync stopped: no longer ours", sync_id=str(job.sync_id))
        return
    except ReauthRequired as exc:
        status, error = "reauth_required", exc.reason
        with contextlib.suppress(SyncStopped):
            await deps.auth.report_reauth(job.user_id, job.provider, exc.reason)
    except SyncStopped as exc:
        status, error = "failed", exc.reason
        await _retry_later(deps, job, exc.reason)
    except PublishFailed as exc:
        status, error = "failed", str(exc)
        await _retry_later(deps, job, str(exc))
    except Exception as exc:
        log.exception("sync crashed", sync_id=str(job.sync_id))
        status, error = "failed", f"internal error ({type(exc).__name__})"
        await _retry_later(deps, job, error)
    finally:
        keeper.cancel()
    await jobs.finish(
        deps.pool, job, worker, status, error, http.stats.calls, http.stats.rate_limited
    )
    log.info(
        "sync ended",
        sync_id=str(job.sync_id),
        provider=job.provider,
        status=status,
        calls=http.stats.calls,
        rate_limited=http.stats.rate_limited,
        error=error,
    )


async def _retry_later(deps: SyncDeps, job: jobs.Job, reason: str) -> None:
    """Transient trouble: queue the same range again after a growing delay, up to max_attempts
    (then the scheduler's next round picks the connection up again)."""
    if job.attempts + 1 >= deps.config.max_attempts:
        return
    delay = deps.config.retry_base_s * 2**job.attempts
    retry_id = await jobs.request_sync(
        deps.pool,
        job.user_id,
        job.provider,
        job.reason,
        job.range_start,
        job.range_end,
        job.resources,
        attempts=job.attempts + 1,
        not_before_s=delay,
    )
    log.info(
        "sync will be retried",
        sync_id=str(job.sync_id),
        retry=str(retry_id),
        in_s=delay,
        reason=reason,
    )


async def _keep_lease(
    deps: SyncDeps, job: jobs.Job, worker: str, work: "asyncio.Task[list[str]]"
) -> None:
    while True:
        await asyncio.sleep(deps.config.lease_s / 3)
        try:
            ours = await jobs.renew(deps.pool, job.sync_id, worker, deps.config.lease_s)
        except (OSError, asyncpg.PostgresError):
            continue
        if not ours:
            work.cancel()
            return


async def _learn_identity_then_pull(
    deps: SyncDeps, job: jobs.Job, worker: str, http: ProviderHttp
) -> list[str]:
    """Providers that name users only in a profile endpoint are asked once per connection, so
    their webhooks can be matched to the user."""
    identity = deps.providers[job.provider].identity
    if identity is not None:
        link = await jobs.link_of(deps.pool, job.user_id, job.provider)
        if link is not None and link["provider_user_id"] is None:
            try:
                found = identity.read(await http.send(identity.call))
            except (CallRefused, MalformedPage) as exc:
                log.warning("provider identity unknown", provider=job.provider, error=str(exc))
            else:
                await jobs.learned_provider_user(deps.pool, job, found)
    return await _pull(deps, job, worker, http)


async def _pull(deps: SyncDeps, job: jobs.Job, worker: str, http: ProviderHttp) -> list[str]:
    """Every selected resource; returns the refusals (a refused resource does not stop the
    others)."""
    provider = deps.providers[job.provider]
    now = datetime.now(UTC)
    end = min(job.range_end or now, now)
    horizon = now - timedelta(days=deps.config.backfill_days)
    synced = await jobs.cursors(deps.pool, job.user_id, job.provider)
    refused = []
    for resource in provider.resources:
        if job.resources is not None and resource.name not in job.resources:
            continue
        cursor = synced.get(resource.name)
        start = min(job.range_start, cursor - resource.overlap if cursor else horizon)
        if resource.name in job.progress:
            start = max(start, datetime.fromisoformat(job.progress[resource.name]))
        try:
            await _pull_resource(deps, job, worker, http, provider, resource, start, end, cursor)
        except CallRefused as exc:
            log.warning(
                "resource refused",
                provider=provider.name,
                resource=resource.name,
                reason=exc.reason,
            )
            refused.append(exc.reason)
    return refused


async def _pull_resource(
    deps: SyncDeps,
    job: jobs.Job,
    worker: str,
    http: ProviderHttp,
    provider: Provider,
    resource: Resource,
    start: datetime,
    end: datetime,
    cursor: datetime | None,
) -> None:
    topic = deps.topics.raw(provider.name)
    key = str(job.user_id).encode()
    pages = 0  # page calls of the current window

    async def send_page(call: Call) -> Any:
        nonlocal pages
        pages += 1
        return await http.send(call)

    for window_start, window_end in windows(start, end, resource.max_window):
        items = published = pages = 0
        # Stamped with when the window's first page was asked for: a deletion webhook heard of
        # later wins over the record as these pages held it (the normalizer's drop_withdrawn).
        asked_at = datetime.now(UTC)
        async for batch in batches(resource, window_start, window_end, send_page):
            events = envelopes(provider, resource, job.user_id, batch, asked_at)
            await publish_many(deps.broker, topic, key, [dump(event) for event in events])
            items += len(batch)
            published += len(events)
        # The cursor moves only over ground that joins it: a window starting after it would
        # leave a gap behind.
        joins = cursor is None or window_start <= cursor
        if joins:
            cursor = max(cursor or window_end, window_end)
        # The fewest calls this window needs: by the page size where the provider documents
        # one; otherwise every page it chose to cut was unavoidable (retries are not pages).
        fewest = pages
        if resource.page_size:
            fewest = max(1, math.ceil(items / resource.page_size))
            fewest += int(resource.ends_on_empty_page)
        ours = await jobs.window_done(
            deps.pool,
            job,
            worker,
            resource.name,
            window_end,
            joins,
            http.stats.calls,
            http.stats.rate_limited,
            published,
            fewest,
        )
        if not ours:
            raise LeaseLost
