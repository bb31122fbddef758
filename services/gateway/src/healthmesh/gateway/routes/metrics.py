"""Metric queries: the vocabulary, and values per bucket with the source that answered."""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query

from healthmesh.common.vocabulary import METRICS, MetricDef, metric_def
from healthmesh.gateway import db, rollups
from healthmesh.gateway.deps import CallerPreferences, CurrentUser, Db, SettingsDep
from healthmesh.gateway.metrics import (
    Resolution,
    Window,
    decode_cursor,
    encode_cursor,
    known_metric,
    parse_bound,
    point,
    window,
    zone,
)
from healthmesh.gateway.resolution import (
    Preference,
    Resolved,
    periods,
    preference_for,
    rank,
    resolve_bucket,
    resolve_days,
    single,
)

router = APIRouter(tags=["metrics"])


@router.get("/v1/metrics")
async def vocabulary() -> list[dict[str, str]]:
    """Every unified metric with its canonical unit, category and aggregation."""
    return [
        {"metric": d.metric, "unit": d.unit, "category": d.category, "aggregation": d.aggregation}
        for d in METRICS.values()
    ]


@router.get("/v1/metrics/{metric}")
async def metric_values(
    metric: str,
    caller: CurrentUser,
    pool: Db,
    preferences_of: CallerPreferences,
    settings: SettingsDep,
    start: str | None = None,
    end: str | None = None,
    resolution: Resolution = "day",
    source: Annotated[str, Query(pattern=r"^[a-z0-9_]{1,64}$")] = "resolved",
    tz: str | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Values of one metric per bucket, each saying which source answered (and, when several
    did, each one's part)."""
    definition = known_metric(metric)
    the_zone = zone(tz)
    span = window(parse_bound("start", start), parse_bound("end", end), datetime.now(UTC).date())
    one_source = None if source in ("resolved", "all") else source
    if resolution == "raw":
        return await _raw(
            pool,
            caller.user_id,
            metric,
            span,
            one_source,
            source,
            cursor,
            settings.metrics_max_raw_points,
        )
    preference = None
    if source == "resolved":
        preference = preference_for(await preferences_of(), metric)
    if resolution == "hour":
        hours = await rollups.load_hours(
            pool, user_id=caller.user_id, metric=definition, span=span, tz=tz, source=one_source
        )
        points = _hour_points(definition, hours, preference, the_zone)
    else:
        first, last = rollups.day_bounds(span, the_zone)
        cells = await rollups.load_days(
            pool,
            user_id=caller.user_id,
            metrics=[definition],
            first=first,
            end=last,
            tz=tz,
            source=one_source,
            preferences={metric: preference} if preference else None,
        )
        points = _day_points(definition, cells[metric], preference, resolution, the_zone)
    answer: dict[str, Any] = {
        "metric": metric,
        "unit": definition.unit,
        "resolution": resolution,
        "points": points,
    }
    if source == "all":
        series: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in points:
            series[p["source"]].append(p)
        answer["series"] = [{"source": s, "points": ps} for s, ps in sorted(series.items())]
    return answer


def _day_points(
    metric: MetricDef,
    cells: rollups.DayCells,
    preference: Preference | None,
    resolution: Literal["day", "week", "month"],
    the_zone: tzinfo | None,
) -> list[dict[str, Any]]:
    """Resolved days (or, without a preference, every source's own days), as weeks or months
    when asked; in time order, then by source."""
    if preference is not None:
        serieses = [resolve_days(metric, preference, cells.days, cells.shares)]
    else:
        by_source: dict[str, dict[date, Resolved]] = defaultdict(dict)
        for day, by in cells.days.items():
            for src, cell in by.items():
                by_source[src][day] = single(metric.aggregation, cell)
        serieses = [by_source[src] for src in sorted(by_source)]
    buckets: list[tuple[date, int, Resolved]] = []
    for rank_, days in enumerate(serieses):
        grouped = days if resolution == "day" else periods(metric.aggregation, days, resolution)
        buckets.extend((bucket, rank_, resolved) for bucket, resolved in grouped.items())
    return [
        _point(datetime.combine(bucket, time()), resolution, the_zone, resolved)
        for bucket, _, resolved in sorted(buckets, key=lambda b: (b[0], b[1]))
    ]


def _hour_points(
    metric: MetricDef, hours: rollups.Hours, preference: Preference | None, the_zone: tzinfo | None
) -> list[dict[str, Any]]:
    points = []
    ranked = (
        rank(preference.sources, {s for by in hours.values() for s in by}) if preference else []
    )
    for hour in sorted(hours):
        if preference is None:
            answers = [single(metric.aggregation, hours[hour][s]) for s in sorted(hours[hour])]
        else:
            resolved = resolve_bucket(metric.aggregation, ranked, preference.fallback, hours[hour])
            answers = [resolved] if resolved else []
        for r in answers:
            local = the_zone or timezone(timedelta(seconds=r.utc_offset_s))
            points.append(
                {
                    "start": hour.astimezone(local).isoformat(),
                    "end": (hour + timedelta(hours=1)).astimezone(local).isoformat(),
                    "value": r.value,
                    **r.provenance(),
                }
            )
    return points


def _point(
    bucket: datetime, resolution: Resolution, the_zone: tzinfo | None, resolved: Resolved
) -> dict[str, Any]:
    answer = point(
        bucket,
        resolution,
        the_zone,
        resolved.utc_offset_s,
        resolved.value,
        resolved.source,
        resolved.fallback,
    )
    answer.update(resolved.provenance())
    return answer


async def _raw(
    pool: asyncpg.Pool,
    user_id: UUID,
    metric: str,
    span: Window,
    one_source: str | None,
    source: str,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    # Local bounds widened by the largest UTC offsets (-12h..+14h); exact enough for raw paging.
    utc_from = span.utc_from or _aware(span.local_from) - timedelta(hours=14)
    utc_to = span.utc_to or _aware(span.local_to) + timedelta(hours=12)
    rows = await db.raw_samples(
        pool,
        user_id=user_id,
        metric=metric,
        utc_from=utc_from,
        utc_to=utc_to,
        source=one_source,
        include_flagged=source != "resolved",
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    points = []
    for r in rows:
        local = timezone(timedelta(seconds=r["utc_offset_s"]))
        points.append(
            {
                "id": str(r["id"]),
                "start": r["start_at"].astimezone(local).isoformat(),
                "end": r["end_at"].astimezone(local).isoformat(),
                "value": r["value"],
                "source": r["source"],
                "device": r["device"],
                "quality": r["quality"],
                "quality_reason": r["quality_reason"],
                "raw_event_id": str(r["raw_event_id"]),
                "fallback": False,
            }
        )
    answer: dict[str, Any] = {
        "metric": metric,
        "unit": metric_def(metric).unit,
        "resolution": "raw",
        "points": points,
    }
    if more:
        answer["next_cursor"] = encode_cursor(rows[-1]["start_at"], rows[-1]["id"])
    return answer


def _aware(local: datetime | None) -> datetime:
    assert local is not None  # window() always sets a local bound when no instant is given
    return local.replace(tzinfo=UTC)
