"""Idle sync workers ask the queue less and less often, and are woken when there is work: a
claimed job wakes the others, and so does a sync this process queued (`wake`).

The queue is stood in for by a function counting the claims (the claim's SQL has its own tests
in test_sync_queue.py): what is under test is when the workers ask, not what they are told."""

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from healthmesh.connectors import jobs, syncer
from healthmesh.connectors.syncer import SyncConfig, SyncDeps, SyncWorkers

DEPS = cast(SyncDeps, SimpleNamespace(pool=None, config=SyncConfig()))


def a_job() -> jobs.Job:
    return jobs.Job(
        sync_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        provider="oura",
        reason="manual",
        range_start=datetime(2026, 1, 1, tzinfo=UTC),
        range_end=None,
        resources=None,
        progress={},
        attempts=0,
    )


class Queue:
    """Claims by worker and when, and the jobs to hand out."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.claims: list[tuple[str, float]] = []
        self.jobs: list[jobs.Job] = []
        self.ran: list[str] = []
        self.started: list[float] = []
        self.work_s = 0.0

    async def claim(self, _pool: object, worker: str, _lease_s: float) -> jobs.Job | None:
        self.claims.append((worker, time.monotonic() - self.began))
        return self.jobs.pop() if self.jobs else None

    async def run_job(self, _deps: SyncDeps, _job: jobs.Job, worker: str) -> None:
        self.ran.append(worker)
        self.started.append(time.monotonic() - self.began)
        await asyncio.sleep(self.work_s)

    def times(self, worker_suffix: str) -> list[float]:
        return [t for w, t in self.claims if w.endswith(worker_suffix)]


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Queue:
    fake = Queue()
    monkeypatch.setattr(jobs, "claim", fake.claim)
    monkeypatch.setattr(syncer, "run_job", fake.run_job)
    return fake


@pytest.fixture
async def running() -> AsyncIterator[Callable[[SyncWorkers], None]]:
    tasks: list[asyncio.Task[None]] = []

    def start(workers: SyncWorkers) -> None:
        tasks.append(asyncio.create_task(workers.run_forever()))

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_idle_worker_asks_half_as_often_each_time_up_to_the_longest_wait(
    queue: Queue, running: Callable[[SyncWorkers], None]
) -> None:
    running(SyncWorkers(DEPS, 1, poll_s=0.05, max_poll_s=0.2))
    await asyncio.sleep(1.0)
    times = queue.times("/0")
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    # waits of 0.05, 0.1, 0.2, then 0.2 for good: claims at about 0, 0.05, 0.15, 0.35, 0.55,
    # 0.75, 0.95 s, so 7 in the first second (polling every 0.05 s would have been 20)
    assert 6 <= len(times) <= 8, times
    assert gaps[:3] == pytest.approx([0.05, 0.1, 0.2], abs=0.04)
    assert all(g == pytest.approx(0.2, abs=0.04) for g in gaps[3:]), gaps


async def test_wake_makes_idle_workers_ask_at_once(
    queue: Queue, running: Callable[[SyncWorkers], None]
) -> None:
    workers = SyncWorkers(DEPS, 2, poll_s=0.05, max_poll_s=30)
    running(workers)
    await asyncio.sleep(0.5)  # both back off: their next ask is 0.8 s after their fifth
    asked = len(queue.claims)
    queue.jobs.append(a_job())
    woken_at = time.monotonic() - queue.began
    workers.wake()
    await asyncio.sleep(0.1)
    first: dict[str, float] = {}  # each worker's first ask after the wake
    for worker, at in queue.claims[asked:]:
        first.setdefault(worker, at)
    assert len(first) == 2 and all(t - woken_at < 0.05 for t in first.values()), (woken_at, first)
    assert len(queue.ran) == 1


async def test_a_claimed_job_wakes_the_other_idle_workers(
    queue: Queue, running: Callable[[SyncWorkers], None]
) -> None:
    queue.work_s = 0.8
    queue.jobs.append(a_job())
    running(SyncWorkers(DEPS, 3, poll_s=0.1, max_poll_s=30))
    # One worker runs the first job until 0.8 s, then asks at 0.8, 0.9, 1.1, 1.5 s; the two
    # others find nothing and back off: they ask at 0, 0.1, 0.3, 0.7, then 1.5 s.
    await asyncio.sleep(0.85)
    queue.jobs.extend(a_job() for _ in range(2))
    # At 0.9 s the first takes one and wakes the two others: one of them takes the last at
    # once. Unwoken, the last would wait for their poll at 1.5 s.
    await asyncio.sleep(0.45)
    assert len(queue.started) == 3 and not queue.jobs, queue.started
    assert queue.started[2] < 1.2, queue.started
