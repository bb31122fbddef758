"""The daily summary: every category's numbers per local day, each resolved with its source."""

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from healthmesh.common.http import ApiError
from healthmesh.common.vocabulary import METRICS
from healthmesh.gateway import rollups
from healthmesh.gateway.deps import CallerPreferences, CurrentUser, Db
from healthmesh.gateway.metrics import parse_bound, window, zone
from healthmesh.gateway.resolution import Preference, preference_for, resolve_days

router = APIRouter(tags=["metrics"])

CATEGORIES = ("activity", "sleep", "body", "heart", "recovery", "nutrition")
MAX_DAYS = 366


def summary_days(
    cells: dict[str, rollups.DayCells], preferences: dict[str, Preference]
) -> list[dict[str, Any]]:
    """Days with any data, in date order; in each, every category (empty when it has no data)
    with its metrics in vocabulary order, each `{"value", "unit", "source", "fallback"}` plus
    `sources` when several sources contributed."""
    days: dict[date, dict[str, dict[str, Any]]] = {}
    for definition in METRICS.values():
        metric_cells = cells[definition.metric]
        resolved = resolve_days(
            definition, preferences[definition.metric], metric_cells.days, metric_cells.shares
        )
        for day, answer in resolved.items():
            entry = days.setdefault(day, {category: {} for category in CATEGORIES})
            entry[definition.category][definition.metric] = {
                "value": answer.value,
                "unit": definition.unit,
                **answer.provenance(),
            }
    return [{"date": day.isoformat(), **days[day]} for day in sorted(days)]


def etag_of(content: bytes) -> str:
    """A strong validator: the same bytes, the same tag."""
    return f'"{hashlib.sha256(content).hexdigest()[:32]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*` or any listed tag (weak comparison, so `W/` is ignored)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/v1/summary/daily",
    responses={
        200: {"description": '`{"days": [...]}` with an `ETag`'},
        304: {"description": "Unchanged since the `If-None-Match` tag"},
    },
)
async def daily_summary(
    request: Request,
    caller: CurrentUser,
    pool: Db,
    preferences_of: CallerPreferences,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
) -> Response:
    """One object per local day across all categories, each number resolved with its source."""
    the_zone = zone(tz)
    span = window(parse_bound("start", start), parse_bound("end", end), datetime.now(UTC).date())
    first, last = rollups.day_bounds(span, the_zone)
    if (last - first).days > MAX_DAYS:
        raise ApiError(422, "invalid_request", f"a summary covers at most {MAX_DAYS} days")
    chosen = await preferences_of()
    preferences = {metric: preference_for(chosen, metric) for metric in METRICS}
    cells = await rollups.load_days(
        pool,
        user_id=caller.user_id,
        metrics=list(METRICS.values()),
        first=first,
        end=last,
        tz=tz,
        source=None,
        preferences=preferences,
    )
    content = json.dumps({"days": summary_days(cells, preferences)}, separators=(",", ":")).encode()
    headers = {"ETag": etag_of(content), "Cache-Control": "private, no-cache"}
    if matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)
