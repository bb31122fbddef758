"""Metric queries: the vocabulary, and values per bucket with the source that answered."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import httpx
from fastapi import APIRouter, Query, Request

from healthmesh.common.http import ApiError
from healthmesh.common.vocabulary import METRICS, metric_def
from healthmesh.gateway import db
from healthmesh.gateway.deps import CurrentUser, Db, Http, SettingsDep
from healthmesh.gateway.metrics import (
    Resolution,
    Window,
    choose_source,
    decode_cursor,
    encode_cursor,
    parse_bound,
    point,
    window,
    zone,
)

router = APIRouter(tags=["metrics"])


@router.get("/v1/metrics")
async def vocabulary() -> list[dict[str, str]]:
    """Every unified metric with its canonical unit, category and aggregation."""
    return [
        {"metric": d.metric, "unit": d.unit, "category": d.category, "aggregation": d.aggregation}
        for d in METRICS.values()
    ]


async def _priority(
    request: Request, http: Http, preferences_url: str, metric: str
) -> tuple[list[str], bool]:
    """The caller's source order for `metric`: the override if any, else its category's."""
    try:
        answer = await http.get(
            f"{preferences_url}/v1/preferences",
            headers={"authorization": request.headers.get("authorization", "")},
            timeout=5.0,
        )
        answer.raise_for_status()
    except httpx.HTTPError:
        raise ApiError(503, "unavailable", "the preferences service did not answer") from None
    prefs = answer.json()
    category = prefs["categories"][metric_def(metric).category]
    override = prefs.get("overrides", {}).get(metric)
    return (list(override) if override else list(category["sources"])), bool(category["fallback"])


@router.get("/v1/metrics/{metric}")
async def metric_values(
    metric: str,
    request: Request,
    caller: CurrentUser,
    pool: Db,
    http: Http,
    settings: SettingsDep,
    start: str | None = None,
    end: str | None = None,
    resolution: Resolution = "day",
    source: Annotated[str, Query(pattern=r"^[a-z0-9_]{1,64}$")] = "resolved",
    tz: str | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Values of one metric per bucket, each saying which source answered."""
    if metric not in METRICS:
        raise ApiError(404, "not_found", f"unknown metric {metric!r}; GET /v1/metrics lists them")
    definition = metric_def(metric)
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
    rows = await db.bucketed(
        pool,
        user_id=caller.user_id,
        metric=metric,
        aggregation=definition.aggregation,
        unit=resolution,
        by_end=definition.category == "sleep",
        tz=tz,
        local_from=span.local_from,
        local_to=span.local_to,
        utc_from=span.utc_from,
        utc_to=span.utc_to,
        source=one_source,
    )
    answer: dict[str, Any] = {"metric": metric, "unit": definition.unit, "resolution": resolution}
    if source != "resolved":
        points = [
            point(
                r["bucket"], resolution, the_zone, r["utc_offset_s"], r["value"], r["source"], False
            )
            for r in rows
        ]
        answer["points"] = points
        if source == "all":
            series: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for p in points:
                series[p["source"]].append(p)
            answer["series"] = [{"source": s, "points": ps} for s, ps in sorted(series.items())]
        return answer
    priority, fallback = await _priority(request, http, settings.preferences_url, metric)
    # Rank only the sources this user has data from here, so a lone source is never a fallback.
    present = {r["source"] for r in rows}
    priority = [s for s in priority if s in present]
    by_bucket: dict[datetime, dict[str, Any]] = defaultdict(dict)
    for r in rows:
        by_bucket[r["bucket"]][r["source"]] = r
    points = []
    for bucket in sorted(by_bucket):
        choice = choose_source(set(by_bucket[bucket]), priority, fallback)
        if choice is None:
            continue
        r = by_bucket[bucket][choice.source]
        points.append(
            point(
                bucket,
                resolution,
                the_zone,
                r["utc_offset_s"],
                r["value"],
                choice.source,
                choice.fallback,
            )
        )
    answer["points"] = points
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
