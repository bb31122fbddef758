"""Per-day and per-hour aggregates of each source's plausible samples, kept in step with the
samples inside the same transaction, so a query reads a day as one row instead of its samples.

A touched (user, metric, source, day) is recomputed from its samples rather than adjusted by
deltas: an upsert does not know the value it replaced, and only the samples themselves show
where two devices of one source counted the same steps (iPhone and Watch), which `total`
resolves the way HealthKit's statistics do: the watch's samples count in full, a lower-priority
device's only for the part of its interval no higher-priority device covered.
"""

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import NamedTuple
from uuid import UUID

import asyncpg

from healthmesh.common.vocabulary import metric_def
from healthmesh.normalizer.mapping import Sample

HOUR_S = 3600
DAY_S = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def rollup_keys(
    samples: Iterable[Sample],
) -> tuple[list[tuple[UUID, str, str, date, bool]], list[tuple[UUID, str, str, datetime]]]:
    """The (user, metric, source, local day, by end) and (user, metric, source, UTC hour) keys
    these samples fall in. A sample's local day is by its own recorded offset, and sleep counts
    on the day it ends; only samples up to an hour long have an hour.

    Worked out on POSIX seconds and plain ints (a batch holds tens of thousands of samples, and
    hashing UUIDs and datetimes cost more than the rollups' SQL)."""
    days: set[tuple[int, str, str, int]] = set()
    hours: set[tuple[int, str, str, int]] = set()
    for s in samples:
        user, start, end = s.user_id.int, s.start.timestamp(), s.end.timestamp()
        moment = end if _by_end(s.metric) else start
        days.add((user, s.metric, s.source, int((moment + s.utc_offset_s) // DAY_S)))
        if end - start <= HOUR_S:
            hours.add((user, s.metric, s.source, int(start // HOUR_S)))
    return (
        [
            (UUID(int=u), m, src, date.fromordinal(_EPOCH_ORDINAL + d), _by_end(m))
            for u, m, src, d in sorted(days)
        ],
        [
            (UUID(int=u), m, src, datetime.fromtimestamp(h * HOUR_S, UTC))
            for u, m, src, h in sorted(hours)
        ],
    )


@cache
def _by_end(metric: str) -> bool:
    return metric_def(metric).day_of == "end"


# --- overlaps between devices of one source -----------------------------------------------------


class Span(NamedTuple):
    """One sample as the overlap-free totals read it (a NamedTuple: one is made per sample of
    every day and hour two devices share)."""

    start: datetime
    end: datetime
    value: float
    device: str | None


def device_rank(device: str | None) -> int:
    """HealthKit's default order: the watch first, other devices and apps next, the phone last."""
    name = (device or "").lower()
    if "watch" in name:
        return 0
    if "phone" in name:
        return 2
    return 1


def overlap_free_total(spans: Iterable[Span]) -> float:
    """Sum of cumulative samples where devices overlap: each device, in priority order, adds
    only the share of each sample's interval that no higher-priority device already covered.

    What is covered is kept merged and sorted, so each sample looks only at the covered
    intervals it meets (a day of minute-level data from two devices is thousands of each)."""
    by_device: dict[str | None, list[Span]] = {}
    for span in spans:
        by_device.setdefault(span.device, []).append(span)
    starts: list[datetime] = []  # covered intervals: disjoint, sorted, so ends are sorted too
    ends: list[datetime] = []
    total = 0.0
    for device in sorted(by_device, key=lambda d: (device_rank(d), d or "")):
        group = by_device[device]
        for span in group:
            first = bisect_right(ends, span.start)  # the first covered interval ending after it
            length = (span.end - span.start).total_seconds()
            if length <= 0:
                inside = first < len(starts) and starts[first] <= span.start
                total += 0.0 if inside else span.value
                continue
            overlap = 0.0
            i = first
            while i < len(starts) and starts[i] < span.end:
                overlap += (min(ends[i], span.end) - max(starts[i], span.start)).total_seconds()
                i += 1
            total += span.value * max(0.0, 1.0 - overlap / length)
        merged = _merged(
            list(zip(starts, ends, strict=True))
            + [(s.start, s.end) for s in group if s.end > s.start]
        )
        starts, ends = [a for a, _ in merged], [b for _, b in merged]
    return total


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- SQL -----------------------------------------------------------------------------------------

# A local day's samples start (or, for sleep, end) within 18 hours of it (MAX_UTC_OFFSET_S);
# a session counted by its end may have started up to two days earlier.
_SAMPLE_IN_DAY = """s.user_id = k.user_id AND s.metric = k.metric AND s.source = k.source
    AND s.start_at >= k.day::timestamp AT TIME ZONE 'UTC'
        - CASE WHEN k.by_end THEN interval '2 days' ELSE interval '18 hours' END
    AND s.start_at < k.day::timestamp AT TIME ZONE 'UTC' + interval '42 hours'
    AND s.quality > 0
    AND ((CASE WHEN k.by_end THEN s.end_at ELSE s.start_at END) AT TIME ZONE 'UTC'
         + make_interval(secs => s.utc_offset_s))::date = k.day"""
_SAMPLE_IN_HOUR = """s.user_id = k.user_id AND s.metric = k.metric AND s.source = k.source
    AND s.start_at >= k.hour AND s.start_at < k.hour + interval '1 hour'
    AND s.end_at - s.start_at <= interval '1 hour'
    AND s.quality > 0"""

# `n` is a key's position in the arrays (from 1): rows about a key can name it by that alone.
_DAY_KEYS = (
    "unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::bool[]) WITH ORDINALITY "
    "AS k(user_id, metric, source, day, by_end, n)"
)
_HOUR_KEYS = (
    "unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY "
    "AS k(user_id, metric, source, hour, n)"
)


@dataclass(frozen=True)
class Grain:
    """One rollup table: its key column, how keys arrive (arrays), and which samples fall in."""

    table: str
    key: str
    key_type: str
    keys: str
    match: str

    @property
    def delete(self) -> str:
        return f"""DELETE FROM normalizer.{self.table} AS r USING {self.keys}
            WHERE r.user_id = k.user_id AND r.metric = k.metric AND r.source = k.source
              AND r.{self.key} = k.{self.key}"""

    @property
    def insert(self) -> str:
        # Each key aggregates its own samples (a lateral subquery: always an index range scan,
        # whatever the planner believes of the table's size). The last value is looked up and
        # devices are counted only where they differ: ordered and DISTINCT aggregates sort each
        # key's samples, which made a day of minute-level data cost three times as much.
        return f"""INSERT INTO normalizer.{self.table} (user_id, metric, source, {self.key},
                samples, total, raw_total, minimum, maximum, last_value, last_at, utc_offset_s,
                devices)
            SELECT k.user_id, k.metric, k.source, k.{self.key}, a.samples, a.total, a.total,
                   a.minimum, a.maximum, last.value, a.last_at, last.utc_offset_s,
                   CASE WHEN a.several THEN (
                       SELECT count(DISTINCT coalesce(s.device, ''))
                       FROM normalizer.samples AS s WHERE {self.match}) ELSE 1 END
            FROM {self.keys}
            CROSS JOIN LATERAL (
                SELECT count(*) AS samples, sum(s.value) AS total, min(s.value) AS minimum,
                       max(s.value) AS maximum, max(s.start_at) AS last_at,
                       min(coalesce(s.device, '')) <> max(coalesce(s.device, '')) AS several
                FROM normalizer.samples AS s WHERE {self.match}) AS a
            CROSS JOIN LATERAL (
                SELECT s.value, s.utc_offset_s FROM normalizer.samples AS s
                WHERE {self.match} AND s.start_at = a.last_at
                ORDER BY s.end_at DESC LIMIT 1) AS last
            RETURNING user_id, metric, source, {self.key}, devices"""

    @property
    def spans(self) -> str:
        # Lateral, and OFFSET 0 so the planner cannot flatten it back into a join: as a plain
        # join it chose a hash join over a scan of the whole table once that held a few hundred
        # thousand rows (1.6 s a batch and growing), instead of one index range per key. A row
        # names its key by position: decoding and hashing the key's four columns on every
        # sample of a shared day cost ~4 us a record of an Apple Health import (issue 6).
        return f"""SELECT k.n, s.start_at, s.end_at, s.value, s.device
            FROM {self.keys}
            CROSS JOIN LATERAL (
                SELECT s.start_at, s.end_at, s.value, s.device FROM normalizer.samples AS s
                WHERE {self.match} OFFSET 0) AS s"""

    @property
    def set_totals(self) -> str:
        return f"""UPDATE normalizer.{self.table} AS r SET total = t.total
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::{self.key_type}[],
                        $5::float8[]) AS t(user_id, metric, source, key, total)
            WHERE r.user_id = t.user_id AND r.metric = t.metric AND r.source = t.source
              AND r.{self.key} = t.key"""


DAILY = Grain(
    "daily_rollups",
    "day",
    "date",
    _DAY_KEYS,
    _SAMPLE_IN_DAY,
)
HOURLY = Grain(
    "hourly_rollups",
    "hour",
    "timestamptz",
    _HOUR_KEYS,
    _SAMPLE_IN_HOUR,
)


# A day row's summary of the hour rows on that local day (by each hour's recorded offset), after
# both are recomputed: bit i of the mask is the hour starting i - 18 hours after the local date's
# midnight read as UTC (migration 005).
_DAY_HOURS = """UPDATE normalizer.daily_rollups AS r
    SET hour_mask = h.mask, hours_samples = h.samples, hours_total = h.total,
        hours_raw_total = h.raw_total
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[]) AS k(user_id, metric, source, day)
    CROSS JOIN LATERAL (
        SELECT coalesce(bit_or(1::int8 << (18 + (date_part('epoch', x.hour)::int8
                   - (k.day - date '1970-01-01') * 86400::int8) / 3600)::int), 0) AS mask,
               coalesce(sum(x.samples), 0)::int AS samples, coalesce(sum(x.total), 0) AS total,
               coalesce(sum(x.raw_total), 0) AS raw_total
        FROM normalizer.hourly_rollups AS x
        WHERE x.user_id = k.user_id AND x.metric = k.metric AND x.source = k.source
          AND x.hour >= k.day::timestamp AT TIME ZONE 'UTC' - interval '18 hours'
          AND x.hour < k.day::timestamp AT TIME ZONE 'UTC' + interval '42 hours'
          AND (date_part('epoch', x.hour)::int8 + x.utc_offset_s) / 86400
              = k.day - date '1970-01-01'
        OFFSET 0) AS h
    WHERE r.user_id = k.user_id AND r.metric = k.metric AND r.source = k.source
      AND r.day = k.day"""

_OVERLAPPING = frozenset(("sum", "session"))
"""Aggregations whose values add up over time, so two devices of a source recording the same
time (steps from Watch and iPhone, a night from the Watch and a sleep app) would count twice."""


async def refresh(conn: asyncpg.Connection, samples: Iterable[Sample]) -> None:
    """Recompute the day and hour rollups these (changed or deleted) samples fall in, then the
    days' summaries of their hours (for metrics counted by their start: sleep's days are those
    it ends on, its hours where it starts)."""
    days, hours = rollup_keys(samples)
    if days:
        await _recompute(conn, DAILY, days)
    if hours:
        await _recompute(conn, HOURLY, hours)
    await sum_up_hours(conn, [key[:4] for key in days if not key[4]])


async def sum_up_hours(
    conn: asyncpg.Connection | asyncpg.Pool, days: Sequence[tuple[UUID, str, str, date]]
) -> None:
    """Set these (user, metric, source, local day) rollups' summary of their hour rollups."""
    if days:
        await conn.execute(_DAY_HOURS, *[list(c) for c in zip(*days, strict=True)])


async def _recompute(
    conn: asyncpg.Connection, grain: Grain, keys: Sequence[tuple[object, ...]]
) -> None:
    columns = [list(column) for column in zip(*keys, strict=True)]
    await conn.execute(grain.delete, *columns)
    rows = await conn.fetch(grain.insert, *columns)
    shared = [
        tuple(row[:4])
        for row in rows
        if row["devices"] > 1 and metric_def(row["metric"]).aggregation in _OVERLAPPING
    ]
    if not shared:
        return
    # Rollups summing several devices of one source: their samples in one query, the
    # overlap-free totals in one update.
    shared_columns = [list(column) for column in zip(*shared, strict=True)]
    if grain is DAILY:
        shared_columns.append([_by_end(metric) for metric in shared_columns[1]])
    spans: list[list[Span]] = [[] for _ in shared]
    for n, start, end, value, device in await conn.fetch(grain.spans, *shared_columns):
        spans[n - 1].append(Span(start, end, value, device))
    totals = [(*key, overlap_free_total(own)) for key, own in zip(shared, spans, strict=True)]
    await conn.execute(grain.set_totals, *[list(c) for c in zip(*totals, strict=True)])
