"""The normalizer's SQL: bulk upsert of samples (COPY into staging, then INSERT ... ON CONFLICT),
the raw archive, import progress, and withdrawing samples."""

import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import Sample

COLUMNS = (
    "user_id",
    "metric",
    "source",
    "start_at",
    "end_at",
    "source_record_id",
    "id",
    "value",
    "unit",
    "utc_offset_s",
    "device",
    "quality",
    "quality_reason",
    "raw_event_id",
    "details",
)
_CHANGEABLE = ("value", "unit", "utc_offset_s", "device", "quality", "quality_reason", "details")

_UPSERT = f"""
WITH moved AS MATERIALIZED (
    SELECT s.id, s.utc_offset_s FROM staging_samples AS st
    CROSS JOIN LATERAL (
        SELECT s.id, s.utc_offset_s FROM normalizer.samples AS s
        WHERE (s.user_id, s.metric, s.source, s.start_at, s.end_at, s.source_record_id)
            = (st.user_id, st.metric, st.source, st.start_at, st.end_at, st.source_record_id)
          AND s.utc_offset_s <> st.utc_offset_s
        OFFSET 0) AS s
), written AS (
    INSERT INTO normalizer.samples AS s ({", ".join(COLUMNS)})
    SELECT {", ".join(COLUMNS)} FROM staging_samples
    ON CONFLICT (user_id, metric, source, start_at, end_at, source_record_id) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _CHANGEABLE)},
        raw_event_id = EXCLUDED.raw_event_id,
        revision = s.revision + 1,
        updated_at = now()
    WHERE ({", ".join(f"s.{c}" for c in _CHANGEABLE)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _CHANGEABLE)})
    RETURNING s.id, s.revision, (s.xmax = 0) AS inserted
)
SELECT w.id, w.revision, w.inserted, m.utc_offset_s AS old_offset
FROM written AS w LEFT JOIN moved AS m ON m.id = w.id
"""
"""Upsert on the natural key. Every part of a statement sees the table as it was, so `moved`
gives the offset a sample had before this write when the write changes it: the sample then
left a local day, whose rollup must be recomputed too. `moved` looks each staged key up
(lateral, OFFSET 0): as a join, while the table's statistics still said it was small (a first
big import), the planner hashed the whole table on every batch, 35 ms a batch at 60,000 rows
and growing with the table."""


_SUPERSEDED = f"""
DELETE FROM normalizer.samples AS s USING staging_samples AS st
WHERE st.id IN (SELECT unnest($1::uuid[]))
  AND s.user_id = st.user_id AND s.source = st.source AND s.metric = st.metric
  AND s.source_record_id = st.source_record_id
  AND (s.start_at, s.end_at) <> (st.start_at, st.end_at)
RETURNING {", ".join(f"s.{c}" for c in COLUMNS)}, s.revision + 1 AS revision, false AS inserted
"""


@dataclass(frozen=True)
class ImportBatch:
    import_id: UUID
    raw_event_id: UUID
    user_id: UUID
    records_imported: int
    records_rejected: int
    errors: list[dict[str, str]]


class Upserted(NamedTuple):
    changed: list["ChangedSample"]
    """Samples the write really created or changed."""
    superseded: list["ChangedSample"]
    """Older samples of the same records with other times, withdrawn (`names_one_record`)."""
    moved: list[Sample]
    """Changed samples as they were before, where their UTC offset changed (so their old local
    day changed too): for the rollups only, nothing to announce."""


class ChangedSample(NamedTuple):
    """A sample a transaction really changed (a NamedTuple: one is made per new sample)."""

    sample: Sample
    revision: int
    created: bool


record: Callable[[Sample], tuple[Any, ...]] = attrgetter(
    "user_id",
    "metric",
    "source",
    "start",
    "end",
    "source_record_id",
    "id",
    "value",
    "unit",
    "utc_offset_s",
    "device",
    "quality",
    "quality_reason",
    "raw_event_id",
    "details",
)
"""A sample as a row of COLUMNS (attrgetter builds the tuple in C: it runs once a sample)."""


async def upsert_samples(
    conn: asyncpg.Connection, samples: list[Sample], names_one_record: Callable[[Sample], bool]
) -> Upserted:
    """Upsert inside the caller's transaction; return the samples that really changed, those
    they superseded (where `names_one_record` says a sample's record id names one record, an
    older sample of the same record with other times, an edited bedtime or a night that grew,
    is withdrawn) and the earlier versions of those whose offset changed.

    Samples whose natural key is not stored yet (most of them: new days) are COPY'd straight
    into the table, which costs half of staging them and upserting; the rest are staged and
    upserted on the natural key. Either way a replay changes nothing."""
    if not samples:
        return Upserted([], [], [])
    unique: dict[object, Sample] = {}  # one key once per statement; the last one wins
    for sample in samples:
        per_record = names_one_record(sample)
        key = (sample.user_id, sample.source, sample.metric, sample.source_record_id)
        unique[key if per_record else sample.id] = sample
    new, staged = await split_by_existence(conn, list(unique.values()), names_one_record)
    created = await insert_new(conn, new)
    if created is None:  # a concurrent writer stored some of these keys meanwhile
        created, staged = [], staged + new
    upserted = await _upsert_staged(conn, staged, names_one_record)
    return upserted._replace(changed=created + upserted.changed)


# Lateral, with OFFSET 0 so the planner cannot flatten it into a join: as a plain join it chose
# a hash join over the whole table once that held some 60,000 rows (53 ms a batch at 500,000,
# growing with the table), instead of one index range per series.
_STORED_KEYS = """SELECT s.user_id, s.metric, s.source, s.start_at, s.end_at, s.source_record_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
     AS g(user_id, metric, source, first, last)
CROSS JOIN LATERAL (
    SELECT s.user_id, s.metric, s.source, s.start_at, s.end_at, s.source_record_id
    FROM normalizer.samples AS s
    WHERE s.user_id = g.user_id AND s.metric = g.metric AND s.source = g.source
      AND s.start_at BETWEEN g.first AND g.last
    OFFSET 0) AS s"""


async def split_by_existence(
    conn: asyncpg.Connection, samples: list[Sample], names_one_record: Callable[[Sample], bool]
) -> tuple[list[Sample], list[Sample]]:
    """(samples whose natural key is not stored, the rest). A provider record's sample always
    goes the staged way: it may supersede a stored sample of that record under another key."""
    candidates: list[Sample] = []
    staged: list[Sample] = []
    starts: dict[tuple[UUID, str, str], list[datetime]] = {}
    for s in samples:
        if names_one_record(s):
            staged.append(s)
            continue
        candidates.append(s)
        starts.setdefault((s.user_id, s.metric, s.source), []).append(s.start)
    if not candidates:
        return [], staged
    users, metrics, sources = (list(column) for column in zip(*starts, strict=True))
    firsts = [min(times) for times in starts.values()]
    lasts = [max(times) for times in starts.values()]
    stored = {
        tuple(r) for r in await conn.fetch(_STORED_KEYS, users, metrics, sources, firsts, lasts)
    }
    if not stored:
        return candidates, staged
    new: list[Sample] = []
    for s in candidates:
        key = (s.user_id, s.metric, s.source, s.start, s.end, s.source_record_id)
        (staged if key in stored else new).append(s)
    return new, staged


async def insert_new(conn: asyncpg.Connection, samples: list[Sample]) -> list[ChangedSample] | None:
    """COPY samples whose keys were not stored; None (and nothing written) if a concurrent
    writer stored one of them in the meantime."""
    if not samples:
        return []
    try:
        async with conn.transaction():  # a savepoint: a conflict undoes only this COPY
            await conn.copy_records_to_table(
                "samples",
                schema_name="normalizer",
                records=map(record, samples),
                columns=COLUMNS,
            )
    except asyncpg.UniqueViolationError:
        return None
    return [ChangedSample(s, 1, True) for s in samples]


async def _upsert_staged(
    conn: asyncpg.Connection, samples: list[Sample], names_one_record: Callable[[Sample], bool]
) -> Upserted:
    if not samples:
        return Upserted([], [], [])
    by_id = {sample.id: sample for sample in samples}
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staging_samples "
        "(LIKE normalizer.samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table(
        "staging_samples", records=map(record, samples), columns=COLUMNS
    )
    rows = await conn.fetch(_UPSERT)
    records = [s.id for s in samples if names_one_record(s)]
    superseded = await conn.fetch(_SUPERSEDED, records) if rows and records else []
    # What was written is what was staged: only id, revision and inserted come back.
    changed = [ChangedSample(by_id[r["id"]], r["revision"], r["inserted"]) for r in rows]
    moved = [
        replace(by_id[r["id"]], utc_offset_s=r["old_offset"])
        for r in rows
        if r["old_offset"] is not None
    ]
    return Upserted(changed, [_changed(r) for r in superseded], moved)


def _changed(r: asyncpg.Record) -> ChangedSample:
    return ChangedSample(
        sample=Sample(
            id=r["id"],
            user_id=r["user_id"],
            metric=r["metric"],
            value=r["value"],
            unit=r["unit"],
            source=r["source"],
            device=r["device"],
            start=r["start_at"],
            end=r["end_at"],
            utc_offset_s=r["utc_offset_s"],
            source_record_id=r["source_record_id"],
            quality=r["quality"],
            quality_reason=r["quality_reason"],
            raw_event_id=r["raw_event_id"],
            details=r["details"],
        ),
        revision=r["revision"],
        created=r["inserted"],
    )


async def lock_series(conn: asyncpg.Connection, series: Iterable[tuple[UUID, str]]) -> None:
    """Hold these (user, source) pairs until the caller's transaction ends, waiting for any
    other transaction that holds one. Take it before writing their samples.

    Rollups are recomputed from the samples a transaction sees. Two transactions writing one
    user's source side by side (`reprocess` beside the live normalizer, or two consumers of a
    partition during a rebalance) would each recompute a shared day without the other's
    samples: a summary left short, or a clash on the rollup's key that sends good messages to
    the DLQ. The locks are taken in one sorted order, so two writers never wait in a circle."""
    keys = sorted({_series_lock_key(user, source) for user, source in series})
    if keys:
        await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k", keys)


def _series_lock_key(user: UUID, source: str) -> int:
    """A stable 64-bit key (Python's own hash differs between processes)."""
    digest = hashlib.blake2b(user.bytes + source.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def record_import_batches(conn: asyncpg.Connection, batches: list[ImportBatch]) -> None:
    """Idempotent: a batch delivered twice is counted once."""
    if not batches:
        return
    await conn.executemany(
        """INSERT INTO normalizer.import_batches
               (import_id, raw_event_id, user_id, records_imported, records_rejected, errors)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (import_id, raw_event_id) DO NOTHING""",
        [
            (
                b.import_id,
                b.raw_event_id,
                b.user_id,
                b.records_imported,
                b.records_rejected,
                b.errors,
            )
            for b in batches
        ],
    )


class Withdrawn(NamedTuple):
    """A record its source deleted, and when the deletion was heard of (the tombstone's
    `fetched_at`)."""

    user_id: UUID
    source: str
    source_record_id: str
    withdrawn_at: datetime


async def withdraw_records(
    conn: asyncpg.Connection, withdrawn: Sequence[Withdrawn]
) -> list[ChangedSample]:
    """Delete every sample of (user, source, record id): records the source deleted. Each is
    remembered with its time, so a payload fetched before it cannot bring it back
    (`drop_withdrawn`)."""
    if not withdrawn:
        return []
    users, sources, records, times = (list(column) for column in zip(*withdrawn, strict=True))
    await conn.execute(
        """INSERT INTO normalizer.withdrawn_records AS w
               (user_id, source, source_record_id, withdrawn_at)
           SELECT k.user_id, k.source, k.record, max(k.at)
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
                AS k(user_id, source, record, at)
           WHERE k.record <> ''
           GROUP BY k.user_id, k.source, k.record
           ON CONFLICT (user_id, source, source_record_id) DO UPDATE
           SET withdrawn_at = greatest(w.withdrawn_at, EXCLUDED.withdrawn_at)""",
        users,
        sources,
        records,
        times,
    )
    rows = await conn.fetch(
        f"""DELETE FROM normalizer.samples AS s
            USING unnest($1::uuid[], $2::text[], $3::text[]) AS w(user_id, source, record)
            WHERE s.user_id = w.user_id AND s.source = w.source AND s.source_record_id = w.record
              AND w.record <> ''
            RETURNING {", ".join(f"s.{c}" for c in COLUMNS)}, s.revision + 1 AS revision,
                      false AS inserted""",
        users,
        sources,
        records,
    )
    return [_changed(r) for r in rows]


async def drop_withdrawn(
    conn: asyncpg.Connection, samples: list[Sample], fetched_at: dict[UUID, datetime]
) -> list[Sample]:
    """`samples` without those of records their source deleted after the payload they come
    from was fetched (`fetched_at` by raw event id): a sync already under way when a deletion
    webhook came would otherwise bring the deleted record back."""
    keys = {(s.user_id, s.source, s.source_record_id) for s in samples if s.source_record_id}
    if not keys:
        return samples
    users, sources, records = (list(column) for column in zip(*keys, strict=True))
    rows = await conn.fetch(
        """SELECT w.user_id, w.source, w.source_record_id, w.withdrawn_at
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(user_id, source, record)
           JOIN normalizer.withdrawn_records AS w
             ON w.user_id = k.user_id AND w.source = k.source AND w.source_record_id = k.record""",
        users,
        sources,
        records,
    )
    if not rows:
        return samples
    deleted_at = {(r[0], r[1], r[2]): r[3] for r in rows}
    kept = []
    for s in samples:
        deleted = deleted_at.get((s.user_id, s.source, s.source_record_id))
        fetched = fetched_at.get(s.raw_event_id)
        if deleted is None or fetched is None or fetched >= deleted:
            kept.append(s)
    return kept


async def record_rejections(
    conn: asyncpg.Connection, rejected: Sequence[tuple[RawPayloadReceived, str, str]]
) -> None:
    """Keep (envelope, where, why) of each record a mapper rejected; idempotent."""
    if not rejected:
        return
    await conn.executemany(
        """INSERT INTO normalizer.rejected_records
               (raw_event_id, record, user_id, source, resource, reason)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        [(e.id, where, e.user_id, e.source, e.resource, reason) for e, where, reason in rejected],
    )


async def delete_source_samples(
    conn: asyncpg.Connection, user_id: UUID, source: str
) -> list[ChangedSample]:
    """Delete every sample of one user from one source; return them (revision bumped) so the
    deletion can be announced."""
    rows = await conn.fetch(
        f"""DELETE FROM normalizer.samples WHERE user_id = $1 AND source = $2
            RETURNING {", ".join(COLUMNS)}, revision + 1 AS revision, false AS inserted""",
        user_id,
        source,
    )
    return [_changed(r) for r in rows]


# --- the raw archive -------------------------------------------------------------------------

_ARCHIVE_COLUMNS = (
    "raw_event_id",
    "user_id",
    "source",
    "resource",
    "window_start",
    "window_end",
    "fetched_at",
    "envelope",
)


@dataclass(frozen=True)
class RawEvent:
    """A raw message whose envelope could be read, with its bytes exactly as received."""

    envelope: RawPayloadReceived
    body: bytes


async def archive_raw(conn: asyncpg.Connection, events: Sequence[RawEvent]) -> None:
    """Keep each raw event once (zlib level 1: fast, and JSON shrinks 5-10x)."""
    if not events:
        return
    unique = {e.envelope.id: e for e in events}
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staging_archive "
        "(LIKE normalizer.raw_archive INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table(
        "staging_archive",
        records=[
            (
                e.envelope.id,
                e.envelope.user_id,
                e.envelope.source,
                e.envelope.resource,
                e.envelope.window.start,
                e.envelope.window.end,
                e.envelope.fetched_at,
                zlib.compress(e.body, 1),
            )
            for e in unique.values()
        ],
        columns=_ARCHIVE_COLUMNS,
    )
    columns = ", ".join(_ARCHIVE_COLUMNS)
    await conn.execute(
        f"INSERT INTO normalizer.raw_archive ({columns}) SELECT {columns} FROM staging_archive "
        "ON CONFLICT (raw_event_id) DO NOTHING"
    )


@dataclass(frozen=True)
class ArchiveFilter:
    """Which archived raw events to replay: a user, a source, a time range (of when they were
    fetched), or any combination; nothing set means everything."""

    user_id: UUID | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def archived_page(
    conn: asyncpg.Connection, which: ArchiveFilter, after: tuple[datetime, UUID] | None, limit: int
) -> list[tuple[datetime, UUID, bytes]]:
    """The next page of archived events in fetch order: (fetched_at, id, envelope bytes)."""
    rows = await conn.fetch(
        """SELECT fetched_at, raw_event_id, envelope FROM normalizer.raw_archive
           WHERE ($1::uuid IS NULL OR user_id = $1)
             AND ($2::text IS NULL OR source = $2)
             AND ($3::timestamptz IS NULL OR fetched_at >= $3)
             AND ($4::timestamptz IS NULL OR fetched_at < $4)
             AND ($5::timestamptz IS NULL OR (fetched_at, raw_event_id) > ($5, $6::uuid))
           ORDER BY fetched_at, raw_event_id
           LIMIT $7""",
        which.user_id,
        which.source,
        which.since,
        which.until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [(r["fetched_at"], r["raw_event_id"], zlib.decompress(r["envelope"])) for r in rows]


async def prune_archive(conn: asyncpg.Connection, older_than: datetime, limit: int) -> int:
    """Delete up to `limit` archived events archived before `older_than`; how many went."""
    result: str = await conn.execute(
        """DELETE FROM normalizer.raw_archive WHERE raw_event_id IN (
               SELECT raw_event_id FROM normalizer.raw_archive WHERE archived_at < $1 LIMIT $2)""",
        older_than,
        limit,
    )
    return int(result.split()[-1])


async def withdraw_samples(
    conn: asyncpg.Connection, raw_event_ids: Sequence[UUID], keep: Sequence[UUID]
) -> list[ChangedSample]:
    """Delete the samples these raw events last wrote that their new mapping no longer yields
    (a metric misfiled by an old mapper); return them, revision bumped, to announce."""
    rows = await conn.fetch(
        f"""DELETE FROM normalizer.samples
            WHERE raw_event_id = ANY($1::uuid[]) AND NOT (id = ANY($2::uuid[]))
            RETURNING {", ".join(COLUMNS)}, revision + 1 AS revision, false AS inserted""",
        list(raw_event_ids),
        list(keep),
    )
    return [_changed(r) for r in rows]
