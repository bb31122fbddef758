"""apple_health: items of an export.xml (as the importer's reader yields them) to unified samples.

Envelope: source "apple_health", resource "export", payload {"records": [item, ...]}, each item a
dict from `healthmesh.connectors.importers.apple_health_xml.read_export` (kind, line, the XML
attributes as text, ...). Reference: shared/reference/providers/apple_health.md.

- A record's device is its `sourceName` (what the user sees: "Jane's Apple Watch"), and so is its
  source_record_id: the export has no record ids, and iPhone and Watch often write the same
  interval, which must stay two samples (choosing between them is the reader's job, not ours).
- Unknown types (Height, AppleStandTime, MindfulSession, ...) count as seen and yield nothing.
- Sleep: each asleep record is a `sleep_duration`; the sleep-analysis records of one source
  chained with gaps under `NIGHT_GAP` are a night, one `sleep_session`. The importer never cuts
  a batch inside a night, so a payload holds whole nights and this stays a pure function of it.
  An export taken during the night holds the night so far: the session's record id is its
  source and bedtime (`night_id`), which the next export's whole night shares, so the whole
  night replaces the partial one (`mapping.RECORD_ID_METRICS`) instead of counting beside it.
"""

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from healthmesh.common.apple_export import NIGHT_GAP, SLEEP_ANALYSIS
from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import UnitError, to_canonical
from healthmesh.normalizer.mapping import (
    MAX_UTC_OFFSET_S,
    BadRecord,
    MappingResult,
    Sample,
    Series,
    UnmappablePayload,
    map_records,
    measurement,
    offset_seconds,
    series,
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
    f"{_Q}DistanceCrossCountrySkiing": "distance",  # iOS 18
    f"{_Q}DistancePaddleSports": "distance",  # iOS 18
    f"{_Q}DistanceRowing": "distance",  # iOS 18
    f"{_Q}DistanceSkatingSports": "distance",  # iOS 18
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

SLEEP_TYPE = SLEEP_ANALYSIS
_SLEEP = "HKCategoryValueSleepAnalysis"
SLEEP_STAGES: dict[str, str] = {
    f"{_SLEEP}AsleepCore": "core",  # Apple's "core" is light sleep
    f"{_SLEEP}AsleepDeep": "deep",
    f"{_SLEEP}AsleepREM": "rem",
    f"{_SLEEP}AsleepUnspecified": "unspecified",
    f"{_SLEEP}Asleep": "unspecified",  # before iOS 16 there were no stages
    f"{_SLEEP}InBed": "in_bed",  # time in bed, not asleep: no sleep_duration
    f"{_SLEEP}Awake": "awake",  # awake during the night: not sleep
}
"""Sleep category values and the stage each one is."""
ASLEEP = frozenset(("core", "deep", "rem", "unspecified"))
STAGE_DETAILS = {"deep": "deep_s", "core": "light_s", "rem": "rem_s"}
"""The staged (iOS 16+) asleep stages and the session detail each one sums into."""

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
    spans: list[SleepSpan] = []
    series_of = SeriesOf(envelope)
    result = map_records(
        ((_where(item), item) for item in records),
        lambda item: _map_item(series_of, item, spans),
    )
    result.samples.extend(sleep_sessions(envelope, spans))
    return result


class SeriesOf:
    """The payload's series, one per (metric, unit, HealthKit type, source name). A batch holds
    hundreds of records of a few such kinds, mixed in file order: a series works out its
    metric's identity, unit conversion and id prefix once (`mapping.series`), not per record."""

    def __init__(self, envelope: RawPayloadReceived) -> None:
        self.envelope = envelope
        self._made: dict[tuple[str, str, str, str], Series] = {}

    def __call__(self, metric: str, unit: str, source_field: str, source: str) -> Series:
        """Raises UnitError for a unit of another family (not kept: every such record is
        rejected on its own)."""
        key = (metric, unit, source_field, source)
        made = self._made.get(key)
        if made is None:
            made = series(
                self.envelope, metric=metric, unit=unit, source_field=source_field, device=source
            )
            self._made[key] = made
        return made


def _where(item: Any) -> str:
    line = item.get("line") if isinstance(item, dict) else None
    return f"line {line if line is not None else '?'}"


def _map_item(series_of: SeriesOf, item: Any, spans: list["SleepSpan"]) -> list[Sample]:
    """The item's own samples; a valid sleep-analysis record also joins `spans`."""
    if not isinstance(item, dict):
        raise BadRecord("an item must be an object")
    kind = item.get("kind")
    if kind == "record":
        return _map_record(series_of, item, spans)
    if kind == "correlation":
        # Blood pressure (and food) pairs: the members are the values. Real exports repeat them
        # at the top level too (v3 DTD note); same key, same id, so the upsert stores them once.
        samples: list[Sample] = []
        for member in _list(item, "records"):
            if not isinstance(member, dict):
                raise BadRecord("a correlation member must be an object")
            samples.extend(_map_record(series_of, member, None))
        return samples
    if kind == "workout":
        return [_map_workout(series_of.envelope, item)]
    if kind == "activity_summary":
        # The day's Move/Exercise rings: sums of the ActiveEnergyBurned and AppleExerciseTime
        # records of that day, which are mapped themselves; mapping both would count twice.
        return []
    raise BadRecord(f"unknown item kind {kind!r}")


def _map_record(
    series_of: SeriesOf, record: dict[str, Any], spans: list["SleepSpan"] | None
) -> list[Sample]:
    type_ = _text(record, "type")
    if type_ == SLEEP_TYPE:
        return _map_sleep(series_of, record, [] if spans is None else spans)
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
        details = _beats(start, _list(record, "beats"))
    source = _text(record, "sourceName")
    value, utc_offset_s = _number(record, "value"), offset_seconds(start)
    try:
        return [
            series_of(metric, unit, type_, source).point(
                value, start, end, utc_offset_s, source, details
            )
        ]
    except UnitError as exc:
        raise BadRecord(f"{type_}: {exc}") from None


def _map_sleep(
    series_of: SeriesOf, record: dict[str, Any], spans: list["SleepSpan"]
) -> list[Sample]:
    """An asleep-stage record is a sleep_duration over its own interval; InBed and Awake give
    none. Once valid, every one of them joins `spans`, from which the nights are built."""
    value = _text(record, "value")
    if value not in SLEEP_STAGES:
        raise BadRecord(f"unknown sleep analysis value {value!r}")
    stage = SLEEP_STAGES[value]
    start, end = _time(record, "startDate"), _time(record, "endDate")
    source = _text(record, "sourceName")
    if end < start:
        raise BadRecord(f"{SLEEP_TYPE}: ends before it starts ({start} > {end})")
    for moment in (start, end):
        if abs(offset_seconds(moment)) > MAX_UTC_OFFSET_S:
            raise BadRecord(f"{SLEEP_TYPE}: UTC offset of {moment} is beyond ±18 h")
    span = SleepSpan(source, stage, start, end)
    if stage not in ASLEEP:
        spans.append(span)
        return []
    samples = [
        series_of("sleep_duration", "s", f"{SLEEP_TYPE}.{value}", source).point(
            (end - start).total_seconds(),
            start,
            end,
            offset_seconds(start),
            source,
            {"stage": stage},
        )
    ]
    spans.append(span)
    return samples


# --- nights ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SleepSpan:
    """One valid sleep-analysis record, as nights are built from them."""

    source: str
    stage: str
    """A value of SLEEP_STAGES: core, deep, rem, unspecified, in_bed or awake."""
    start: datetime
    end: datetime


def sleep_sessions(envelope: RawPayloadReceived, spans: Iterable[SleepSpan]) -> list[Sample]:
    """One `sleep_session` per night of each source: its spans in time order, chained while the
    next starts less than NIGHT_GAP after the night's end so far. A night without an asleep
    record (the iPhone's bedtime InBed alone) says nothing about sleep and gives none.

    The session runs from the night's first start to its last end, offset by that end (sleep is
    counted on the day it ends). Its value is the time asleep (the union of the asleep spans);
    details: deep/light/rem seconds for a staged night (iOS 16+; an old Asleep night has no
    stages), awake seconds when Awake records exist, and when InBed or Awake records say when
    the sleeper was in bed, `in_bed_s` (the union of all the night's spans) and `efficiency`
    (asleep / in bed, %). Its id comes from source, start and end: the same export gives the
    same sessions. Its record id is `night_id`."""
    by_source: dict[str, list[SleepSpan]] = {}
    for span in spans:
        by_source.setdefault(span.source, []).append(span)
    sessions: list[Sample] = []
    for source, own in by_source.items():
        for night in _nights(sorted(own, key=lambda s: (s.start, s.end, s.stage))):
            if any(s.stage in ASLEEP for s in night):
                sessions.append(_session(envelope, source, night))
    return sessions


def _nights(spans: list[SleepSpan]) -> list[list[SleepSpan]]:
    """Spans sorted by start, chained into nights by NIGHT_GAP."""
    nights: list[list[SleepSpan]] = []
    end: datetime | None = None
    for span in spans:
        if end is not None and span.start - end < NIGHT_GAP:
            nights[-1].append(span)
            end = max(end, span.end)
        else:
            nights.append([span])
            end = span.end
    return nights


def _session(envelope: RawPayloadReceived, source: str, night: list[SleepSpan]) -> Sample:
    stages = {s.stage for s in night}
    asleep = _covered(s for s in night if s.stage in ASLEEP)
    details: dict[str, JsonValue] = {}
    if stages & STAGE_DETAILS.keys():
        for stage, key in STAGE_DETAILS.items():
            details[key] = _covered(s for s in night if s.stage == stage)
    if "awake" in stages:
        details["awake_s"] = _covered(s for s in night if s.stage == "awake")
    if stages & {"in_bed", "awake"}:
        in_bed = _covered(night)
        details["in_bed_s"] = in_bed
        if in_bed > 0:
            details["efficiency"] = round(asleep / in_bed * 100, 2)
    last = max(night, key=lambda s: s.end)
    start = min(s.start for s in night)
    return measurement(
        envelope,
        metric="sleep_session",
        value=asleep,
        unit="s",
        start=start,
        end=last.end,
        utc_offset_s=offset_seconds(last.end),
        source_field=SLEEP_TYPE,
        source_record_id=night_id(source, start),
        device=source,
        details=details,
    )


def night_id(source: str, start: datetime) -> str:
    """A night's record id: its source and bedtime. An export taken at 03:00 holds the night so
    far; the next export's session of that night ends later (another natural key) but starts
    alike, so it supersedes the partial one rather than counting beside it."""
    return f"{source}@{start.astimezone(UTC).isoformat()}"


def _covered(spans: Iterable[SleepSpan]) -> int:
    """Seconds covered by the union of the spans (a source may write overlapping ones)."""
    total, reach = 0.0, None
    for span in sorted(spans, key=lambda s: s.start):
        if reach is None or span.start >= reach:
            total += (span.end - span.start).total_seconds()
            reach = span.end
        elif span.end > reach:
            total += (span.end - reach).total_seconds()
            reach = span.end
    return round(total)


# --- HRV beats ------------------------------------------------------------------------------------

_BEAT_TIME = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?\s*([AaPp][Mm])?")
_DAY_S, _HALF_DAY_S = 86_400, 43_200


def _beats(start: datetime, beats: list[Any]) -> dict[str, JsonValue]:
    """The beat-to-beat list of an HRV record: each beat's bpm, and when every beat's time reads,
    its seconds after the record's start (`beats_s`). A beat's time is a time of day without a
    date, written in the phone's locale ("10:10:01.52 PM", "22:10:01,52"): it is placed on the
    record's local day, a day later or earlier when that is nearer (a series across midnight)."""
    details: dict[str, JsonValue] = {"beats_bpm": [_number(b, "bpm") for b in beats]}
    day_s = start.hour * 3600 + start.minute * 60 + start.second
    offsets: list[JsonValue] = []
    for beat in beats:
        seconds = _time_of_day(beat.get("time") if isinstance(beat, dict) else None)
        if seconds is None:
            return details  # a locale not read: the bpm list alone
        offset = seconds - day_s
        if offset < -_HALF_DAY_S:
            offset += _DAY_S
        elif offset > _HALF_DAY_S:
            offset -= _DAY_S
        offsets.append(round(offset, 3))
    details["beats_s"] = offsets
    return details


def _time_of_day(text: Any) -> float | None:
    """Seconds since midnight of "h:mm:ss[.ff] [AM|PM]" or "HH:mm:ss[,ff]"; None otherwise."""
    match = _BEAT_TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    hour, minute, second, fraction, half = match.groups()
    h = int(hour)
    if half is not None:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if half.lower() == "pm" else 0)
    if h > 23 or int(minute) > 59 or int(second) > 59:
        return None
    return h * 3600 + int(minute) * 60 + int(second) + float(f"0.{fraction or 0}")


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
    # `isspace` is `not strip()` for a non-empty string, without making the stripped copy
    # (six of these a record)
    if not isinstance(value, str) or not value or value.isspace():
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
        if len(text) == 25 and text[10] == " " and text[19] == " " and text[20] in "+-":
            # The same moment read ~20x faster than strptime (every record has two of these):
            # without the space before it, ±HHMM is an offset fromisoformat reads.
            return datetime.fromisoformat(text[:19] + text[20:])
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
