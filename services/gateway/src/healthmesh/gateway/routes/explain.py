"""`GET /v1/metrics/{metric}/explain`: why one local day's number is what it is.

The choice is the resolution module's (`resolution.resolve_days`, over the same cells the metric
series reads, `rollups.load_days`); this route only lays out what went into it: every source's
own value, the day's samples, what was left out (overlapping devices of one source, implausible
readings, echoes of another source) and the preference that decided. The window is the day
itself: sources are ranked among those with data that day.
"""

from collections.abc import Mapping, Sequence
from datetime import date, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query

from healthmesh.common.http import ApiError
from healthmesh.common.vocabulary import Aggregation, MetricDef
from healthmesh.gateway import db, rollups
from healthmesh.gateway.deps import CallerPreferences, CurrentUser, Db
from healthmesh.gateway.echoes import Echo, find_echoes, from_row
from healthmesh.gateway.metrics import known_metric, zone
from healthmesh.gateway.resolution import (
    Cell,
    Preference,
    Resolved,
    cell_value,
    preference_for,
    rank,
    resolve_days,
)

router = APIRouter(tags=["metrics"])

AGGREGATION_RULES: dict[Aggregation, str] = {
    "sum": "sum of the day's samples per source; where devices of one source overlap (iPhone "
    "and Watch), a device counts only for the time no higher-priority device covered (the "
    "watch first, the phone last)",
    "mean": "mean of the day's plausible readings per source",
    "last": "the day's last reading per source",
    "session": "total length of the day's sessions per source (sleep counts on the day it ends)",
}

DUPLICATE_EPSILON = 1e-6


def plausible(row: Mapping[str, Any]) -> bool:
    return bool(row["quality"] >= 0.5)


def sample_json(row: Mapping[str, Any], echoes: Mapping[Any, Echo]) -> dict[str, Any]:
    local = timezone(timedelta(seconds=row["utc_offset_s"]))
    answer: dict[str, Any] = {
        "id": str(row["id"]),
        "source": row["source"],
        "device": row["device"],
        "start": row["start_at"].astimezone(local).isoformat(),
        "end": row["end_at"].astimezone(local).isoformat(),
        "value": row["value"],
        "quality": row["quality"],
    }
    if row["quality_reason"] is not None:
        answer["quality_reason"] = row["quality_reason"]
    echo = echoes.get(row["id"])
    if echo is not None:
        answer["echo_of"] = echo.pointer()["echo_of"]
    return answer


def devices_of(samples: Sequence[Mapping[str, Any]], source: str) -> list[str]:
    return sorted(
        {s["device"] or "" for s in samples if s["source"] == source and plausible(s)} - {""}
    )


def explanation(
    metric: MetricDef,
    day: date,
    preference: Preference,
    preferences: Mapping[str, Any],
    cells: Mapping[str, Cell],
    resolved: Resolved | None,
    samples: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The answer, from the resolution's output, the day's cells and the day's samples."""
    ranked = list(resolved.ranked) if resolved else rank(preference.sources, cells)
    echoes = find_echoes(metric.metric, [from_row(s) for s in samples if plausible(s)], ranked)
    contributed = {c.source: c for c in resolved.contributions} if resolved else {}
    category = preferences.get("categories", {}).get(metric.category, {})
    by_source = []
    duplicates = []
    for source in ranked:
        cell = cells[source]
        entry: dict[str, Any] = {
            "source": source,
            "value": cell_value(metric.aggregation, cell),
            "samples": cell.samples,
            "devices": devices_of(samples, source),
            "counted": source in contributed,
        }
        if source in contributed and contributed[source].hours is not None:
            entry["hours"] = contributed[source].hours
        by_source.append(entry)
        if cell.raw_total - cell.total > DUPLICATE_EPSILON:
            duplicates.append(
                {
                    "source": source,
                    "value": cell.raw_total - cell.total,
                    "raw_total": cell.raw_total,
                    "total": cell.total,
                    "devices": entry["devices"],
                }
            )
    answer: dict[str, Any] = {
        "metric": metric.metric,
        "unit": metric.unit,
        "date": day.isoformat(),
        "aggregation": metric.aggregation,
        "rule": AGGREGATION_RULES[metric.aggregation],
        "value": resolved.value if resolved else None,
    }
    answer.update(resolved.provenance() if resolved else {"source": None, "fallback": False})
    answer["decision"] = {
        "rule": resolved.rule if resolved else None,
        "preference": {
            "decided_by": preference.decided_by,
            "default": preference.decided_by != "override" and bool(category.get("default")),
            "sources": list(preference.sources),
            "fallback": preference.fallback,
        },
        "ranked": ranked,
        "without_data": [s for s in preference.sources if s not in cells],
    }
    answer["by_source"] = by_source
    by_id = {e.echo.id: e for e in echoes}
    answer["samples"] = [sample_json(s, by_id) for s in samples]
    answer["dropped"] = {
        "duplicates": duplicates,
        "implausible": [
            {
                "id": str(s["id"]),
                "source": s["source"],
                "device": s["device"],
                "value": s["value"],
                "quality": s["quality"],
                "reason": s["quality_reason"],
            }
            for s in samples
            if not plausible(s)
        ],
        "echoes": [e.pointer() for e in echoes],
    }
    return answer


@router.get("/v1/metrics/{metric}/explain")
async def explain(
    metric: str,
    caller: CurrentUser,
    pool: Db,
    preferences_of: CallerPreferences,
    date_: Annotated[str, Query(alias="date", description="The local day, YYYY-MM-DD")],
    tz: str | None = None,
) -> dict[str, Any]:
    """Why a local day's value is what it is: the samples and sources behind it, the rule, what
    was dropped (overlapping devices, implausible readings, echoes) and which preference decided."""
    definition = known_metric(metric)
    try:
        day = date.fromisoformat(date_) if len(date_) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise ApiError(422, "invalid_request", f"date: {date_!r} is not a date (YYYY-MM-DD)")
    zone(tz)  # 422 for an unknown zone
    samples = await db.samples_of_days(
        pool, user_id=caller.user_id, keys=[(metric, day, definition.day_of == "end")], tz=tz
    )
    if not samples:
        raise ApiError(404, "not_found", f"no {metric} data on {day.isoformat()}")
    preferences = await preferences_of()
    preference = preference_for(preferences, metric)
    cells = (
        await rollups.load_days(
            pool,
            user_id=caller.user_id,
            metrics=[definition],
            first=day,
            end=day + timedelta(days=1),
            tz=tz,
            source=None,
            preferences={metric: preference},
        )
    )[metric]
    resolved = resolve_days(definition, preference, cells.days, cells.shares).get(day)
    return explanation(
        definition,
        day,
        preference,
        preferences,
        cells.days.get(day, {}),
        resolved,
        samples,
    )
