"""fitbit: Fitbit data through the Google Health API v4, as the connector publishes it.

Reference: shared/reference/providers/google_health.md ([DISC] = the API's discovery document,
revision 20260527). Resources are the data types in kebab case:
- series (`steps`, `distance`, `active-minutes`, `active-zone-minutes`, `heart-rate`): one payload
  per UTC day, `{"dataPoints": [DataPoint, ...]}`;
- documents (`exercise`, `sleep`, `weight`, `body-fat`, `daily-*`): the payload is one DataPoint
  `{name?, dataSource?, <camelCaseMember>: {...}}`;
- `<type>:dailyRollUp`: the payload is one DailyRollupDataPoint row
  `{civilStartTime, civilEndTime, <camelCaseMember>: {...}}`.

Quirks kept here, and why:
- int64 values arrive as JSON strings ("61"), doubles as numbers: both are read [DISC].
- Offsets and durations are protobuf Duration strings ("19800s", "3539.368s") [DISC].
- Physical times are UTC; each observation carries its own offset (`utcOffset`,
  `startUtcOffset`, ...). When the offset is missing, the civil (local wall) time minus the
  physical time is the offset (google_health.md "Time": derive civil from physical + offset).
- Daily types and daily rollups know only the user's civil date, never an offset [DISC `Date`]:
  they cover that civil day at offset 0, flagged "local offset unknown".
- Units are fixed whatever the user's display settings: mm, g, kcal, %, ms [DISC].
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import to_canonical
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Sample,
    UnmappablePayload,
    local_day,
    map_records,
    measurement,
)

UNKNOWN_OFFSET_QUALITY = 0.9

# --- reading values ------------------------------------------------------------------------------


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _member(point: Any, member: str) -> dict[str, Any]:
    """The DataPoint's union member (e.g. `heartRate`), which holds the time and the values."""
    return _object(_object(point, "data point").get(member), f"`{member}`")


def _number(value: Any, where: str) -> float:
    """A JSON number, or an int64 written as a string (proto3 JSON does that) [DISC]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRecord(f"{where}: {value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise BadRecord(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise BadRecord(f"{where}: {value!r} is not a finite number")
    return number


def _optional_number(parent: dict[str, Any], key: str, where: str) -> float | None:
    value = parent.get(key)
    return None if value is None else _number(value, f"{where}.{key}")


def _moment(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise BadRecord(f"{where}: expected an RFC 3339 time, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{where}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise BadRecord(f"{where}: {value!r} has no zone (physical times are UTC)")
    return moment.astimezone(UTC)


def _duration_s(value: Any, where: str) -> float:
    """A protobuf Duration, "7200s" or "3539.368s"."""
    if not isinstance(value, str) or not value.endswith("s"):
        raise BadRecord(f"{where}: {value!r} is not a duration like '7200s'")
    return _number(value[:-1], where)


def _date(value: Any, where: str) -> date:
    """A google.type.Date `{year, month, day}`."""
    parts = _object(value, where)
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except (KeyError, TypeError, ValueError):
        raise BadRecord(f"{where}: {parts!r} is not a date") from None


def _civil(value: Any, where: str) -> datetime:
    """A CivilDateTime `{date, time?}` as a naive wall time; proto3 JSON leaves out a zero
    time of day, so a missing `time` (or missing hours...) is midnight [DISC `CivilDateTime`]."""
    civil = _object(value, where)
    day = _date(civil.get("date"), f"{where}.date")
    clock = _object(civil.get("time") or {}, f"{where}.time")
    try:
        of_day = time(
            int(clock.get("hours", 0)),
            int(clock.get("minutes", 0)),
            int(clock.get("seconds", 0)),
            int(clock.get("nanos", 0)) // 1000,
        )
    except (TypeError, ValueError):
        raise BadRecord(f"{where}.time: {clock!r} is not a time of day") from None
    return datetime.combine(day, of_day)


def _offset(
    holder: dict[str, Any], offset_key: str, civil_key: str, physical: datetime, where: str
) -> int | None:
    """The local UTC offset of one observation: its own offset field, else its civil time minus
    its physical time (rounded to the minute: civil times may drop the fractional seconds the
    physical time has), else None."""
    if holder.get(offset_key) is not None:
        return round(_duration_s(holder[offset_key], f"{where}.{offset_key}"))
    if holder.get(civil_key) is not None:
        civil = _civil(holder[civil_key], f"{where}.{civil_key}")
        difference = (civil - physical.replace(tzinfo=None)).total_seconds()
        return round(difference / 60) * 60
    return None


@dataclass(frozen=True)
class _When:
    start: datetime
    end: datetime
    offset_s: int | None
    """None when the payload gives no offset at all."""


def _sample_time(member: dict[str, Any], where: str) -> _When:
    """An ObservationSampleTime: an instant."""
    holder = _object(member.get("sampleTime"), f"{where}.sampleTime")
    at = _moment(holder.get("physicalTime"), f"{where}.sampleTime.physicalTime")
    offset = _offset(holder, "utcOffset", "civilTime", at, f"{where}.sampleTime")
    return _When(at, at, offset)


def _interval(member: dict[str, Any], where: str, *, offset_at_end: bool = False) -> _When:
    """An ObservationTimeInterval / SessionTimeInterval. The offset is the start's, or the end's
    when `offset_at_end` (a night belongs to the local day it ends on, so its end's offset)."""
    holder = _object(member.get("interval"), f"{where}.interval")
    start = _moment(holder.get("startTime"), f"{where}.interval.startTime")
    end = _moment(holder.get("endTime"), f"{where}.interval.endTime")
    at_start = _offset(holder, "startUtcOffset", "civilStartTime", start, f"{where}.interval")
    at_end = _offset(holder, "endUtcOffset", "civilEndTime", end, f"{where}.interval")
    first, second = (at_end, at_start) if offset_at_end else (at_start, at_end)
    return _When(start, end, first if first is not None else second)


def _civil_day(member: dict[str, Any], where: str) -> _When:
    """A daily type's `date` in the user's timezone, with no offset anywhere [DISC `Date`]."""
    start, end = local_day(_date(member.get("date"), f"{where}.date"), 0)
    return _When(start, end, None)


def _device(point: dict[str, Any]) -> str | None:
    """dataSource.device.displayName (Fitbit trackers: "Inspire 3"), else its manufacturer
    (Health Connect devices carry only manufacturer/formFactor), else the uploading app."""
    source = point.get("dataSource")
    if not isinstance(source, dict):
        return None
    device = source.get("device")
    if isinstance(device, dict):
        for key in ("displayName", "manufacturer"):
            if isinstance(device.get(key), str) and device[key]:
                return str(device[key])
    application = source.get("application")
    if isinstance(application, dict) and isinstance(application.get("packageName"), str):
        return str(application["packageName"]) or None
    return None


def _record_id(point: dict[str, Any]) -> str:
    """The data point id, last segment of `users/{user}/dataTypes/{type}/dataPoints/{id}`; only
    identifiable types (sleep, exercise, weight, body fat) have a `name` [DISC `DataPoint.name`].
    The `users/{user}` part is left out: it is an alias (`me`) or the user, never the record."""
    name = point.get("name")
    if isinstance(name, str) and name:
        return name.rsplit("/", 1)[-1]
    return ""


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# --- building samples ----------------------------------------------------------------------------


def _sample(
    envelope: RawPayloadReceived,
    point: dict[str, Any],
    when: _When,
    *,
    metric: str,
    value: float,
    unit: str,
    source_field: str,
    details: dict[str, JsonValue] | None = None,
) -> Sample:
    known = when.offset_s is not None
    return measurement(
        envelope,
        metric=metric,
        value=value,
        unit=unit,
        start=when.start,
        end=when.end,
        utc_offset_s=when.offset_s if when.offset_s is not None else 0,
        source_field=source_field,
        source_record_id=_record_id(point),
        device=_device(point),
        details=details,
        quality=1.0 if known else UNKNOWN_OFFSET_QUALITY,
        quality_reason=None if known else "local offset unknown",
    )


PointMapper = Callable[[RawPayloadReceived, dict[str, Any]], list[Sample]]


def _steps(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    steps = _member(point, "steps")
    return [
        _sample(
            envelope,
            point,
            _interval(steps, "steps"),
            metric="steps",
            value=_number(steps.get("count"), "steps.count"),
            unit="count",
            source_field="steps.count",
        )
    ]


def _distance(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    distance = _member(point, "distance")
    return [
        _sample(
            envelope,
            point,
            _interval(distance, "distance"),
            metric="distance",
            value=_number(distance.get("millimeters"), "distance.millimeters"),
            unit="mm",  # "Distance in millimeters over the observed interval" [DISC Distance]
            source_field="distance.millimeters",
        )
    ]


ACTIVE_LEVELS = frozenset(("MODERATE", "VIGOROUS"))
"""Active minutes are moderate-to-vigorous minutes (Fitbit's "fairly" + "very active", Apple's
exercise minutes); LIGHT minutes are left out, or every slow stroll would count."""


def _active_minutes(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    member = _member(point, "activeMinutes")
    levels = member.get("activeMinutesByActivityLevel")
    if not isinstance(levels, list):
        raise BadRecord("activeMinutes.activeMinutesByActivityLevel is not a list")
    minutes = [
        _number(level.get("activeMinutes"), f"activeMinutes.{level.get('activityLevel')}")
        for level in (_object(item, "activeMinutesByActivityLevel[]") for item in levels)
        if level.get("activityLevel") in ACTIVE_LEVELS
    ]
    if not minutes:
        return []  # light activity only
    return [
        _sample(
            envelope,
            point,
            _interval(member, "activeMinutes"),
            metric="active_minutes",
            value=sum(minutes),
            unit="min",
            source_field="activeMinutes.activeMinutesByActivityLevel.activeMinutes",
        )
    ]


def _active_zone_minutes(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    # Active Zone Minutes are credits, not minutes: 1 per fat-burn minute, 2 per cardio/peak
    # minute [DISC ActiveZoneMinutes]. No vocabulary metric is that; active_minutes comes from
    # `active-minutes`, and filing AZM there too would double count it.
    _member(point, "activeZoneMinutes")
    return []


def _heart_rate(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    heart = _member(point, "heartRate")
    return [
        _sample(
            envelope,
            point,
            _sample_time(heart, "heartRate"),
            metric="heart_rate",
            value=_number(heart.get("beatsPerMinute"), "heartRate.beatsPerMinute"),
            unit="bpm",
            source_field="heartRate.beatsPerMinute",
        )
    ]


def _exercise(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    exercise = _member(point, "exercise")
    when = _interval(exercise, "exercise")
    # activeDuration is the time excluding pauses [DISC Exercise], what the app shows as the
    # duration; without it, the session's length.
    if exercise.get("activeDuration") is not None:
        seconds = _duration_s(exercise["activeDuration"], "exercise.activeDuration")
    else:
        seconds = (when.end - when.start).total_seconds()
    # exerciseType is an open enum (TRAIL_RUN, TREADMILL... beyond the 13 documented values):
    # kept as given; unset, the user's displayName says what it was.
    kind = exercise.get("exerciseType")
    name = exercise.get("displayName")
    if isinstance(kind, str) and kind and kind != "EXERCISE_TYPE_UNSPECIFIED":
        sport = _snake(kind)
    elif isinstance(name, str) and _snake(name):
        sport = _snake(name)
    else:
        sport = "other"
    details: dict[str, JsonValue] = {"sport": sport}
    summary = _object(exercise.get("metricsSummary") or {}, "exercise.metricsSummary")
    where = "exercise.metricsSummary"
    # metricsSummary: caloriesKcal (kcal), distanceMillimeters (mm, a double),
    # averageHeartRateBeatsPerMinute (int64 string); no maximum heart rate [DISC MetricsSummary].
    for key, field, metric, unit in (
        ("energy_kcal", "caloriesKcal", "active_energy", "kcal"),
        ("distance_m", "distanceMillimeters", "distance", "mm"),
        ("avg_heart_rate", "averageHeartRateBeatsPerMinute", "heart_rate", "bpm"),
    ):
        value = _optional_number(summary, field, where)
        if value is not None:
            details[key] = to_canonical(metric, value, unit)
    # The exercise's calories, distance and steps are already in the day's totals: detail only.
    return [
        _sample(
            envelope,
            point,
            when,
            metric="workout",
            value=seconds,
            unit="s",
            source_field="exercise.activeDuration",
            details=details,
        )
    ]


STAGE_DETAILS = {"DEEP": "deep_s", "LIGHT": "light_s", "REM": "rem_s"}
"""STAGES sleep's stage types; CLASSIC sleep has ASLEEP/RESTLESS/AWAKE only [DISC SleepStage]."""


def _sleep(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    sleep = _member(point, "sleep")
    when = _interval(sleep, "sleep", offset_at_end=True)
    # summary is output only, computed once the algorithms have run: without minutesAsleep the
    # night is not scored yet, which is no error.
    summary = _object(sleep.get("summary") or {}, "sleep.summary")
    asleep_min = _optional_number(summary, "minutesAsleep", "sleep.summary")
    if asleep_min is None:
        return []
    details: dict[str, JsonValue] = {}
    for stage in summary.get("stagesSummary") or []:
        stage = _object(stage, "sleep.summary.stagesSummary[]")
        key = STAGE_DETAILS.get(str(stage.get("type")))
        if key is not None:
            details[key] = round(_number(stage.get("minutes"), f"stagesSummary.{key}") * 60)
    # minutesAwake "is a sum of all AWAKE stages"; minutesInSleepPeriod is wake time minus
    # bedtime, the sum of all stages: the time in bed [DISC SleepSummary].
    awake_min = _optional_number(summary, "minutesAwake", "sleep.summary")
    if awake_min is not None:
        details["awake_s"] = round(awake_min * 60)
    in_bed_min = _optional_number(summary, "minutesInSleepPeriod", "sleep.summary")
    if in_bed_min is not None:
        details["in_bed_s"] = round(in_bed_min * 60)
    # metadata.nap is documented but reportedly not returned; REJECTED_NAP says the same
    # ("the sleep log is a nap (has < 3h duration)") [DISC SleepMetadata].
    metadata = _object(sleep.get("metadata") or {}, "sleep.metadata")
    if metadata.get("nap") is True or metadata.get("stagesStatus") == "REJECTED_NAP":
        details["nap"] = True
    # The API gives no sleep efficiency; none is made up.
    asleep_s = asleep_min * 60
    return [
        _sample(
            envelope,
            point,
            when,
            metric="sleep_session",
            value=asleep_s,
            unit="s",
            source_field="sleep.summary.minutesAsleep",
            details=details,
        ),
        _sample(
            envelope,
            point,
            when,
            metric="sleep_duration",
            value=asleep_s,
            unit="s",
            source_field="sleep.summary.minutesAsleep",
        ),
    ]


def _weight(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    weight = _member(point, "weight")
    return [
        _sample(
            envelope,
            point,
            _sample_time(weight, "weight"),
            metric="body_mass",
            value=_number(weight.get("weightGrams"), "weight.weightGrams"),
            unit="g",  # "Weight of a user in grams" [DISC Weight]
            source_field="weight.weightGrams",
        )
    ]


def _body_fat(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    fat = _member(point, "bodyFat")
    return [
        _sample(
            envelope,
            point,
            _sample_time(fat, "bodyFat"),
            metric="body_fat",
            value=_number(fat.get("percentage"), "bodyFat.percentage"),
            unit="%",  # "Body fat percentage, in range [0, 100]" [DISC BodyFat]: not a fraction
            source_field="bodyFat.percentage",
        )
    ]


def _resting_heart_rate(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    resting = _member(point, "dailyRestingHeartRate")
    return [
        _sample(
            envelope,
            point,
            _civil_day(resting, "dailyRestingHeartRate"),
            metric="resting_heart_rate",
            value=_number(resting.get("beatsPerMinute"), "dailyRestingHeartRate.beatsPerMinute"),
            unit="bpm",
            source_field="dailyRestingHeartRate.beatsPerMinute",
        )
    ]


def _daily_hrv(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    hrv = _member(point, "dailyHeartRateVariability")
    when = _civil_day(hrv, "dailyHeartRateVariability")
    # averageHeartRateVariabilityMilliseconds is "calculated using the root mean square of
    # successive differences (RMSSD)" [DISC DailyHeartRateVariability]: RMSSD, not SDNN. The
    # deep-sleep RMSSD of the same night is left out (a second value for the same day and
    # metric would be averaged in); entropy and non-REM heart rate have no metric. Every field
    # is optional: a day without the average yields nothing.
    average = _optional_number(
        hrv, "averageHeartRateVariabilityMilliseconds", "dailyHeartRateVariability"
    )
    if average is None:
        return []
    return [
        _sample(
            envelope,
            point,
            when,
            metric="hrv_rmssd",
            value=average,
            unit="ms",
            source_field="dailyHeartRateVariability.averageHeartRateVariabilityMilliseconds",
        )
    ]


def _daily_spo2(envelope: RawPayloadReceived, point: dict[str, Any]) -> list[Sample]:
    spo2 = _member(point, "dailyOxygenSaturation")
    return [
        _sample(
            envelope,
            point,
            _civil_day(spo2, "dailyOxygenSaturation"),
            metric="spo2",
            # "The average value of the oxygen saturation samples during the sleep", in %
            # [DISC DailyOxygenSaturation]; its confidence bounds are not separate metrics.
            value=_number(spo2.get("averagePercentage"), "dailyOxygenSaturation.averagePercentage"),
            unit="%",
            source_field="dailyOxygenSaturation.averagePercentage",
        )
    ]


def _rollup_day(row: dict[str, Any]) -> _When:
    """A daily rollup row's civil window (midnight to midnight, no offset given) [DISC
    DailyRollupDataPoint]."""
    start = _civil(row.get("civilStartTime"), "civilStartTime").replace(tzinfo=UTC)
    if row.get("civilEndTime") is None:
        return _When(start, start + timedelta(days=1), None)
    end = _civil(row.get("civilEndTime"), "civilEndTime").replace(tzinfo=UTC)
    return _When(start, end, None)


def _counted_intraday(envelope: RawPayloadReceived, row: dict[str, Any]) -> list[Sample]:
    # steps and distance rollups are the same steps and metres as the minute intervals of the
    # `steps` / `distance` series, which are mapped: emitting the day's rollup as well would
    # double the day. Whether a day has intervals cannot be told from one row, so rollups of
    # these two yield nothing. (Caveat: list intervals are per data source, and a phone and a
    # tracker overlap, while the rollup is reconciled across sources; google_health.md §7.7.)
    _rollup_day(row)
    return []


def _total_calories(envelope: RawPayloadReceived, row: dict[str, Any]) -> list[Sample]:
    # total-calories exists only as a rollup (no list) [DISC]: nothing else carries it.
    calories = _object(row.get("totalCalories") or {}, "totalCalories")
    kcal = _optional_number(calories, "kcalSum", "totalCalories")
    when = _rollup_day(row)
    if kcal is None:
        return []  # a day without data
    return [
        _sample(
            envelope,
            row,
            when,
            metric="total_energy",
            value=kcal,
            unit="kcal",
            source_field="totalCalories.kcalSum",
        )
    ]


# --- dispatch ------------------------------------------------------------------------------------

SERIES: dict[str, PointMapper] = {
    "steps": _steps,
    "distance": _distance,
    "active-minutes": _active_minutes,
    "active-zone-minutes": _active_zone_minutes,
    "heart-rate": _heart_rate,
}
"""One payload per UTC day: `{"dataPoints": [...]}`."""

DOCUMENTS: dict[str, PointMapper] = {
    "exercise": _exercise,
    "sleep": _sleep,
    "weight": _weight,
    "body-fat": _body_fat,
    "daily-resting-heart-rate": _resting_heart_rate,
    "daily-heart-rate-variability": _daily_hrv,
    "daily-oxygen-saturation": _daily_spo2,
    "steps:dailyRollUp": _counted_intraday,
    "distance:dailyRollUp": _counted_intraday,
    "total-calories:dailyRollUp": _total_calories,
}
"""One payload per data point or rollup row."""


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    resource, payload = envelope.resource, envelope.payload
    if resource in SERIES:
        points = payload.get("dataPoints") if isinstance(payload, dict) else None
        if not isinstance(points, list):
            raise UnmappablePayload(f"fitbit {resource}: expected {{'dataPoints': [...]}}")
        one = SERIES[resource]
        return map_records(
            ((f"dataPoints[{i}]", point) for i, point in enumerate(points)),
            lambda point: one(envelope, _object(point, "data point")),
        )
    if resource in DOCUMENTS:
        if not isinstance(payload, dict):
            raise UnmappablePayload(f"fitbit {resource}: the payload is not an object")
        document = DOCUMENTS[resource]
        return map_records(
            [(_record_id(payload) or resource, payload)],
            lambda point: document(envelope, point),
        )
    raise UnmappablePayload(f"fitbit resource {resource!r} has no mapper")
