"""Benchmark: the normalizer's write path, from a pre-filled raw topic to committed rows, side by
side with a plain COPY of the same rows into the same table (the machine's ceiling).

What runs, and why:
- A fresh database (the normalizer's migrations applied) and topic prefix on embedded PostgreSQL
  and Tansu (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS). `raw.oura` is pre-filled with days of
  minute-level heart rate, one event per user and UTC day (1,440 samples), exactly as the Oura
  connector publishes `heartrate`: the densest data any source sends, so rows/s is what counts.
- Ceiling: the same events are mapped here (untimed) and their rows COPY'd straight into
  normalizer.samples (same table, same indexes) in chunks, timing only the COPY: the rate no
  write path into that table can beat on this machine.
- The table is emptied, then the normalizer runs as its own process and consumes the topic:
  envelope parsing, mapping (pint, ids, plausibility), raw archive, staged upsert, rollups,
  outbox, offsets after commit. Committed rows are counted through the raw archive, which is
  written in the same transaction (every event is 1,440 rows).
- Both rates are reported per tenth of the run as the table grows (flat, or not), with their
  ratio, the normalizer's peak RSS, and how many metrics.unified events were still in the outbox
  when the last row committed. The machine is shared and noisy: compare ratios between runs.

    uv run python benchmarks/normalizer_write.py --rows 1000000
"""

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka.partitioner import murmur2  # noqa: TID251 - where keys land, to spread users
from benchkit import fresh_run, rss_bytes, say
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import make_broker, publish_many
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.ids import raw_event_id
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import (
    SERVICES,
    Infrastructure,
    Service,
    service_env,
    start_service,
    wait_ready,
)
from healthmesh.normalizer import db
from healthmesh.normalizer.sources import oura

ROWS_PER_EVENT = 1440
FIRST_DAY = datetime(2025, 1, 1, tzinfo=UTC)
SEGMENTS = 10
PARTITIONS = 6
"""Of each topic, as `create_topics` makes them."""
COPY_EVENTS = 35
"""Events per COPY call in the ceiling run (about 50,000 rows, what one normalizer batch holds)."""


@dataclass(frozen=True)
class Options:
    rows: int
    users: int
    processes: int
    timeout_s: float


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="samples to write")
    parser.add_argument("--users", type=int, default=100, help="users the days are spread over")
    parser.add_argument(
        "--processes", type=int, default=1, help="normalizer processes sharing the partitions"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for the normalizer")
    args = parser.parse_args(argv)
    return Options(args.rows, args.users, args.processes, args.timeout)


def events(options: Options) -> list[tuple[uuid.UUID, int]]:
    """(user, day number) of every event, users interleaved as many syncs would be."""
    count = max(1, options.rows // ROWS_PER_EVENT)
    users = spread_users(options.users, PARTITIONS)
    return [(users[i % len(users)], i // len(users)) for i in range(count)]


def spread_users(count: int, partitions: int) -> list[uuid.UUID]:
    """`count` user ids whose keys land evenly on the raw topic's partitions, as the keys of
    many real users do. A hundred sequential ids hash unevenly (15 to 20 a partition: one
    process got 55 users' events, the other 45), so one ran out of work early and the other
    finished the last tenth alone."""
    per_partition = -(-count // partitions)
    taken: dict[int, int] = {}
    users: list[uuid.UUID] = []
    candidate = 0
    while len(users) < count:
        candidate += 1
        user = uuid.UUID(int=candidate)
        # The Kafka client's default partitioner (murmur2 of the key).
        partition = (murmur2(str(user).encode()) & 0x7FFFFFFF) % partitions
        if taken.get(partition, 0) < per_partition:
            taken[partition] = taken.get(partition, 0) + 1
            users.append(user)
    return users


def heartrate_day(user: uuid.UUID, day: int) -> dict[str, Any]:
    midnight = FIRST_DAY + timedelta(days=day)
    rows = [
        {
            "bpm": 48 + (minute * 7 + user.int) % 90,
            "source": "awake",
            "timestamp": (midnight + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        }
        for minute in range(ROWS_PER_EVENT)
    ]
    key = midnight.date().isoformat()
    return {
        "schema": "raw.v1",
        "id": str(raw_event_id("oura", user, "heartrate", key)),
        "user_id": str(user),
        "source": "oura",
        "resource": "heartrate",
        "fetched_at": datetime.now(UTC).isoformat(),
        "window": {
            "start": midnight.isoformat(),
            "end": (midnight + timedelta(days=1)).isoformat(),
        },
        "payload": {"data": rows},
    }


async def prefill(bootstrap: str, topic: str, plan: list[tuple[uuid.UUID, int]]) -> None:
    broker = make_broker(bootstrap, TracerProvider())
    await broker.start()
    try:
        for start in range(0, len(plan), 100):
            chunk = plan[start : start + 100]
            for user in {u for u, _ in chunk}:
                bodies = [heartrate_day(u, d) for u, d in chunk if u == user]
                await publish_many(broker, topic, str(user).encode(), bodies)
    finally:
        await broker.stop()


@dataclass
class Progress:
    """Seconds at which each tenth of the rows was committed."""

    rows: int
    marks: list[float]

    def rates(self) -> list[float]:
        step = self.rows / SEGMENTS
        edges = [0.0, *self.marks]
        return [step / max(b - a, 1e-9) for a, b in itertools.pairwise(edges)]

    @property
    def overall(self) -> float:
        return self.rows / self.marks[-1] if self.marks else 0.0


async def ceiling(database_url: str, plan: list[tuple[uuid.UUID, int]]) -> Progress:
    """COPY the mapped rows straight into normalizer.samples; only the COPY is timed."""
    conn = await asyncpg.connect(database_url)
    total_rows = len(plan) * ROWS_PER_EVENT
    marks: list[float] = []
    spent = 0.0
    written = 0
    try:
        for start in range(0, len(plan), COPY_EVENTS):
            records = []
            for user, day in plan[start : start + COPY_EVENTS]:
                envelope = RawPayloadReceived.model_validate(heartrate_day(user, day))
                records += [db.record(s) for s in oura.map_payload(envelope).samples]
            began = time.perf_counter()
            await conn.copy_records_to_table(
                "samples", schema_name="normalizer", records=records, columns=db.COLUMNS
            )
            spent += time.perf_counter() - began
            written += len(records)
            while len(marks) < SEGMENTS and written >= total_rows * (len(marks) + 1) / SEGMENTS:
                marks.append(spent)
        await conn.execute("TRUNCATE normalizer.samples")
        await conn.execute("VACUUM ANALYZE normalizer.samples")
    finally:
        await conn.close()
    return Progress(total_rows, marks)


@dataclass
class Outcome:
    progress: Progress
    peak_rss: int
    """Of the biggest normalizer process."""
    cpu_s: float
    """CPU seconds (user + system) the normalizer processes spent over the timed rows: unlike
    the rates, barely moved by other load on a shared machine, so it compares code versions."""
    backlog: int
    """metrics.unified events still in the outbox at the last commit."""


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


async def normalizer_run(
    database_url: str, services: list[Service], total_events: int, timeout_s: float
) -> Outcome:
    """Committed rows over time, the peak RSS of one process, its CPU time, and the outbox
    backlog at the end.

    The clock starts once every process is ready; events committed before that (a process may
    start consuming before it answers ready) are left out of both the rows and the time."""
    conn = await asyncpg.connect(database_url)
    processes = [psutil.Process(service.process.pid) for service in services]
    marks: list[float] = []
    peak = 0
    began = time.monotonic()
    cpu_began = cpu_seconds(processes)
    already = await conn.fetchval("SELECT count(*) FROM normalizer.raw_archive")
    timed = total_events - already
    try:
        while True:
            peak = max(peak, *(rss_bytes(process) for process in processes))
            done = await conn.fetchval("SELECT count(*) FROM normalizer.raw_archive") - already
            elapsed = time.monotonic() - began
            while len(marks) < SEGMENTS and done >= timed * (len(marks) + 1) / SEGMENTS:
                marks.append(elapsed)
            if done >= timed:
                cpu = cpu_seconds(processes) - cpu_began
                backlog = await conn.fetchval("SELECT count(*) FROM normalizer.outbox")
                return Outcome(Progress(timed * ROWS_PER_EVENT, marks), peak, cpu, int(backlog))
            if elapsed > timeout_s:
                raise TimeoutError(f"{done} of {timed} events after {elapsed:.0f}s")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def report(options: Options, top: Progress, outcome: Outcome) -> bool:
    ours = outcome.progress
    ratio = ours.overall / top.overall
    print()
    print(
        f"rows: {top.rows:,} ({top.rows // ROWS_PER_EVENT:,} raw events, {options.users} users, "
        f"{options.processes} normalizer process(es))"
    )
    if ours.rows != top.rows:
        print(f"normalizer timed over its last {ours.rows:,} rows (some committed before ready)")
    print("segment of the table      COPY rows/s   normalizer rows/s   ratio")
    for i, (a, b) in enumerate(zip(top.rates(), ours.rates(), strict=True)):
        low, high = top.rows * i // SEGMENTS, top.rows * (i + 1) // SEGMENTS
        print(f"{low:>11,}-{high:<11,}  {a:>12,.0f}   {b:>17,.0f}   {b / a:5.2f}")
    print(
        f"overall                    {top.overall:>12,.0f}   {ours.overall:>17,.0f}   {ratio:5.2f}"
    )
    flat = min(ours.rates()) / max(ours.rates())
    print(
        f"normalizer: slowest tenth / fastest tenth = {flat:.2f}; "
        f"peak RSS {outcome.peak_rss / 2**20:.0f} MB; "
        f"CPU {outcome.cpu_s / ours.rows * 1e6:.1f} us a row (all processes)"
    )
    print(f"metrics.unified events still in the outbox at the last commit: {outcome.backlog:,}")
    return ratio >= 0.5


async def run(options: Options, work: Path) -> bool:
    plan = events(options)
    async with contextlib.AsyncExitStack() as stack:
        run = await fresh_run(stack, work, f"bench{uuid.uuid4().hex[:8]}")
        infra, database_url, topics = run.infra, run.database_url, run.topics
        pool = await open_pool(database_url, max_size=1)
        await apply_migrations(pool, "normalizer", files("healthmesh.normalizer") / "migrations")
        await pool.close()

        say(f"pre-filling {topics.raw('oura')} with {len(plan):,} events")
        await prefill(infra.kafka_bootstrap_servers, topics.raw("oura"), plan)
        say("ceiling: COPY of the same rows into normalizer.samples")
        top = await ceiling(database_url, plan)
        say(f"COPY: {top.overall:,.0f} rows/s; starting the normalizer")

        ports = {name: free_port() for name in SERVICES}
        env = service_env(
            os.environ, Infrastructure(database_url, infra.kafka_bootstrap_servers), ports, work
        )
        env["HEALTHMESH_TOPIC_PREFIX"] = topics.prefix
        services = []
        for n in range(options.processes):
            port = ports["normalizer"] if n == 0 else free_port()
            service = start_service("normalizer", env, port, work / "logs" / f"normalizer-{n}")
            stack.callback(service.process.stop)
            services.append(service)
        for service in services:
            wait_ready(service, timeout=120)
        outcome = await normalizer_run(database_url, services, len(plan), options.timeout_s)
        return report(options, top, outcome)
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    logging.getLogger("faststream.access.kafka").disabled = True
    work = Path(tempfile.mkdtemp(prefix="healthmesh-bench-normalizer-"))
    say(f"data and logs in {work}")
    passed = asyncio.run(run(options, work))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
