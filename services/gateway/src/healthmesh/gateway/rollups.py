"""The read path: a window of the normalizer's rollups as resolution cells, by local day and hour.

Without `tz`, days are the day rollups' own (each sample's recorded offset; sleep by its end) and
hour rollups are placed on days by their recorded offset. With `tz` (IANA), days are rebuilt in
that zone from the hour rollups plus what those leave out (samples longer than an hour, and sleep,
which counts on the day it ends): `db.long_samples_by_day`. A DST day of 23 or 25 hours is one
day either way. Never a year of raw samples, except the bounded scan of a window with `tz`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from healthmesh.common.vocabulary import MetricDef
from healthmesh.gateway import db
from healthmesh.gateway.metrics import Window
from healthmesh.gateway.resolution import (
    Cell,
    DayHours,
    HourShare,
    Preference,
    merge_cells,
    split_hours,
    window_ranking,
)

_MAX_OFFSET = timedelta(hours=18)
"""The largest UTC offset a sample may record: a local day's hours lie within this of it."""

Hours = dict[datetime, dict[str, Cell]]
"""UTC hour -> source -> that hour's cell (resolution=hour)."""


@dataclass
class DayCells:
    """One metric's cells in a window: local day -> source -> day cell, and for the days that
    fall back per hour, local day -> source -> the hours it answers (resolved answers only)."""

    days: dict[date, dict[str, Cell]] = field(default_factory=dict)
    shares: dict[date, dict[str, HourShare]] = field(default_factory=dict)


def to_cell(row: Mapping[str, Any]) -> Cell:
    return Cell(
        source=row["source"],
        samples=row["samples"],
        total=row["total"],
        raw_total=row["raw_total"],
        minimum=row["minimum"],
        maximum=row["maximum"],
        last_value=row["last_value"],
        last_at=row["last_at"],
        utc_offset_s=row["utc_offset_s"],
    )


def day_bounds(span: Window, tz: tzinfo | None) -> tuple[date, date]:
    """The local days a window covers, `first` <= day < `end`. Instants select the days they fall
    in (in the zone, else as written); an end at midnight excludes its day."""
    if span.local_from is not None:
        first = span.local_from.date()
    else:
        assert span.utc_from is not None  # window() sets one bound of each end
        first = (span.utc_from.astimezone(tz) if tz else span.utc_from).date()
    if span.local_to is not None:
        return first, span.local_to.date()
    assert span.utc_to is not None
    last = span.utc_to.astimezone(tz) if tz else span.utc_to
    return first, last.date() if last.time() == time() else last.date() + timedelta(days=1)


async def load_days(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    metrics: Sequence[MetricDef],
    first: date,
    end: date,
    tz: str | None,
    source: str | None,
    preferences: Mapping[str, Preference] | None,
) -> dict[str, DayCells]:
    """The caller's cells for `metrics` over local days `first` <= day < `end`: one query per
    rollup table for all metrics (plus the long samples with `tz`). `preferences` (resolved
    answers: metric -> the preference deciding it) adds the shares of the days that fall back
    per hour (`resolution.split_hours`): a source answering all of its hours is summed up by its
    day row, and only the hours a source fills in for a better one are read (`db.hour_cells`)."""
    cells: dict[str, DayCells] = {m.metric: DayCells() for m in metrics}
    summaries: dict[str, dict[date, dict[str, DayHours]]] = {m.metric: {} for m in metrics}
    if tz is None:
        for row in await db.daily_rollups(
            conn,
            user_id=user_id,
            metrics=[m.metric for m in metrics],
            first=first,
            end=end,
            source=source,
        ):
            metric, day, src = row["metric"], row["day"], row["source"]
            cells[metric].days.setdefault(day, {})[src] = to_cell(row)
            summaries[metric].setdefault(day, {})[src] = DayHours(
                row["hour_mask"], row["hours_samples"], row["hours_total"], row["hours_raw_total"]
            )
    else:
        await _load_zoned_days(conn, user_id, metrics, first, end, tz, source, cells, summaries)
    if preferences is not None:
        await _load_shares(conn, user_id, metrics, preferences, cells, summaries)
    return cells


async def _load_zoned_days(
    conn: asyncpg.Connection | asyncpg.Pool,
    user_id: UUID,
    metrics: Sequence[MetricDef],
    first: date,
    end: date,
    tz: str,
    source: str | None,
    cells: dict[str, DayCells],
    summaries: dict[str, dict[date, dict[str, DayHours]]],
) -> None:
    """Days in the zone `tz`, rebuilt from the hour rollups and the samples they leave out."""
    parts: dict[tuple[str, date, str], list[Cell]] = {}
    hourly = [m.metric for m in metrics if m.day_of == "start"]
    for row in await db.hourly_rollups_by_day(
        conn, user_id=user_id, metrics=hourly, tz=tz, first=first, end=end, source=source
    ):
        metric, day, src = row["metric"], row["day"], row["source"]
        summaries[metric].setdefault(day, {})[src] = DayHours(
            row["mask"], row["samples"], row["total"], row["raw_total"]
        )
        _, last_value, offset = row["last"]
        parts[(metric, day, src)] = [
            to_cell({**row, "last_value": last_value, "utc_offset_s": int(offset)})
        ]
    for row in await db.long_samples_by_day(
        conn,
        user_id=user_id,
        metrics=[m.metric for m in metrics],
        by_end=[m.metric for m in metrics if m.day_of == "end"],
        tz=tz,
        first=first,
        end=end,
        source=source,
    ):
        parts.setdefault((row["metric"], row["day"], row["source"]), []).append(to_cell(row))
    for (metric, day, src), day_parts in parts.items():
        cells[metric].days.setdefault(day, {})[src] = merge_cells(day_parts)


async def _load_shares(
    conn: asyncpg.Connection | asyncpg.Pool,
    user_id: UUID,
    metrics: Sequence[MetricDef],
    preferences: Mapping[str, Preference],
    cells: dict[str, DayCells],
    summaries: dict[str, dict[date, dict[str, DayHours]]],
) -> None:
    """`DayCells.shares` of the days that fall back per hour, under each metric's ranking."""
    partial: list[tuple[str, str, date, int]] = []
    for m in metrics:
        preference, days = preferences[m.metric], cells[m.metric].days
        ranked = window_ranking(preference, days)
        for day, by_source in days.items():
            if len(by_source) < 2:
                continue
            hours = summaries[m.metric].get(day, {})
            answered = split_hours(m, ranked, preference.fallback, by_source, hours)
            if not answered:
                continue
            shares = cells[m.metric].shares.setdefault(day, {})
            for src, mine in answered.items():
                whole = hours[src]
                if mine == whole.mask:
                    shares[src] = HourShare(
                        mine.bit_count(), whole.samples, whole.total, whole.raw_total
                    )
                else:
                    shares[src] = HourShare(mine.bit_count(), 0, 0.0, 0.0)
                    partial.append((m.metric, src, day, mine))
    for row in await db.hour_sums(conn, user_id=user_id, keys=partial):
        shares = cells[row["metric"]].shares[row["day"]]
        count = shares[row["source"]].hours
        shares[row["source"]] = HourShare(count, row["samples"], row["total"], row["raw_total"])


async def load_hours(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    metric: MetricDef,
    span: Window,
    tz: str | None,
    source: str | None,
) -> Hours:
    """The caller's hour cells of one metric in a window: UTC hour -> source -> cell. Local
    bounds are local in the zone, else by each hour's recorded offset."""
    zone = ZoneInfo(tz) if tz else None
    utc_from, utc_to = span.utc_from, span.utc_to
    if utc_from is None:
        assert span.local_from is not None
        utc_from = (
            span.local_from.replace(tzinfo=zone).astimezone(UTC)
            if zone
            else span.local_from.replace(tzinfo=UTC) - _MAX_OFFSET
        )
    if utc_to is None:
        assert span.local_to is not None
        utc_to = (
            span.local_to.replace(tzinfo=zone).astimezone(UTC)
            if zone
            else span.local_to.replace(tzinfo=UTC) + _MAX_OFFSET
        )
    hours: Hours = {}
    for row in await db.hourly_rollups(
        conn,
        user_id=user_id,
        metrics=[metric.metric],
        utc_from=utc_from,
        utc_to=utc_to,
        source=source,
    ):
        cell = to_cell(row)
        if zone is None and not _inside_by_offset(row["hour"], cell.utc_offset_s, span):
            continue
        hours.setdefault(row["hour"], {})[cell.source] = cell
    return hours


def _inside_by_offset(hour: datetime, utc_offset_s: int, span: Window) -> bool:
    local = hour.astimezone(timezone(timedelta(seconds=utc_offset_s))).replace(tzinfo=None)
    return (span.local_from is None or local >= span.local_from) and (
        span.local_to is None or local < span.local_to
    )
