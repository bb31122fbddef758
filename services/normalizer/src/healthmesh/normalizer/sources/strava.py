"""strava: raw payloads as the connector publishes them, to unified samples.

One resource, `activities`: one envelope per SummaryActivity of `GET /athlete/activities`
(reference: shared/reference/providers/strava.md, "[SW]" = the official swagger). An activity is
one `workout` sample and nothing else: Strava has no daily totals, and the rule that a workout
never also yields distance/energy samples holds here too (other sources carry the day's totals).

Quirks, and why:
- `start_date` is UTC; `start_date_local` is the local wall time written with a `Z` that is not
  UTC [SW example, "Timezones (trap)"]: the local offset is their difference. `utc_offset`
  (seconds, follows DST) and the `timezone` string "(GMT-08:00) America/Los_Angeles" (standard
  offset + IANA zone) are fallbacks for documents without `start_date_local`.
- The workout spans `start_date` + `elapsed_time` (wall clock, pauses included) and its value is
  that span, so value == end - start as for every other source's session; `moving_time`
  (Strava's pause-detected time) goes to details as `moving_s`.
- `sport_type` (finer, e.g. MountainBikeRide) is preferred over the deprecated `type` (Ride),
  which old documents carry alone (the 2013 fixture), in lower_snake_case.
- `kilojoules` is a power meter's mechanical work, not energy burned: left out (the raw document
  keeps it). Only `calories` (kcal, on detailed activities) becomes `energy_kcal`.
- Heart rate only when `has_heartrate` is not false (Strava's own flag for HR data).
- `manual: true` is an activity typed in by hand: no device, and quality 0.8 (typed, not measured).
"""

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import to_canonical
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Sample,
    UnmappablePayload,
    map_records,
    measurement,
)

MANUAL_QUALITY = 0.8
"""A manual activity is what the athlete typed: kept in aggregates (>= 0.5), marked as typed."""
MAX_OFFSET_S = 14 * 3600
"""The widest UTC offset in use (UTC+14); a larger local/UTC difference is a broken document."""
_TIMEZONE = re.compile(r"^\(GMT(?P<sign>[+-])(?P<h>\d{2}):(?P<m>\d{2})\)\s*(?P<zone>\S*)$")


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    mapper = _RESOURCES.get(envelope.resource)
    if mapper is None:
        raise UnmappablePayload(f"strava resource {envelope.resource!r} has no mapper")
    return mapper(envelope)


def map_activity(envelope: RawPayloadReceived) -> MappingResult:
    """One SummaryActivity (the connector publishes one envelope per activity)."""
    activity = envelope.payload
    if not isinstance(activity, dict):
        raise UnmappablePayload(f"strava activity is not an object: {type(activity).__name__}")
    where = f"activity {activity.get('id')}"
    return map_records([(where, activity)], lambda record: [_workout(envelope, record)])


_RESOURCES: dict[str, Callable[[RawPayloadReceived], MappingResult]] = {
    "activities": map_activity,
}


def _workout(envelope: RawPayloadReceived, activity: dict[str, Any]) -> Sample:
    ident = activity.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise BadRecord(f"id: expected an integer, got {ident!r:.40}")
    start = _utc(activity.get("start_date"), "start_date")
    elapsed = _number(activity, "elapsed_time")
    if elapsed is None or elapsed < 0:
        raise BadRecord(
            f"elapsed_time: expected seconds >= 0, got {activity.get('elapsed_time')!r}"
        )
    offset = _offset(activity, start)
    manual = activity.get("manual") is True
    device = activity.get("device_name")
    quality, reason = _quality(manual, offset is not None)
    return measurement(
        envelope,
        metric="workout",
        value=elapsed,
        unit="s",  # strava.md "Units": time in seconds
        start=start,
        end=start + timedelta(seconds=elapsed),
        utc_offset_s=offset if offset is not None else 0,
        source_field="elapsed_time",
        source_record_id=str(ident),  # the activity id: kept by renames, re-typing, HR reprocessing
        device=device if isinstance(device, str) and device and not manual else None,
        details=_details(activity),
        quality=quality,
        quality_reason=reason,
    )


def _quality(manual: bool, offset_known: bool) -> tuple[float, str | None]:
    """Typed by hand outranks an unknown offset (0.8 < 0.9): one reason per sample."""
    if manual:
        return MANUAL_QUALITY, "entered by hand (Strava manual activity)"
    if not offset_known:
        return 0.9, "local offset unknown"
    return 1.0, None


def _details(activity: dict[str, Any]) -> dict[str, JsonValue]:
    details: dict[str, JsonValue] = {"sport": _sport(activity)}
    moving = _number(activity, "moving_time")
    if moving is not None:
        details["moving_s"] = to_canonical("workout", moving, "s")
    distance = _number(activity, "distance")
    if distance:  # 0, not null, on activities without distance (weights, yoga): not measured
        details["distance_m"] = to_canonical("distance", distance, "m")  # [SW] metres
    calories = _number(activity, "calories")
    if calories:  # detailed activity only [SW]; 0 (not null) when Strava computed none
        details["energy_kcal"] = to_canonical("active_energy", calories, "kcal")
    if activity.get("has_heartrate") is not False:  # absent on old documents: trust the values
        for field, key in (
            ("average_heartrate", "avg_heart_rate"),
            ("max_heartrate", "max_heart_rate"),
        ):
            value = _number(activity, field)
            if value is not None:
                details[key] = to_canonical("heart_rate", value, "bpm")
    return details


def _sport(activity: dict[str, Any]) -> str:
    """`sport_type` (finer) else the deprecated `type`, CamelCase to lower_snake_case."""
    for field in ("sport_type", "type"):
        name = activity.get(field)
        if isinstance(name, str) and name.strip():
            spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
            spaced = re.sub(r"([A-Z])([A-Z][a-z])", r"\1_\2", spaced)  # EBikeRide -> E_Bike_Ride
            return re.sub(r"[\s\-]+", "_", spaced).lower()
    raise BadRecord("neither sport_type nor type names the sport")


def _offset(activity: dict[str, Any], start: datetime) -> int | None:
    """The local offset Strava recorded, or None when the document gives none."""
    local_text = activity.get("start_date_local")
    if local_text is not None:
        # The trailing Z of start_date_local is not UTC: drop it and read the wall time.
        local = _naive(local_text, "start_date_local")
        offset = round((local - start.replace(tzinfo=None)).total_seconds())
        if abs(offset) > MAX_OFFSET_S:
            raise BadRecord(f"start_date_local is {offset} s from start_date, not a UTC offset")
        return offset
    utc_offset = _number(activity, "utc_offset")
    if utc_offset is not None:
        return round(utc_offset)  # seconds, follows DST [strava.md "Timezones"]
    zone = activity.get("timezone")
    return _zone_offset(zone, start) if isinstance(zone, str) else None


def _zone_offset(text: str, start: datetime) -> int | None:
    """From "(GMT-08:00) America/Los_Angeles": the IANA zone at `start`, else the prefix (the
    zone's standard offset, which is off by the DST hour in summer)."""
    match = _TIMEZONE.match(text.strip())
    zone = match["zone"] if match else text.strip()
    try:
        offset = start.astimezone(ZoneInfo(zone)).utcoffset()
        if offset is not None:
            return int(offset.total_seconds())
    except (ZoneInfoNotFoundError, ValueError):
        pass
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    return sign * (int(match["h"]) * 3600 + int(match["m"]) * 60)


def _utc(value: Any, field: str) -> datetime:
    """An ISO time in UTC; one written without a zone is UTC too (start_date is UTC [SW])."""
    if not isinstance(value, str):
        raise BadRecord(f"{field}: expected an ISO 8601 time, got {value!r:.40}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{field}: not an ISO 8601 time: {value!r:.40}") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _naive(value: Any, field: str) -> datetime:
    """A wall-clock time, whatever zone suffix it was written with."""
    if not isinstance(value, str):
        raise BadRecord(f"{field}: expected an ISO 8601 time, got {value!r:.40}")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise BadRecord(f"{field}: not an ISO 8601 time: {value!r:.40}") from None


def _number(activity: dict[str, Any], field: str) -> float | None:
    """A finite number, None when absent or null; anything else rejects the activity."""
    value = activity.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRecord(f"{field}: expected a number, got {value!r:.40}")
    return float(value)
