"""oura: raw payloads as the connector publishes them, to unified samples.

Resources (reference: shared/reference/providers/oura.md; "[SPEC X]" = schema X of the official
OpenAPI 1.29 in samples/oura): one envelope per document for daily_activity, sleep, daily_sleep,
daily_readiness, daily_spo2 and workout (the document as Oura returns it in `data[]`); heartrate
is one envelope per UTC day, `{"data": [{bpm, source, timestamp}, ...]}`. A signed webhook with
`event_type` `delete` becomes a tombstone, resource `deleted`, payload `{"resource", "id",
"event"}`: every sample with that document id (`object_id`, the `id` its samples carry) goes.

Quirks, and why:
- Times: each document's own timestamps carry the user's offset (workouts of one day even differ,
  +02:00 and +00:00 [CASS multiple_workout]); heart-rate rows are UTC [SPEC PublicHeartRateRow:
  UtcDateTime]. daily_readiness's `timestamp` is written as UTC midnight of `day` (recorded
  `2024-11-11T00:00:00+00:00` for a user whose activity that day is +01:00) and daily_spo2 has no
  time at all: their offset is unknown unless a non-zero one is given.
- daily_activity covers 24 h from 04:00 local [SPEC PublicDailyActivity]; `timestamp` is that
  04:00 with the user's offset. Like every daily summary it is filed on its local calendar day.
- `equivalent_walking_distance` is energy expenditure expressed as a walking distance, "not the
  real distance traveled" (Oura glossary; sample: 17850 m for 15185 steps = 1.18 m a step): not
  `distance`. Total burn minus active burn is not Oura's BMR (active burn is only the part above
  1.5 MET, Oura support "Total Calorie Burn and Activity"): no `basal_energy` is derived.
- `average_hrv` is RMSSD ("Oura calculates your nighttime HRV using rMSSD", Oura support article
  360025441974); `lowest_heart_rate` is Oura's nightly resting heart rate ("displays the lowest
  ... it has detected", article 360025588793), 255 meaning "no heart rate" (recorded with
  `heart_rate: null`). Both, with `average_breath`, are night-time measures: taken from
  `long_sleep` periods only, so a nap's vitals do not skew a day's mean.
- Sleep `type` [SPEC PublicSleepType]: `deleted` (deleted by the user) and `rest` (falsely
  detected, rejected by the user) yield nothing; `sleep` (max 3 h) and `late_nap` are naps.
- Heart rate during sleep comes from the heartrate rows (source `sleep`); the sleep document's
  5-minute `heart_rate`/`hrv` samples and `average_heart_rate` would count it twice: left out.
- No payload names the device (`ring_id` is encrypted [SPEC PublicModifiedSleepModel]): no device.
"""

import math
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import to_canonical
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Sample,
    Series,
    UnmappablePayload,
    local_day,
    map_records,
    measurement,
    offset_seconds,
    series,
    tombstone,
)

UNKNOWN_OFFSET_QUALITY = 0.9
UNKNOWN_OFFSET = "local offset unknown"
NO_HEART_RATE = 255
"""`lowest_heart_rate` when the period had no heart rate (recorded with `heart_rate: null`)."""
_NAP = {"long_sleep": False, "sleep": True, "late_nap": True}
"""Sleep types that are sleep, and whether each is a nap [SPEC PublicSleepType]."""
_NOT_SLEEP = ("deleted", "rest")
"""Deleted by the user, or a detection the user rejected [SPEC PublicSleepType]."""

Document = dict[str, Any]


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    if envelope.resource == "heartrate":
        return _map_heartrate(envelope)
    if envelope.resource == "deleted":
        return tombstone(envelope, _DOCUMENTS)
    mapper = _DOCUMENTS.get(envelope.resource)
    if mapper is None:
        raise UnmappablePayload(f"oura resource {envelope.resource!r} has no mapper")
    doc = envelope.payload
    if not isinstance(doc, dict):
        raise UnmappablePayload(f"oura {envelope.resource}: payload is not a document")
    where = f"{envelope.resource} {doc.get('id', '?')}"
    return map_records([(where, doc)], lambda record: mapper(envelope, record))


def _map_heartrate(envelope: RawPayloadReceived) -> MappingResult:
    """A UTC day of rows, `{"data": [...]}`; each row is one instant."""
    payload = envelope.payload
    rows = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise UnmappablePayload("oura heartrate: payload has no `data` list")
    heart_rate = series(
        envelope,
        metric="heart_rate",
        unit="bpm",
        source_field="bpm",
        quality=UNKNOWN_OFFSET_QUALITY,
        quality_reason=UNKNOWN_OFFSET,
    )
    return map_records(
        ((f"heartrate data[{i}]", row) for i, row in enumerate(rows)),
        lambda row: _heart_rate(heart_rate, row),
    )


# --- resources -----------------------------------------------------------------------------------


def _daily_activity(envelope: RawPayloadReceived, doc: Document) -> list[Sample]:
    record_id = _text(doc, "id")
    # `timestamp` is the day's 04:00 start with the user's offset [SPEC PublicDailyActivity].
    offset = offset_seconds(_moment(doc, "timestamp"))
    start, end = local_day(_day(doc), offset)
    medium, high = _number(doc, "medium_activity_time"), _number(doc, "high_activity_time")
    values: list[tuple[str, str, float | None, str]] = [
        ("steps", "steps", _number(doc, "steps"), "count"),
        ("active_energy", "active_calories", _number(doc, "active_calories"), "kcal"),
        ("total_energy", "total_calories", _number(doc, "total_calories"), "kcal"),
        # Active minutes = moderate + vigorous time (Oura's medium + high activity, seconds).
        (
            "active_minutes",
            "medium_activity_time+high_activity_time",
            None if medium is None or high is None else medium + high,
            "s",
        ),
    ]
    return [
        measurement(
            envelope,
            metric=metric,
            value=value,
            unit=unit,
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field=field,
            source_record_id=record_id,
        )
        for metric, field, value, unit in values
        if value is not None
    ]


def _daily_readiness(envelope: RawPayloadReceived, doc: Document) -> list[Sample]:
    record_id, day = _text(doc, "id"), _day(doc)
    score = _number(doc, "score")
    if score is None:  # not scored (yet): Oura computes it once the app has synced
        return []
    return [_daily(envelope, doc, day, "readiness", score, "score", "score", record_id)]


def _daily_spo2(envelope: RawPayloadReceived, doc: Document) -> list[Sample]:
    record_id, day = _text(doc, "id"), _day(doc)
    aggregates = doc.get("spo2_percentage")
    if aggregates is None:  # nullable: no SpO2 measured that night [SPEC PublicDailySpO2]
        return []
    if not isinstance(aggregates, dict):
        raise BadRecord(f"spo2_percentage is {aggregates!r}, not an object")
    average = _number(aggregates, "average")
    if average is None:
        return []
    # A percentage 0..100, not a fraction (recorded 98.072).
    field = "spo2_percentage.average"
    return [_daily(envelope, doc, day, "spo2", average, "%", field, record_id)]


def _daily_sleep(envelope: RawPayloadReceived, doc: Document) -> list[Sample]:
    """Only a score and its contributors, none of them a vocabulary metric."""
    return []


def _sleep(envelope: RawPayloadReceived, doc: Document) -> list[Sample]:
    record_id = _text(doc, "id")
    start, end = _moment(doc, "bedtime_start"), _moment(doc, "bedtime_end")
    kind = doc.get("type")
    if kind in _NOT_SLEEP:
        return []
    if kind is not None and kind not in _NAP:
        raise BadRecord(f"unknown sleep type {kind!r}")
    # The sleep belongs to the day it ends on: the offset of its end.
    offset = offset_seconds(end)

    def sample(
        metric: str, value: float, unit: str, field: str, details: dict[str, JsonValue] | None
    ) -> Sample:
        return measurement(
            envelope,
            metric=metric,
            value=value,
            unit=unit,
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field=field,
            source_record_id=record_id,
            details=details,
        )

    samples = []
    asleep = _number(doc, "total_sleep_duration")
    if asleep is not None:  # null until the period is scored
        details = _sleep_details(doc)
        if kind is not None and _NAP[kind]:
            details["nap"] = True
        samples.append(sample("sleep_session", asleep, "s", "total_sleep_duration", details))
        samples.append(sample("sleep_duration", asleep, "s", "total_sleep_duration", None))
    if kind != "long_sleep":
        return samples
    hrv = _number(doc, "average_hrv")
    if hrv is not None:
        samples.append(sample("hrv_rmssd", hrv, "ms", "average_hrv", None))
    lowest = _number(doc, "lowest_heart_rate")
    if lowest is not None and lowest != NO_HEART_RATE:
        samples.append(sample("resting_heart_rate", lowest, "bpm", "lowest_heart_rate", None))
    breath = _number(doc, "average_breath")
    if breath is not None:
        samples.append(sample("respiratory_rate", breath, "/min", "average_breath", None))
    return samples


def _sleep_details(doc: Document) -> dict[str, JsonValue]:
    """Stage seconds, time in bed and efficiency (%), where given [SPEC: all in seconds]."""
    fields = {
        "deep_s": "deep_sleep_duration",
        "light_s": "light_sleep_duration",
        "rem_s": "rem_sleep_duration",
        "awake_s": "awake_time",
        "in_bed_s": "time_in_bed",
        "efficiency": "efficiency",
    }
    details: dict[str, JsonValue] = {}
    for key, field in fields.items():
        value = _number(doc, field)
        if value is not None:
            details[key] = value
    return details


def _workout(envelope: RawPayloadReceived, doc: Document) -> list[Sample]:
    record_id = _text(doc, "id")
    start, end = _moment(doc, "start_datetime"), _moment(doc, "end_datetime")
    details: dict[str, JsonValue] = {"sport": _snake_case(_text(doc, "activity"))}
    calories = _number(doc, "calories")  # kilocalories [SPEC PublicWorkout]
    if calories is not None:
        details["energy_kcal"] = to_canonical("active_energy", calories, "kcal")
    distance = _number(doc, "distance")  # metres, null when not measured [SPEC PublicWorkout]
    if distance is not None:
        details["distance_m"] = to_canonical("distance", distance, "m")
    return [
        measurement(
            envelope,
            metric="workout",
            value=(end - start).total_seconds(),
            unit="s",
            start=start,
            end=end,
            utc_offset_s=offset_seconds(start),
            source_field="end_datetime-start_datetime",
            source_record_id=record_id,
            details=details,
        )
    ]


def _heart_rate(heart_rate: Series, row: Any) -> list[Sample]:
    """Every row whatever its `source` (awake/rest/sleep/session/live/workout): each is a heart
    rate at that instant, and no other Oura resource we map carries them."""
    if not isinstance(row, dict):
        raise BadRecord(f"row is {row!r}, not an object")
    at = _moment(row, "timestamp")
    bpm = _number(row, "bpm")
    if bpm is None:
        raise BadRecord("bpm is missing")
    # Rows are UTC [SPEC UtcDateTime]: the wearer's offset is not in the payload.
    return [heart_rate.point(bpm, at, at, utc_offset_s=0)]


_DOCUMENTS: dict[str, Callable[[RawPayloadReceived, Document], list[Sample]]] = {
    "daily_activity": _daily_activity,
    "daily_readiness": _daily_readiness,
    "daily_spo2": _daily_spo2,
    "daily_sleep": _daily_sleep,
    "sleep": _sleep,
    "workout": _workout,
}


# --- reading documents ---------------------------------------------------------------------------


def _daily(
    envelope: RawPayloadReceived,
    doc: Document,
    day: date,
    metric: str,
    value: float,
    unit: str,
    field: str,
    record_id: str,
) -> Sample:
    """A day-document value filed on its local day. daily_readiness writes `timestamp` as UTC
    midnight (recorded +00:00 for a +01:00 user) and daily_spo2 has none: only a non-zero offset
    is taken as the user's, else the offset is unknown."""
    given = offset_seconds(_moment(doc, "timestamp")) if doc.get("timestamp") is not None else 0
    offset, quality, reason = given, 1.0, None
    if given == 0:
        quality, reason = UNKNOWN_OFFSET_QUALITY, UNKNOWN_OFFSET
    start, end = local_day(day, offset)
    return measurement(
        envelope,
        metric=metric,
        value=value,
        unit=unit,
        start=start,
        end=end,
        utc_offset_s=offset,
        source_field=field,
        source_record_id=record_id,
        quality=quality,
        quality_reason=reason,
    )


def _text(doc: Document, key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise BadRecord(f"{key} is missing or not text ({value!r})")
    return value


def _day(doc: Document) -> date:
    text = _text(doc, "day")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRecord(f"day {text!r} is not a YYYY-MM-DD date") from None


def _moment(doc: Document, key: str) -> datetime:
    text = _text(doc, key)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRecord(f"{key} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadRecord(f"{key} {text!r} has no UTC offset")
    return moment


def _number(doc: Document, key: str) -> float | None:
    """The number at `key`; None when absent or null (not measured / not scored yet)."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRecord(f"{key} is {value!r}, not a number")
    return float(value)


def _snake_case(name: str) -> str:
    """`strengthTraining`, `Strength training` -> `strength_training`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")
