"""Re-run today's mappers over archived raw events: how a mapper bug is fixed (a code change plus
a replay), never by a hand-written data migration.

    python -m healthmesh.normalizer.reprocess [--user ID] [--source S] [--since T] [--until T]

Each archived event is mapped again and written through the same path as live traffic: changed
samples are upserted (announced as `updated`), samples the event no longer yields are withdrawn
(announced as `deleted`), rollups follow. The events go out through the outbox, which the running
normalizer relays. Running it twice changes nothing the second time.
"""

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from uuid import UUID

import asyncpg
import orjson

from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.outbox import Outbox
from healthmesh.common.topics import Topics
from healthmesh.normalizer import db
from healthmesh.normalizer.handlers import read_envelope, remove, store
from healthmesh.normalizer.mapping import Mapper, Sample, map_payload, mappers
from healthmesh.normalizer.settings import Settings


@dataclass
class Report:
    events: int = 0
    samples: int = 0
    changed: int = 0
    withdrawn: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    """Events today's mappers still cannot map: their samples are left as they were."""


async def reprocess(
    pool: asyncpg.Pool,
    outbox: Outbox,
    topics: Topics,
    registry: dict[str, Mapper],
    which: db.ArchiveFilter,
    page_size: int = 200,
) -> Report:
    report = Report()
    after: tuple[datetime, UUID] | None = None
    while True:
        async with pool.acquire() as conn:
            page = await db.archived_page(conn, which, after, page_size)
        if not page:
            return report
        after = (page[-1][0], page[-1][1])
        mapped: list[UUID] = []
        samples: list[Sample] = []
        withdrawn: list[db.Withdrawn] = []
        fetched_at: dict[UUID, datetime] = {}
        series: set[tuple[UUID, str]] = set()
        for _, raw_id, body in page:
            report.events += 1
            try:
                envelope = read_envelope(body)
                result = map_payload(envelope, registry)
                samples.extend(result.samples)
                withdrawn += [
                    db.Withdrawn(
                        envelope.user_id, envelope.source, w.source_record_id, envelope.fetched_at
                    )
                    for w in result.withdrawals
                ]
                fetched_at[envelope.id] = envelope.fetched_at
                mapped.append(raw_id)
                series.add((envelope.user_id, envelope.source))
            except Exception as exc:  # unreadable, unmappable or a mapper bug: reported
                report.failed.append({"raw_event_id": str(raw_id), "reason": f"{exc}"[:300]})
        async with pool.acquire() as conn, conn.transaction():
            await db.lock_series(conn, series)  # the live normalizer may be writing them too
            samples = await db.drop_withdrawn(conn, samples, fetched_at)
            changed = await store(conn, outbox, topics, samples, {})
            stale = await db.withdraw_samples(conn, mapped, [s.id for s in samples])
            stale += await db.withdraw_records(conn, withdrawn)
            await remove(conn, outbox, topics, stale)
        report.samples += len(samples)
        report.changed += len(changed)
        report.withdrawn += len(stale)


def _arguments(argv: list[str]) -> db.ArchiveFilter:
    parser = argparse.ArgumentParser(prog="python -m healthmesh.normalizer.reprocess")
    parser.add_argument("--user", type=UUID, help="only this user's raw events")
    parser.add_argument("--source", help="only this source's raw events, e.g. whoop")
    parser.add_argument("--since", type=datetime.fromisoformat, help="fetched at or after (ISO)")
    parser.add_argument("--until", type=datetime.fromisoformat, help="fetched before (ISO)")
    args = parser.parse_args(argv)
    return db.ArchiveFilter(args.user, args.source, args.since, args.until)


async def main(argv: list[str]) -> Report:
    which = _arguments(argv)
    settings = Settings()
    pool = await open_pool(settings.database_url, max_size=2)
    try:
        await apply_migrations(pool, "normalizer", files("healthmesh.normalizer") / "migrations")
        return await reprocess(
            pool, Outbox("normalizer"), Topics(settings.topic_prefix), mappers(), which
        )
    finally:
        await pool.close()


if __name__ == "__main__":
    outcome = asyncio.run(main(sys.argv[1:]))
    sys.stdout.write(orjson.dumps(outcome.__dict__, option=orjson.OPT_INDENT_2).decode() + "\n")
