"""Withings: the four resources the connector publishes, to unified samples.

Reference: shared/reference/providers/withings.md and the Withings API reference ([REF], the
measure and sleep OpenAPI files). Payloads, one envelope each:
- `measures`: `{"timezone": <getmeas page zone>, "measuregrps": [<one measure group>]}` (a bare
  group, as published before the page zone was added, is read too).
- `activity`: one day of `getactivity` `activities[]` (local `date` and its own `timezone`).
- `workouts`: one row of `getworkouts` `series[]`.
- `sleep`: one night of sleep `getsummary` `series[]`.

Quirks kept here, and why:
- A measure is `value x 10^unit` with a unit varying per record [REF measure_object]; computed
  in decimal so 79400 x 10^-3 is exactly 79.4.
- Only measure types with a vocabulary metric are mapped (see `MEASURE_TYPES`); type 8 (fat mass
  weight, kg) is NOT body fat (type 6, %), and 77/168/169 (body water, kg) are not `water`
  (drinks, mL): they are skipped, like every type without a metric.
- `category` 2 is a user objective, not a measurement [REF getmeas]: skipped, not rejected.
- `attrib` says who the group belongs to [REF measuregrp_object]: ambiguous device measures
  (may be another user's: the reference says filter them) get quality 0.3, below the gateway's
  0.5 cut; typed-in ones 0.8; ones typed at account creation ("may not be accurate") 0.5.
- Instants are epoch seconds; the local offset is that of the record's IANA `timezone` at that
  instant (a group's own, else the page's), through zoneinfo, so DST is right.
- Activity `elevation` is "Number of floors climbed" [REF activity_object]: `floors`.
  `calories` is active energy, `totalcalories` active + passive; `active` is moderate + intense
  seconds [REF].
- Sleep `sleep_efficiency` is a ratio (0..1) of sleep over time in bed [REF getsummary]; a value
  outside 0..1 (the docs example's placeholder 16) is not a ratio and is left out.
- Sleep `total_sleep_time` is light + deep + REM; a night from an external source has only
  `asleepduration` [REF getsummary]. A summary with `completed: false` is not final: no samples.
- Device: the model name (`model` text, or the `model_id` table of [REF]), else the `deviceid`.
"""

import math
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

Record = dict[str, Any]

MEASURE_TYPES: dict[int, tuple[str, str, str]] = {
    1: ("body_mass", "kg", "weight"),
    5: ("lean_mass", "kg", "fat_free_mass"),
    6: ("body_fat", "%", "fat_ratio"),
    9: ("bp_diastolic", "mmHg", "diastolic_blood_pressure"),
    10: ("bp_systolic", "mmHg", "systolic_blood_pressure"),
    11: ("heart_rate", "bpm", "heart_pulse"),
    12: ("body_temperature", "degC", "temperature"),
    54: ("spo2", "%", "spo2"),
    71: ("body_temperature", "degC", "body_temperature"),
    73: ("skin_temperature", "degC", "skin_temperature"),
    76: ("muscle_mass", "kg", "muscle_mass"),
    88: ("bone_mass", "kg", "bone_mass"),
    123: ("vo2max", "ml/kg/min", "vo2_max"),  # documented as ml/min/kg
}
"""getmeas `type` → (metric, unit Withings documents, field name) [REF meastype table]. Not
mapped, for want of a metric: 4 height, 8 fat mass weight, 77 hydration, 91 pulse wave velocity,
130/139 AFib results, 135-138 ECG intervals, 155 vascular age, 167 nerve health, 168/169 body
water, 170 visceral fat, 173-175 segmental masses, 196 EDA, 226 BMR (a rate estimate, not energy
spent), 227 metabolic age, 229 ESC."""
TEMPERATURE, BODY_TEMPERATURE = 12, 71
"""Both are body temperature; a group with both keeps 71, the one named so."""
OBJECTIVE = 2
"""getmeas `category` 2: a user objective, not a measurement [REF]."""

ATTRIB_QUALITY: dict[int, tuple[float, str | None]] = {
    0: (1.0, None),
    1: (0.3, "device measure that may belong to another user (attrib 1)"),
    2: (0.8, "entered manually (attrib 2)"),
    4: (0.5, "entered at account creation, may not be accurate (attrib 4)"),
    5: (1.0, None),  # blood pressure monitor's best of several measures
    7: (1.0, None),  # confirmed by the user
    8: (1.0, None),  # "same as attrib 0"
    15: (1.0, None),  # taken in guided conditions
}
"""`attrib` [REF measuregrp_object, workout_object] → quality."""
UNKNOWN_OFFSET = (0.9, "local offset unknown")

MODELS: dict[int, str] = {
    1: "Withings WBS01", 2: "WS30", 3: "Kid Scale", 4: "Smart Body Analyzer", 5: "Body+",
    6: "Body Cardio", 7: "Body", 9: "Body Pro", 10: "Body Scan", 11: "WBS10", 12: "WBS11",
    18: "Body Comp", 21: "Smart Baby Monitor", 22: "Withings Home",
    41: "Withings Blood Pressure Monitor V1", 42: "Withings Blood Pressure Monitor V2",
    43: "Withings Blood Pressure Monitor V3", 44: "BPM Core", 45: "BPM Connect",
    46: "BPM Connect Pro", 47: "BPM Pro 2", 48: "BPM Vision", 51: "Pulse", 52: "Activite",
    53: "Activite (Pop, Steel)", 54: "Withings Go", 55: "Activite Steel HR", 58: "Pulse HR",
    59: "Activite Steel HR Sport Edition", 60: "Aura Dock", 61: "Aura Sensor",
    63: "Aura Sensor V2", 70: "Thermo", 71: "BeamO", 90: "Move", 91: "Move ECG", 92: "Move ECG",
    93: "ScanWatch", 94: "ScanWatch 2", 95: "ScanWatch Light", 100: "WUP01",
    1051: "iOS step tracker", 1052: "iOS step tracker", 1053: "Android step tracker",
    1054: "Android step tracker", 1055: "GoogleFit tracker", 1056: "Samsung Health tracker",
    1057: "HealthKit step iPhone tracker", 1058: "HealthKit step Apple Watch tracker",
    1059: "HealthKit other step tracker", 1060: "Google Health Connect",
    1061: "Iglucose glucometer", 1062: "Huawei tracker", 1063: "Lingo Sensor",
}  # fmt: skip
"""`model_id` → model name [REF]; workouts' `model` uses the same ids for their trackers."""

SPORTS: dict[int, str] = {
    1: "Walk", 2: "Run", 3: "Hiking", 4: "Skating", 5: "BMX", 6: "Bicycling", 7: "Swimming",
    8: "Surfing", 9: "Kitesurfing", 10: "Windsurfing", 11: "Bodyboard", 12: "Tennis",
    13: "Table tennis", 14: "Squash", 15: "Badminton", 16: "Lift weights", 17: "Fitness",
    18: "Elliptical", 19: "Pilates", 20: "Basket-ball", 21: "Soccer", 22: "Football",
    23: "Rugby", 24: "Volley-ball", 25: "Waterpolo", 26: "Horse riding", 27: "Golf",
    28: "Yoga", 29: "Dancing", 30: "Boxing", 31: "Fencing", 32: "Wrestling",
    33: "Martial arts", 34: "Skiing", 35: "Snowboarding", 36: "Other", 128: "No activity",
    187: "Rowing", 188: "Zumba", 191: "Baseball", 192: "Handball", 193: "Hockey",
    194: "Ice hockey", 195: "Climbing", 196: "Ice skating", 272: "Multi-sport",
    306: "Indoor walk", 307: "Indoor running", 308: "Indoor cycling",
    455: "Standup Paddleboarding", 456: "Padel", 457: "Gaming", 490: "Beach volleyball",
    491: "Stair Stepper", 492: "Skateboarding", 493: "Parkour", 494: "Kayaking",
    495: "Canoeing", 496: "Sailing", 497: "Fishing", 498: "Trail Running", 499: "Snowshoeing",
    500: "Paintball", 501: "Archery", 502: "Scuba Diving", 503: "Baseball Training",
    504: "Biathlon", 505: "Bocce", 506: "Pétanque", 507: "Paragliding", 508: "Frisbee",
    509: "Skydiving", 510: "Pickleball", 511: "Cornhole", 512: "Dodgeball", 513: "Ultimate",
    514: "Teqball", 515: "Pushing a Wheelchair (Running Pace)",
    516: "Pushing a Wheelchair (Walking Pace)", 517: "Athletics", 518: "Track Cycling",
    519: "Pentathlon", 520: "Sport Shooting", 521: "Triathlon", 522: "Diving",
    523: "Mountain Biking", 524: "Gravel Biking", 525: "E-Biking", 526: "E-Mountain Biking",
    527: "Handcycling", 528: "Velomobile", 529: "Backcountry Skiing", 530: "Nordic Skiing",
    531: "Roller Skiing", 532: "Racquetball", 534: "Hip Hop", 535: "Muaythai",
    536: "Taekwondo", 537: "Judo", 538: "Trampoline", 539: "Standing Frame",
    540: "Seated Strenght", 541: "Seated Cardio", 542: "Walk With Walker",
    543: "Walk With Cane", 544: "Breaking", 545: "Chores", 546: "Crossfit", 547: "Spinclass",
    548: "Cricket", 549: "Flamenco Dancing", 550: "HIIT", 551: "Meditation", 552: "Stretching",
    553: "Yard Work Gardening", 554: "Cleaning", 555: "Public Speaking", 556: "Spikeball",
    557: "Lacrosse", 558: "Baby Wearing", 559: "Dog Walking", 560: "Breathing excercises",
    561: "Balance Drills", 562: "Pushing a Stroller", 563: "Toddler Wearing", 564: "Bowling",
    565: "Lasertag", 566: "Nordic Walking", 567: "Sumo Wrestling", 568: "Cooking",
}  # fmt: skip
"""Workout `category` → sport, as the reference spells it [REF workout_object]."""

ACTIVITY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("steps", "steps", "count"),
    ("distance", "distance", "m"),
    ("elevation", "floors", "count"),  # "Number of floors climbed" [REF activity_object]
    ("calories", "active_energy", "kcal"),  # "Active calories burned (in Kcal)"
    ("totalcalories", "total_energy", "kcal"),  # active + passive
    ("active", "active_minutes", "s"),  # moderate + intense, in seconds
    ("hr_average", "heart_rate", "bpm"),  # the day's average heart rate
)
"""Activity field → (metric, unit Withings documents)."""


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    mapper = _RESOURCES.get(envelope.resource)
    if mapper is None:
        raise UnmappablePayload(f"withings resource {envelope.resource!r} has no mapper")
    if not isinstance(envelope.payload, dict):
        raise UnmappablePayload(f"withings {envelope.resource}: the payload is not an object")
    return mapper(envelope, envelope.payload)


# --- measures ------------------------------------------------------------------------------------


def _map_measures(envelope: RawPayloadReceived, payload: Record) -> MappingResult:
    if "measuregrps" in payload:
        groups = payload["measuregrps"]
        page_zone = payload.get("timezone")
    elif "grpid" in payload:
        groups, page_zone = [payload], None  # a bare group, published before the page zone
    else:
        raise UnmappablePayload("withings measures: neither `measuregrps` nor a measure group")
    if not isinstance(groups, list):
        raise UnmappablePayload("withings measures: `measuregrps` is not a list")
    return map_records(
        ((f"measure group {_label(g, 'grpid', i)}", g) for i, g in enumerate(groups)),
        lambda group: _measure_group(envelope, group, page_zone),
    )


def _measure_group(envelope: RawPayloadReceived, group: Any, page_zone: Any) -> list[Sample]:
    """One measure group: one sample per mapped measure, all at the group's instant."""
    if not isinstance(group, dict):
        raise BadRecord("not an object")
    if group.get("category") == OBJECTIVE:
        return []  # a user objective, not a measurement
    grpid = group.get("grpid")
    if not _is_int(grpid):
        raise BadRecord("no integer `grpid`")
    at = _epoch(group, "date")
    measures = group.get("measures")
    if not isinstance(measures, list):
        raise BadRecord("no `measures` list")
    values = _measure_values(measures)
    if BODY_TEMPERATURE in values:
        values.pop(TEMPERATURE, None)
    offset, quality = _offset(group.get("timezone"), page_zone, at)
    quality = _worse(quality, _attrib_quality(group.get("attrib")))
    samples = []
    for kind, value in values.items():
        metric, unit, field = MEASURE_TYPES[kind]
        samples.append(
            measurement(
                envelope,
                metric=metric,
                value=value,
                unit=unit,
                start=at,
                end=at,
                utc_offset_s=offset,
                source_field=f"measures[type={kind}].{field}",
                source_record_id=str(grpid),
                device=_device(group, "model_id"),
                quality=quality[0],
                quality_reason=quality[1],
            )
        )
    return samples


def _measure_values(measures: list[Any]) -> dict[int, float]:
    """Mapped measure types and their real values, `value x 10^unit` [REF measure_object]."""
    values: dict[int, float] = {}
    for index, measure in enumerate(measures):
        if not isinstance(measure, dict):
            raise BadRecord(f"measures[{index}] is not an object")
        kind, value, unit = measure.get("type"), measure.get("value"), measure.get("unit")
        if not _is_int(kind):
            raise BadRecord(f"measures[{index}]: `type` {kind!r:.20} is not an integer")
        if kind not in MEASURE_TYPES:
            continue
        if not _is_number(value) or not _is_int(unit):
            raise BadRecord(
                f"measures[{index}] (type {kind}): value {value!r:.20} x 10^{unit!r:.8}"
            )
        if kind in values:
            raise BadRecord(f"measure type {kind} twice in one group")
        values[kind] = float(Decimal(str(value)).scaleb(unit))
    return values


def _attrib_quality(attrib: Any) -> tuple[float, str | None]:
    if attrib is None:
        return 1.0, None
    return ATTRIB_QUALITY.get(attrib, (0.9, f"unknown attribution (attrib {attrib!r:.10})"))


# --- activity ------------------------------------------------------------------------------------


def _map_activity(envelope: RawPayloadReceived, payload: Record) -> MappingResult:
    return map_records(
        [(f"activity {_label(payload, 'date', 0)}", payload)],
        lambda day: _activity_day(envelope, day),
    )


def _activity_day(envelope: RawPayloadReceived, day: Record) -> list[Sample]:
    """A day's totals, each over that local day (its own `timezone`, so DST days are 23/25 h)."""
    raw = day.get("date")
    try:
        when = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
    except ValueError:
        when = None
    if when is None:
        raise BadRecord(f"`date` {raw!r:.40} is not Y-m-d")
    start, end, offset, quality = _local_day(when, day.get("timezone"))
    samples = []
    for field, metric, unit in ACTIVITY_FIELDS:
        value = _number(day, field)
        if value is None:
            continue
        samples.append(
            measurement(
                envelope,
                metric=metric,
                value=value,
                unit=unit,
                start=start,
                end=end,
                utc_offset_s=offset,
                source_field=field,
                device=_device(day, "modelid"),
                quality=quality[0],
                quality_reason=quality[1],
            )
        )
    return samples


def _local_day(
    day: date, zone_name: Any
) -> tuple[datetime, datetime, int, tuple[float, str | None]]:
    zone = _zone(zone_name)
    if zone is None:
        start, end = local_day(day, 0)
        return start, end, 0, UNKNOWN_OFFSET
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start, end, _offset_at(zone, start), (1.0, None)


# --- workouts ------------------------------------------------------------------------------------


def _map_workouts(envelope: RawPayloadReceived, payload: Record) -> MappingResult:
    return map_records(
        [(f"workout {_label(payload, 'id', 0, 'startdate')}", payload)],
        lambda row: _workout(envelope, row),
    )


def _workout(envelope: RawPayloadReceived, row: Record) -> list[Sample]:
    """One `workout` sample: elapsed seconds, with the sport and the stats Withings gives."""
    start, end = _epoch(row, "startdate"), _epoch(row, "enddate")
    category = row.get("category")
    if not _is_int(category):
        raise BadRecord(f"`category` {category!r:.20} is not an integer")
    data = row.get("data") or {}
    if not isinstance(data, dict):
        raise BadRecord("`data` is not an object")
    details: dict[str, JsonValue] = {"sport": _sport(category)}
    energy = _first_given(data, "calories", "manual_calories")  # manual: typed by the user
    if energy is not None:
        details["energy_kcal"] = to_canonical("active_energy", energy, "kcal")
    distance = _first_given(data, "distance", "manual_distance")
    if distance is not None:
        details["distance_m"] = to_canonical("distance", distance, "m")
    for field, key in (("hr_average", "avg_heart_rate"), ("hr_max", "max_heart_rate")):
        rate = _number(data, field)
        if rate is not None and rate > 0:  # 0 bpm: no heart rate sensor in the workout
            details[key] = to_canonical("heart_rate", rate, "bpm")
    offset, quality = _offset(row.get("timezone"), None, start)
    quality = _worse(quality, _attrib_quality(row.get("attrib")))
    return [
        measurement(
            envelope,
            metric="workout",
            value=(end - start).total_seconds(),
            unit="s",
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field="workout",
            source_record_id=_record_id(row),
            device=_device(row, "model"),
            details=details,
            quality=quality[0],
            quality_reason=quality[1],
        )
    ]


def _sport(category: int) -> str:
    """The reference's sport name in lower_snake_case ("Basket-ball" → "basket_ball")."""
    name = SPORTS.get(category)
    if name is None:
        return f"category_{category}"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_name.lower()).split()
    return "_".join(words)


def _first_given(data: Record, field: str, manual: str) -> float | None:
    """The measured value, else the one the user typed (`manual_*`, 0 when not typed)."""
    measured = _number(data, field)
    if measured is not None and measured > 0:
        return measured
    typed = _number(data, manual)
    if typed is not None and typed > 0:
        return typed
    return measured


# --- sleep ---------------------------------------------------------------------------------------


def _map_sleep(envelope: RawPayloadReceived, payload: Record) -> MappingResult:
    return map_records(
        [(f"sleep {_label(payload, 'id', 0, 'startdate')}", payload)],
        lambda night: _sleep(envelope, night),
    )


def _sleep(envelope: RawPayloadReceived, night: Record) -> list[Sample]:
    """A night: `sleep_session` (+ `sleep_duration`) over in bed → out of bed, and its average
    breathing rate and core temperature. Its average heart rate is not a sample: the day's
    activity `hr_average` already covers those hours (no double counting within a source)."""
    start, end = _epoch(night, "startdate"), _epoch(night, "enddate")
    if night.get("completed") is False:
        return []  # still being scored
    data = night.get("data") or {}
    if not isinstance(data, dict):
        raise BadRecord("`data` is not an object")
    asleep_field = "total_sleep_time"
    asleep = _number(data, asleep_field)
    if not asleep:
        asleep_field = "asleepduration"  # a night from an external source
        asleep = _number(data, asleep_field)
    offset, quality = _offset(night.get("timezone"), None, end)  # the night's day is its end's

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
            source_field=f"data.{field}",
            source_record_id=_record_id(night),
            device=_device(night, "model_id"),
            details=details,
            quality=quality[0],
            quality_reason=quality[1],
        )

    samples = []
    if asleep:
        details = _sleep_details(data)
        samples.append(sample("sleep_session", asleep, "s", asleep_field, details))
        samples.append(sample("sleep_duration", asleep, "s", asleep_field, None))
    breathing = _number(data, "rr_average")
    if breathing:
        samples.append(sample("respiratory_rate", breathing, "/min", "rr_average", None))
    core = _number(data, "core_body_temperature_avg")
    if core:
        samples.append(sample("body_temperature", core, "degC", "core_body_temperature_avg", None))
    return samples


def _sleep_details(data: Record) -> dict[str, JsonValue]:
    details: dict[str, JsonValue] = {}
    for field, key in (
        ("deepsleepduration", "deep_s"),
        ("lightsleepduration", "light_s"),
        ("remsleepduration", "rem_s"),
        ("wakeupduration", "awake_s"),  # "Time spent awake (seconds)"
        ("total_timeinbed", "in_bed_s"),
    ):
        seconds = _number(data, field)
        if seconds is not None:
            details[key] = seconds
    ratio = _number(data, "sleep_efficiency")
    if ratio is not None and 0 <= ratio <= 1:
        details["efficiency"] = round(ratio * 100, 2)  # a ratio of one [REF] → %
    return details


# --- shared --------------------------------------------------------------------------------------


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(record: Record, field: str) -> float | None:
    """A numeric field; absent or null is None (not measured), anything else is malformed."""
    value = record.get(field)
    if value is None:
        return None
    if not _is_number(value):
        raise BadRecord(f"`{field}` is not a number: {value!r:.40}")
    return float(value)


def _epoch(record: Record, field: str) -> datetime:
    value = record.get(field)
    if not _is_int(value):
        raise BadRecord(f"`{field}` is not an epoch in seconds: {value!r:.40}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRecord(f"`{field}` {value} is out of range") from None


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # e.g. the docs example's placeholder "string"


def _offset_at(zone: ZoneInfo, moment: datetime) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offset(own: Any, fallback: Any, moment: datetime) -> tuple[int, tuple[float, str | None]]:
    """The local offset at `moment` in the record's zone (else the fallback zone)."""
    zone = _zone(own) or _zone(fallback)
    if zone is None:
        return 0, UNKNOWN_OFFSET
    return _offset_at(zone, moment), (1.0, None)


def _worse(a: tuple[float, str | None], b: tuple[float, str | None]) -> tuple[float, str | None]:
    """The lower quality; both reasons when both lower it."""
    reasons = "; ".join(r for r in (a[1], b[1]) if r)
    return min(a[0], b[0]), reasons or None


def _device(record: Record, id_field: str) -> str | None:
    model = record.get("model")
    if isinstance(model, str) and model:
        return model
    model_id = record.get(id_field)
    if _is_int(model_id) and model_id in MODELS:
        return MODELS[model_id]
    for field in ("deviceid", "hash_deviceid"):
        device = record.get(field)
        if isinstance(device, str) and device:
            return device
    return None


def _record_id(row: Record) -> str:
    """Withings' `id` when sent, else the start (the connector keys the item the same way)."""
    ident = row.get("id")
    if _is_int(ident):
        return str(ident)
    return str(row.get("startdate"))


def _label(record: Any, field: str, index: int, fallback: str | None = None) -> str:
    if isinstance(record, dict):
        for name in (field, fallback):
            if name is not None and record.get(name) is not None:
                return f"{record[name]!s:.40}"
    return f"#{index}"


_RESOURCES: dict[str, Callable[[RawPayloadReceived, Record], MappingResult]] = {
    "measures": _map_measures,
    "activity": _map_activity,
    "workouts": _map_workouts,
    "sleep": _map_sleep,
}
