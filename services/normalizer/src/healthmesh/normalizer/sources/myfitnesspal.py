"""myfitnesspal: the user's uploaded export (a zip of three CSVs), as the file importer publishes
it, to unified samples.

Envelope: source "myfitnesspal", resource = the export kind ("nutrition" = Nutrition-Summary,
"exercise" = Exercise-Summary, "measurement" = Measurement-Summary), payload {"file",
"timezone" (IANA, null = UTC), "rows": [{"row", "values": {header: text}}]}; one payload holds
whole local days. Reference: shared/reference/providers/myfitnesspal.md ("[MFP]").

- nutrition: rows are per meal (or per entry, shapes N2/N3 with `Time`) [MFP]: summed into one
  sample per nutrition metric per local day, source_record_id "", details {"meals": {...}}.
- exercise: a `workout` per row with minutes (energy in details only); `Steps` (carried by the
  tracker's "calorie adjustment" rows [MFP]) summed into the day's `steps`.
- measurement: `Weight` and body fat, one sample per cell, covering its local day (no time).
  `Weight` names no unit [MFP]: the payload's "weight_unit" ("kg"/"lb", given at upload, or
  inferred from the zip's Exercise-Summary when "weight_unit_inferred"), else kg assumed.

The payload reading, day totals and workouts are in `sources/diary.py`, shared with the
Cronometer mapper: both are diary exports of the same shape.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from healthmesh.common.events import RawPayloadReceived, WeightUnit
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
    Column,
    DayTotal,
    Export,
    add,
    cell,
    cells,
    checked_unit,
    combined,
    daily_nutrition,
    day_bounds,
    day_samples,
    number,
    read_day,
    read_export,
    read_number,
    snake_case,
    split_header,
    workout,
)

# Nutrition columns (lower case, unit stripped) → metric and unit. Only some headers name their
# unit; `Calories` is kcal and `Fiber`/`Sugar` grams by convention [MFP, N1 header]. Saturated
# and other fats are parts of `Fat (g)`; Vitamin A/C, Calcium, Iron are % daily value [MFP].
_NUTRIENTS: dict[str, tuple[str, str | None]] = {
    "calories": ("energy_intake", "kcal"),
    "fat": ("fat", "g"),
    "carbohydrates": ("carbohydrate", "g"),
    "protein": ("protein", "g"),
    "sodium": ("sodium", "mg"),
    "fiber": ("fiber", "g"),
    "sugar": ("sugar", "g"),
}
# Measurement columns → metric and unit. `Weight` names no unit: the account's kg or lb, which
# the file does not say [MFP Measurement-Summary] (None: assumed kg, flagged). Body-fat header
# spellings are unverified [MFP].
_MEASUREMENTS: dict[str, tuple[str, str | None]] = {
    "weight": ("body_mass", None),
    "body fat": ("body_fat", "%"),
    "body fat %": ("body_fat", "%"),
}
_ASSUMED_KG = (0.5, "unit not in the file (kg or lb per account setting): kg assumed")
_LOAD_COLUMN: dict[WeightUnit, str] = {"kg": "Kilograms", "lb": "Pounds"}
"""The Exercise-Summary column the importer inferred each weight unit from [MFP]."""
_DATE = ("Date",)
_ADJUSTMENT = " calorie adjustment"
_STEPS = Column("Steps", "steps", "count")


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    if envelope.resource == "nutrition":
        return daily_nutrition(
            envelope,
            read_export(envelope),
            nutrients=_NUTRIENTS,
            day=_DATE,
            meal="Meal",  # user-editable diary meal: Breakfast/Lunch/Dinner/Snacks/... [MFP]
            unit_quirks={},
        )
    if envelope.resource == "exercise":
        return _exercise(envelope, read_export(envelope))
    if envelope.resource == "measurement":
        return _measurement(envelope, read_export(envelope))
    raise UnmappablePayload(f"myfitnesspal resource {envelope.resource!r} has no mapper")


def _exercise(envelope: RawPayloadReceived, export: Export) -> MappingResult:
    """`Date,Exercise,Type,Exercise Calories,Exercise Minutes,Sets,Reps Per Set,Kilograms|
    Pounds,Steps,Note` [MFP]. Sets/reps/load have no vocabulary metric."""
    result = MappingResult()
    steps: dict[tuple[date, str], DayTotal] = {}
    short: set[date] = set()
    seen: dict[tuple[date, str], int] = {}
    for where, row in export.rows:
        result.records_seen += 1
        day: date | None = None
        try:
            values = cells(row)
            day = read_day(values, _DATE)
            minutes = read_number(values, "Exercise Minutes")
            energy = read_number(values, "Exercise Calories")
            row_steps = read_number(values, "Steps")
            named = cell(values, "Exercise")
            # Names come wrapped in literal quote characters: '"Walking, 3.5 mph"' [MFP].
            name = named[1].strip().strip('"').strip() if named else ""
            device = None
            if name.lower().endswith(_ADJUSTMENT):
                # "Health Connect calorie adjustment": the tracker's extra burn over MFP's own
                # estimate plus its steps [MFP], not an exercise: no workout; its origin is the
                # device of the steps. The calories are an adjustment, not active energy.
                device = name[: -len(_ADJUSTMENT)].strip() or None
            elif minutes is not None and minutes != 0:
                sport = snake_case(name)
                seen[(day, sport)] = occurrence = seen.get((day, sport), 0) + 1
                result.samples.append(
                    workout(
                        envelope,
                        export,
                        day=day,
                        clock=None,  # the export has dates only [MFP]
                        sport=sport,
                        minutes=minutes,
                        energy_kcal=energy,
                        occurrence=occurrence,
                        source_field="Exercise Minutes",
                    )
                )
            if row_steps is not None:
                add(steps, day, _STEPS, row_steps, device=device)
        except BadRecord as exc:
            result.rejections.append(Rejection(where, str(exc)))
            if day is not None:
                short.add(day)  # its steps may be missing from the day's total
    result.samples.extend(day_samples(envelope, export, steps, short, meals=False))
    return result


def _measurement(envelope: RawPayloadReceived, export: Export) -> MappingResult:
    weight = _weight_unit(envelope)
    return map_records(export.rows, lambda row: _measurement_row(envelope, export, weight, row))


def _weight_unit(envelope: RawPayloadReceived) -> tuple[str, tuple[float, str | None]]:
    """The unit of the unlabelled `Weight` column [MFP] and how sure it is: the payload's
    `weight_unit` as given at upload (sure), or inferred by the importer from the export's
    Exercise-Summary (likely: both follow the account setting), else kg assumed. A unit other
    than kg/lb makes the whole payload unmappable: every weight in it would be wrong."""
    payload = envelope.payload if isinstance(envelope.payload, dict) else {}
    unit = payload.get("weight_unit")
    inferred = payload.get("weight_unit_inferred", False)
    if unit is None:
        return "kg", _ASSUMED_KG
    if not isinstance(unit, str) or unit not in _LOAD_COLUMN:
        raise UnmappablePayload(f"myfitnesspal weight_unit {unit!r} is neither kg nor lb")
    if not isinstance(inferred, bool):
        raise UnmappablePayload(f"myfitnesspal weight_unit_inferred {inferred!r} is not a bool")
    if inferred:
        column = _LOAD_COLUMN[unit]
        return unit, (0.9, f"unit inferred from the export's Exercise-Summary ({column} column)")
    return unit, (1.0, None)


def _measurement_row(
    envelope: RawPayloadReceived,
    export: Export,
    weight: tuple[str, tuple[float, str | None]],
    row: Any,
) -> list[Sample]:
    """`Date,Weight[,...]`: a date without a time, so each value covers its local day [MFP]."""
    values = cells(row)
    day = read_day(values, _DATE)
    start, end, offset = day_bounds(day, export.zone)
    found: list[tuple[str, str, str, Decimal, tuple[float, str | None]]] = []
    for header, text in values.items():
        name, unit = split_header(header)
        spec = _MEASUREMENTS.get(name)
        if spec is None:
            continue  # neck, waist, hips, ...: no vocabulary metric
        metric, default_unit = spec
        flag = export.quality
        if unit is None and default_unit is None:
            unit, flag = weight[0], combined(export.quality, weight[1])
        unit = checked_unit(metric, unit or default_unit, (header, text))
        found.append((header, metric, unit, number(header, text), flag))
    return [
        measurement(
            envelope,
            metric=metric,
            value=float(value),
            unit=unit,
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field=header,
            quality=flag[0],
            quality_reason=flag[1],
        )
        for header, metric, unit, value, flag in found
    ]
