"""apple_health: items of an export.xml (as the importer's reader yields them) to unified samples.

Envelope: source "apple_health", resource "export", payload {"records": [item, ...]}, each item a
dict from `healthmesh.connectors.importers.apple_health_xml.read_export` (kind, line, the XML
attributes as text, ...). Reference: shared/reference/providers/apple_health.md.

- A record's device is its `sourceName` (what the user sees: "Jane's Apple Watch"), and so is its
  source_record_id: the export has no record ids, and iPhone and Watch often write the same
  interval, which must stay two samples (choosing between them is the reader's job, not ours).
- Unknown types (Height, AppleStandTime, MindfulSession, ...) count as seen and yield nothing.
"""

import math
import re
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import UnitError, to_canonical
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Sample,
    UnmappablePayload,
    map_records,
    measurement,
    offset_seconds,
)

_Q = "HKQuantityTypeIdentifier"

QUANTITY_METRICS: dict[str, str] = {
    f"{_Q}StepCount": "steps",
    # Every Distance* type is a different movement (on foot, bike, in water, wheelchair, snow):
    # they never measure the same metres twice, so all of them are distance.
    f"{_Q}DistanceWalkingRunning": "distance",
    f"{_Q}DistanceCycling": "distance",
    f"{_Q}DistanceSwimming": "distance",
    f"{_Q}DistanceWheelchair": "distance",
    f"{_Q}DistanceDownhillSnowSports": "distance",
    f"{_Q}ActiveEnergyBurned": "active_energy",
    f"{_Q}BasalEnergyBurned": "basal_energy",
    f"{_Q}FlightsClimbed": "floors",
    f"{_Q}AppleExerciseTime": "active_minutes",
    f"{_Q}HeartRate": "heart_rate",
    f"{_Q}RestingHeartRate": "resting_heart_rate",
    f"{_Q}HeartRateVariabilitySDNN": "hrv_sdnn",  # Apple's only HRV type is SDNN, never RMSSD
    f"{_Q}OxygenSaturation": "spo2",
    f"{_Q}RespiratoryRate": "respiratory_rate",
    f"{_Q}BodyMass": "body_mass",
    f"{_Q}BodyFatPercentage": "body_fat",
    f"{_Q}BodyMassIndex": "bmi",
    f"{_Q}LeanBodyMass": "lean_mass",
    f"{_Q}BodyTemperature": "body_temperature",
    f"{_Q}AppleSleepingWristTemperature": "skin_temperature",  # absolute °C at the wrist
    f"{_Q}VO2Max": "vo2max",
    f"{_Q}BloodPressureSystolic": "bp_systolic",
    f"{_Q}BloodPressureDiastolic": "bp_diastolic",
    f"{_Q}DietaryEnergyConsumed": "energy_intake",
    f"{_Q}DietaryProtein": "protein",
    f"{_Q}DietaryCarbohydrates": "carbohydrate",
    f"{_Q}DietaryFatTotal": "fat",  # FatSaturated etc. are parts of it: not mapped
    f"{_Q}DietaryFiber": "fiber",
    f"{_Q}DietarySugar": "sugar",
    f"{_Q}DietarySodium": "sodium",
    f"{_Q}DietaryWater": "water",
}
"""Quantity types with a vocabulary metric; the value is a number in the record's `unit`."""

SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
_SLEEP = "HKCategoryValueSleepAnalysis"
SLEEP_STAGES: dict[str, str | None] = {
    f"{_SLEEP}AsleepCore": "core",
    f"{_SLEEP}AsleepDeep": "deep",
    f"{_SLEEP}AsleepREM": "rem",
    f"{_SLEEP}AsleepUnspecified": "unspecified",
    f"{_SLEEP}Asleep": "unspecified",  # before iOS 16 there were no stages
    f"{_SLEEP}InBed": None,  # time in bed, not asleep: no sleep_duration
    f"{_SLEEP}Awake": None,  # awake during the night: not sleep
}
"""Sleep category values: the stage of an asleep record, None for the ones that are not sleep."""

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"  # "2016-04-15 07:15:00 -0700": not ISO 8601 (space, ±HHMM)
_FRACTION_UNIT = "%"  # HealthKit's percent unit holds 0..1 (SpO2 0.97, body fat 0.25): a fraction
_BMI_UNIT = "count"  # HealthKit stores BMI as a bare count; it is kg/m²


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    if envelope.resource == "export":
        return _map_export(envelope)
    raise UnmappablePayload(f"apple_health resource {envelope.resource!r} has no mapper")


def _map_export(envelope: RawPayloadReceived) -> MappingResult:
    payload = envelope.payload
    records = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise UnmappablePayload("apple_health export payload needs a list of 'records'")
    return map_records(
        ((_where(item), item) for item in records), lambda item: _map_item(envelope, item)
    )


def _where(item: Any) -> str:
    line = item.get("line") if isinstance(item, dict) else None
    return f"line {line if line is not None else '?'}"


def _map_item(envelope: RawPayloadReceived, item: Any) -> list[Sample]:
    if not isinstance(item, dict):
        raise BadRecord("an item must be an object")
    kind = item.get("kind")
    if kind == "record":
        return _map_record(envelope, item)
    if kind == "correlation":
        # Blood pressure (and food) pairs: the members are the values. Real exports repeat them
        # at the top level too (v3 DTD note); same key, same id, so the upsert stores them once.
        samples: list[Sample] = []
        for member in _list(item, "records"):
            if not isinstance(member, dict):
                raise BadRecord("a correlation member must be an object")
            samples.extend(_map_record(envelope, member))
        return samples
    if kind == "workout":
        return [_map_workout(envelope, item)]
    if kind == "activity_summary":
        # The day's Move/Exercise rings: sums of the ActiveEnergyBurned and AppleExerciseTime
        # records of that day, which are mapped themselves; mapping both would count twice.
        return []
    raise BadRecord(f"unknown item kind {kind!r}")


def _map_record(envelope: RawPayloadReceived, record: dict[str, Any]) -> list[Sample]:
    type_ = _text(record, "type")
    if type_ == SLEEP_TYPE:
        return _map_sleep(envelope, record)
    metric = QUANTITY_METRICS.get(type_)
    if metric is None:
        return []  # a type without a vocabulary metric: seen, not mapped
    start, end = _time(record, "startDate"), _time(record, "endDate")
    unit = _text(record, "unit")
    if unit == _FRACTION_UNIT:
        unit = "fraction"
    elif metric == "bmi" and unit == _BMI_UNIT:
        unit = "kg/m2"
    details: dict[str, JsonValue] | None = None
    if metric == "hrv_sdnn" and record.get("beats"):
        # The beats' times are locale-formatted times of day without a date: only bpm is kept.
        details = {"beats_bpm": [_number(b, "bpm") for b in _list(record, "beats")]}
    source = _text(record, "sourceName")
    try:
        return [
            measurement(
                envelope,
                metric=metric,
                value=_number(record, "value"),
                unit=unit,
                start=start,
                end=end,
                utc_offset_s=offset_seconds(start),
                source_field=type_,
                source_record_id=source,
                device=source,
                details=details,
            )
        ]
    except UnitError as exc:
        raise BadRecord(f"{type_}: {exc}") from None


def _map_sleep(envelope: RawPayloadReceived, record: dict[str, Any]) -> list[Sample]:
    """One asleep-stage record is a sleep_duration over its own interval. No sleep_session:
    a night is many records, possibly across batches, and the export does not group them."""
    value = _text(record, "value")
    if value not in SLEEP_STAGES:
        raise BadRecord(f"unknown sleep analysis value {value!r}")
    stage = SLEEP_STAGES[value]
    start, end = _time(record, "startDate"), _time(record, "endDate")
    if stage is None:
        return []
    source = _text(record, "sourceName")
    return [
        measurement(
            envelope,
            metric="sleep_duration",
            value=(end - start).total_seconds(),
            unit="s",
            start=start,
            end=end,
            utc_offset_s=offset_seconds(start),
            source_field=f"{SLEEP_TYPE}.{value}",
            source_record_id=source,
            device=source,
            details={"stage": stage},
        )
    ]


def _map_workout(envelope: RawPayloadReceived, workout: dict[str, Any]) -> Sample:
    start, end = _time(workout, "startDate"), _time(workout, "endDate")
    if workout.get("duration") is not None:
        duration = _convert(workout, "workout", "duration", "durationUnit")
    else:
        duration = (end - start).total_seconds()
    details: dict[str, JsonValue] = {"sport": sport_name(_text(workout, "workoutActivityType"))}
    # Older exports give totals on the Workout; iOS 16+ moved them to WorkoutStatistics.
    stats = {s.get("type"): s for s in _list(workout, "statistics") if isinstance(s, dict)}
    energy = stats.get(f"{_Q}ActiveEnergyBurned")
    if workout.get("totalEnergyBurned") is not None:
        details["energy_kcal"] = _convert(
            workout, "active_energy", "totalEnergyBurned", "totalEnergyBurnedUnit"
        )
    elif energy is not None and energy.get("sum") is not None:
        details["energy_kcal"] = _convert(energy, "active_energy", "sum", "unit")
    distance = next(
        (s for t, s in stats.items() if str(t).startswith(f"{_Q}Distance") and s.get("sum")),
        None,
    )
    if workout.get("totalDistance") is not None:
        details["distance_m"] = _convert(workout, "distance", "totalDistance", "totalDistanceUnit")
    elif distance is not None:
        details["distance_m"] = _convert(distance, "distance", "sum", "unit")
    heart = stats.get(f"{_Q}HeartRate")
    if heart is not None:
        if heart.get("average") is not None:
            details["avg_heart_rate"] = _convert(heart, "heart_rate", "average", "unit")
        if heart.get("maximum") is not None:
            details["max_heart_rate"] = _convert(heart, "heart_rate", "maximum", "unit")
    source = _text(workout, "sourceName")
    return measurement(
        envelope,
        metric="workout",
        value=duration,
        unit="s",
        start=start,
        end=end,
        utc_offset_s=offset_seconds(start),
        source_field="Workout.duration",
        source_record_id=source,
        device=source,
        details=details,
    )


def sport_name(activity_type: str) -> str:
    """HKWorkoutActivityTypeHighIntensityIntervalTraining -> high_intensity_interval_training."""
    name = activity_type.removeprefix("HKWorkoutActivityType")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# --- reading an item's text ----------------------------------------------------------------------


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRecord(f"{key} is missing")
    return value


def _number(item: Any, key: str) -> float:
    text = _text(item, key) if isinstance(item, dict) else ""
    try:
        number = float(text)
    except ValueError:
        raise BadRecord(f"{key} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise BadRecord(f"{key} {text!r} is not a finite number")
    return number


def _time(item: dict[str, Any], key: str) -> datetime:
    text = _text(item, key)
    try:
        return datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        raise BadRecord(f"{key} {text!r} is not 'YYYY-MM-DD HH:MM:SS ±HHMM'") from None


def _convert(item: dict[str, Any], metric: str, key: str, unit_key: str) -> float:
    """A workout figure in its own unit, converted to `metric`'s canonical unit."""
    value, unit = _number(item, key), _text(item, unit_key)
    try:
        return to_canonical(metric, value, unit)
    except UnitError as exc:
        raise BadRecord(f"{key}: {exc}") from None


def _list(item: dict[str, Any], key: str) -> list[Any]:
    value = item.get(key, [])
    if not isinstance(value, list):
        raise BadRecord(f"{key} must be a list")
    return value
