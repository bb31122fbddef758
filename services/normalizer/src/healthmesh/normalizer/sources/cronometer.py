"""cronometer: the user's uploaded CSV exports, as the file importer publishes them, to samples.

Envelope: source "cronometer", resource = the export kind ("dailysummary", "servings",
"exercises", "biometrics"), payload {"file": <file name>, "timezone": <IANA zone given at upload,
or null = UTC>, "rows": [{"row": <line number>, "values": {header: cell text}}]}; one payload
holds whole local days. Reference: shared/reference/providers/cronometer.md ("[CM]").

- dailysummary, servings: one sample per nutrition metric per local day, source_record_id "".
  Servings are SUMMED per day into the same samples (same natural key) the daily summary gives,
  so importing both never counts a day twice; their `Group` becomes details {"meals": {...}}.
- exercises: one `workout` per row with minutes; its energy goes to details only (the rule:
  a workout is never also an active_energy sample).
- biometrics: one reading per row (long format `Metric, Unit, Amount`) to body/heart metrics.

Rows are records: a row with an unreadable date, time or number is rejected alone, naming the
column; empty cells are absent; columns are found by header name (the set varies [CM]).

Reading the payload, dates, numbers, day totals and workouts: `sources/diary.py`, shared with
the MyFitnessPal mapper, whose exports have the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Rejection,
    Sample,
    UnmappablePayload,
    map_records,
    measurement,
)
from healthmesh.normalizer.sources.diary import (
    Export,
    cell,
    cells,
    checked_unit,
    daily_nutrition,
    day_bounds,
    number,
    read_day,
    read_export,
    read_number,
    read_time,
    snake_case,
    utc_offset,
    workout,
)

# Nutrient columns by header name (lower case, unit stripped) → metric and unit when the header
# has none. "Carbs" is total carbohydrate ("Net Carbs" is carbs minus fiber), "Sugars" total
# sugar ("Added Sugars" a part of it) [CM dailysummary header].
_NUTRIENTS: dict[str, tuple[str, str | None]] = {
    "energy": ("energy_intake", None),  # "Energy (kcal)", or "Energy (kJ)" [CM]
    "protein": ("protein", None),
    "carbs": ("carbohydrate", None),
    "fat": ("fat", None),
    "fiber": ("fiber", None),
    "sugars": ("sugar", None),
    "sodium": ("sodium", None),
    "water": ("water", None),
}
# "Water (g)": Cronometer weighs water; 1 g of water is 1 mL (density 1 g/mL), read as mL.
_UNIT_QUIRKS = {("water", "g"): "mL"}

# Biometric `Metric` names (lower case, "(Apple Health)"-style origin suffix stripped) → metric
# and the unit when the `Unit` cell is empty. Names beyond Weight/Body Fat/Heart Rate/Blood
# Pressure come from Cronometer's biometric list, unverified against a real export [CM].
_BIOMETRICS: dict[str, tuple[str, str | None]] = {
    "weight": ("body_mass", None),
    "body fat": ("body_fat", "%"),
    "bmi": ("bmi", "kg/m2"),
    "lean mass": ("lean_mass", None),
    "lean body mass": ("lean_mass", None),
    "muscle mass": ("muscle_mass", None),
    "bone mass": ("bone_mass", None),
    "heart rate": ("heart_rate", "bpm"),
    "resting heart rate": ("resting_heart_rate", "bpm"),
    "body temperature": ("body_temperature", None),
    "oxygen saturation": ("spo2", "%"),
    "blood oxygen": ("spo2", "%"),
    "respiratory rate": ("respiratory_rate", "/min"),
    "vo2 max": ("vo2max", "mL/kg/min"),
}
# Units as Cronometer's `Unit` cell may spell them that pint does not read.
_BIOMETRIC_UNITS = {"°f": "degF", "°c": "degC", "beats/min": "bpm"}
_DAY = ("Day", "Date")  # servings/exercises/biometrics key by `Day`, dailysummary by `Date` [CM]
_ORIGIN = re.compile(r"^(?P<name>.*?)\s*\((?P<origin>[^()]+)\)$")


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    mappers: dict[str, Callable[[RawPayloadReceived, Export], MappingResult]] = {
        "dailysummary": _daily_nutrition,
        "servings": _daily_nutrition,
        "exercises": _exercises,
        "biometrics": _biometrics,
    }
    mapper = mappers.get(envelope.resource)
    if mapper is None:
        raise UnmappablePayload(f"cronometer resource {envelope.resource!r} has no mapper")
    return mapper(envelope, read_export(envelope))


def _daily_nutrition(envelope: RawPayloadReceived, export: Export) -> MappingResult:
    """Daily summary rows and serving rows alike: summed per local day (one summary row is its
    own sum). Servings carry the diary group (`Group`) as the meal [CM servings.csv]."""
    return daily_nutrition(
        envelope, export, nutrients=_NUTRIENTS, day=_DAY, meal="Group", unit_quirks=_UNIT_QUIRKS
    )


def _exercises(envelope: RawPayloadReceived, export: Export) -> MappingResult:
    """`Day,Time,Group,Exercise,Minutes,Calories Burned` [CM, importer fixtures]: a workout
    per row with minutes; `Calories Burned` has no unit in its header: kcal."""
    result = MappingResult()
    seen: dict[tuple[date, str], int] = {}
    for where, row in export.rows:
        result.records_seen += 1
        try:
            values = cells(row)
            day = read_day(values, _DAY)
            clock = read_time(values, "Time")
            minutes = read_number(values, "Minutes")
            energy = read_number(values, "Calories Burned")
            name = cell(values, "Exercise")
            if minutes is None or minutes == 0:
                continue  # no duration given: not a workout, and nothing else to map
            sport = snake_case(name[1] if name else "")
            seen[(day, sport)] = occurrence = seen.get((day, sport), 0) + 1
            result.samples.append(
                workout(
                    envelope,
                    export,
                    day=day,
                    clock=clock,
                    sport=sport,
                    minutes=minutes,
                    energy_kcal=energy,
                    occurrence=occurrence,
                    source_field="Minutes",
                )
            )
        except BadRecord as exc:
            result.rejections.append(Rejection(where, str(exc)))
    return result


def _biometrics(envelope: RawPayloadReceived, export: Export) -> MappingResult:
    return map_records(export.rows, lambda row: _biometric(envelope, export, row))


def _biometric(envelope: RawPayloadReceived, export: Export, row: Any) -> list[Sample]:
    """`Day,Time,Group,Metric,Unit,Amount`: one reading per row [CM]. A synced reading names
    its origin in the metric ("Weight (Apple Health)") [CM]: that origin is the device."""
    values = cells(row)
    day = read_day(values, _DAY)
    clock = read_time(values, "Time")
    named, amount = cell(values, "Metric"), cell(values, "Amount")
    if named is None or amount is None:
        return []  # nothing recorded
    name, device = named[1], None
    match = _ORIGIN.match(name)
    if match:
        name, device = match["name"], match["origin"]
    unit_cell = cell(values, "Unit")
    unit = unit_cell[1] if unit_cell else None
    if unit is not None:
        unit = _BIOMETRIC_UNITS.get(unit.lower(), unit)
    if clock is None:
        start, end, offset = day_bounds(day, export.zone)  # a date without a time: the day
    else:
        start = end = datetime.combine(day, clock, export.zone)
        offset = utc_offset(start)
    quality, reason = export.quality

    def sample(metric: str, value: Decimal, unit: str, field_name: str) -> Sample:
        return measurement(
            envelope,
            metric=metric,
            value=float(value),
            unit=unit,
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field=field_name,
            device=device,
            quality=quality,
            quality_reason=reason,
        )

    if name.lower() == "blood pressure":
        # Blood pressure is one reading written "120/80" (systolic/diastolic) [CM].
        parts = amount[1].split("/")
        if len(parts) != 2:
            raise BadRecord(f"column {amount[0]!r}: {amount[1]!r} is not systolic/diastolic")
        unit = checked_unit("bp_systolic", unit or "mmHg", unit_cell)
        return [
            sample("bp_systolic", number(amount[0], parts[0]), unit, "Blood Pressure.systolic"),
            sample("bp_diastolic", number(amount[0], parts[1]), unit, "Blood Pressure.diastolic"),
        ]
    spec = _BIOMETRICS.get(name.lower())
    if spec is None:
        return []  # waist, blood glucose, ...: no vocabulary metric
    metric, default_unit = spec
    unit = checked_unit(metric, unit or default_unit, unit_cell)
    return [sample(metric, number(amount[0], amount[1]), unit, name)]
