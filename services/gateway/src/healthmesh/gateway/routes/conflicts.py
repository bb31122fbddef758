"""`GET /v1/conflicts`: the caller's days on which sources disagree, with every source's value."""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter

from healthmesh.common.http import ApiError
from healthmesh.common.vocabulary import METRICS, metric_def
from healthmesh.gateway import db, rollups
from healthmesh.gateway.conflicts import SourceValue, conflict, disagree
from healthmesh.gateway.deps import CallerPreferences, CurrentUser, Db
from healthmesh.gateway.echoes import (
    ECHO_METRICS,
    Observed,
    echoed_sources,
    find_echoes,
    from_row,
)
from healthmesh.gateway.resolution import cell_value, preference_for, rank

router = APIRouter(tags=["metrics"])

MAX_DAYS = 366


def parse_day(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ApiError(
        422, "invalid_request", f"{name}: {text!r} is not a date (YYYY-MM-DD); days are local"
    )


def day_span(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The local days asked for, inclusive: up to today, and the 30 days up to `end` by
    default, as for metric series."""
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise ApiError(422, "invalid_request", "start must not be after end")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, "invalid_request", f"at most {MAX_DAYS} days at once")
    return start, end


@router.get("/v1/conflicts")
async def list_conflicts(
    caller: CurrentUser,
    pool: Db,
    preferences_of: CallerPreferences,
    start: str | None = None,
    end: str | None = None,
    metric: str | None = None,
) -> dict[str, Any]:
    """Local days on which your sources disagree about a metric beyond its tolerance, with every
    source's value; a source that only echoes another's data that day is not a disagreement."""
    if metric is not None and metric not in METRICS:
        raise ApiError(
            422, "invalid_request", f"metric: unknown metric {metric!r}; GET /v1/metrics lists them"
        )
    today = datetime.now(UTC).date()
    first, last = day_span(parse_day("start", start), parse_day("end", end), today)
    definitions = [metric_def(metric)] if metric else list(METRICS.values())
    cells = await rollups.load_days(
        pool,
        user_id=caller.user_id,
        metrics=definitions,
        first=first,
        end=last + timedelta(days=1),
        tz=None,
        source=None,
        preferences=None,
    )
    days: dict[tuple[date, str], list[SourceValue]] = {}
    for definition in definitions:
        for day, by_source in cells[definition.metric].days.items():
            days[(day, definition.metric)] = [
                SourceValue(source, cell_value(definition.aggregation, cell))
                for source, cell in by_source.items()
            ]
    disputed = {key: values for key, values in days.items() if disagree(key[1], values)}
    echo_keys = sorted(key for key in disputed if key[1] in ECHO_METRICS)
    if echo_keys:
        prefs = await preferences_of()
        samples = await db.samples_of_days(
            pool,
            user_id=caller.user_id,
            keys=[(m, d, metric_def(m).day_of == "end") for d, m in echo_keys],
        )
        by_key: dict[tuple[date, str], list[Observed]] = defaultdict(list)
        for s in samples:
            if s["quality"] >= 0.5:
                by_key[(s["day"], s["metric"])].append(from_row(s))
        for key in echo_keys:
            day_samples = by_key[key]
            ranked = rank(preference_for(prefs, key[1]).sources, {s.source for s in day_samples})
            echo_of = echoed_sources(day_samples, find_echoes(key[1], day_samples, ranked))
            disputed[key] = [
                SourceValue(v.source, v.value, echo_of.get(v.source)) for v in disputed[key]
            ]
    found = (conflict(day, m, values) for (day, m), values in sorted(disputed.items()))
    return {"conflicts": [c for c in found if c is not None]}
