"""What the Cronometer and MyFitnessPal mappers share: both exports are diary CSVs of the same
shape (a payload of rows of cells per local day), so reading the payload, dates, times and
numbers with units in headers, summing a day's rows into daily samples, and workouts live here;
each source's columns and quirks stay in its own module."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import UnitError, check_unit, to_canonical
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Rejection,
    Sample,
    UnmappablePayload,
    measurement,
)

_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")  # a spreadsheet re-save writes 1/27/2026 [CM]
_TIME_FORMATS = ("%I:%M %p", "%I:%M:%S %p", "%H:%M", "%H:%M:%S")  # "9:00 AM" [CM servings]
_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)$")
NO_MEAL = "Uncategorized"
"""Our name, in details["meals"], for rows without a meal/group."""


@dataclass(frozen=True)
class Export:
    """A payload of an uploaded diary export: its zone, and its rows as (where, row)."""

    zone: tzinfo
    quality: tuple[float, str | None]
    """What every sample of it starts with: lower when the user gave no zone."""
    rows: list[tuple[str, Any]]


@dataclass(frozen=True)
class Column:
    header: str
    metric: str
    unit: str


@dataclass
class DayTotal:
    """One metric's sum over one local day, with the part of each meal."""

    column: Column
    total: Decimal = Decimal(0)
    meals: dict[str, Decimal] = field(default_factory=dict)
    devices: set[str | None] = field(default_factory=set)


def read_export(envelope: RawPayloadReceived) -> Export:
    """The payload's zone and rows; a payload without rows, or with a zone that does not
    exist, is unreadable as a whole."""
    payload = envelope.payload
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(rows, list):
        raise UnmappablePayload(f"{envelope.source} payload needs a list of 'rows'")
    zone_name = payload.get("timezone")
    zone: tzinfo = UTC
    quality: tuple[float, str | None] = (0.9, "local offset unknown")  # no zone given: UTC
    if zone_name is not None:
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise UnmappablePayload(f"unknown timezone {zone_name!r}") from None
        quality = (1.0, None)
    return Export(zone, quality, [(_where(row), row) for row in rows])


def _where(row: Any) -> str:
    return f"row {row.get('row', '?')}" if isinstance(row, dict) else "row ?"


def cells(row: Any) -> dict[str, str]:
    """The row's non-empty cells by header (a BOM and blanks stripped: files may have them).
    A row the importer could not read (a cut or garbled line) comes as {"row", "error"}."""
    if isinstance(row, dict) and isinstance(row.get("error"), str):
        raise BadRecord(row["error"])
    if not isinstance(row, dict) or not isinstance(row.get("values"), dict):
        raise BadRecord("malformed row: no 'values'")
    found = {}
    for header, text in row["values"].items():
        text = "" if text is None else str(text).strip()
        if text:
            found[str(header).lstrip("\ufeff").strip()] = text
    return found


def cell(values: dict[str, str], *names: str) -> tuple[str, str] | None:
    """(header, text) of the first of `names` present, matched case-insensitively."""
    by_lower = {header.lower(): header for header in values}
    for name in names:
        header = by_lower.get(name.lower())
        if header is not None:
            return header, values[header]
    return None


def split_header(header: str) -> tuple[str, str | None]:
    """ "Energy (kcal)" → ("energy", "kcal"); "B1 (Thiamine) (mg)" → ("b1 (thiamine)", "mg")."""
    match = _HEADER_UNIT.match(header.strip())
    if match is None:
        return header.strip().lower(), None
    return match["name"].strip().lower(), match["unit"].strip()


def number(header: str, text: str) -> Decimal:
    """A cell's number, exactly (sums of 2-decimal cells stay exact)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadRecord(f"column {header!r}: {text!r} is not a number") from None
    if not value.is_finite():
        raise BadRecord(f"column {header!r}: {text!r} is not a finite number")
    return value


def read_number(values: dict[str, str], *names: str) -> Decimal | None:
    found = cell(values, *names)
    return None if found is None else number(*found)


def read_day(values: dict[str, str], names: Iterable[str]) -> date:
    names = tuple(names)
    found = cell(values, *names)
    if found is None:
        raise BadRecord(f"column {names[0]!r} is missing or empty")
    header, text = found
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise BadRecord(f"column {header!r}: {text!r} is not a date")


def read_time(values: dict[str, str], name: str) -> time | None:
    found = cell(values, name)
    if found is None:
        return None
    header, text = found
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text.upper(), fmt).time()
        except ValueError:
            pass
    raise BadRecord(f"column {header!r}: {text!r} is not a time of day")


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime, int]:
    """The local calendar day in `zone` (23 or 25 h across a DST change) and its offset at
    midnight: the zone's real offset for that date."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start, end, utc_offset(start)


def utc_offset(moment: datetime) -> int:
    offset = moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def combined(*flags: tuple[float, str | None]) -> tuple[float, str | None]:
    """The lowest quality, with every reason for doubt."""
    reasons = [reason for quality, reason in flags if reason and quality < 1]
    return min(quality for quality, _ in flags), "; ".join(reasons) or None


def checked_unit(metric: str, unit: str | None, where: tuple[str, str] | None) -> str:
    """A unit from the data, refused (the row alone) when it cannot express `metric`."""
    header = where[0] if where else "Unit"
    if unit is None:
        raise BadRecord(f"column {header!r} is empty: no unit for {metric}")
    try:
        check_unit(metric, unit)
    except UnitError as exc:
        raise BadRecord(f"column {header!r}: {exc}") from None
    return unit


def nutrient_columns(
    values: dict[str, str],
    nutrients: dict[str, tuple[str, str | None]],
    unit_quirks: dict[tuple[str, str], str],
) -> list[Column]:
    """The row's cells that are nutrition metrics, with the unit their header gives (or the
    export's convention). A header unit that cannot express its metric makes the whole file
    unreadable (every row has that column)."""
    columns = []
    taken: set[str] = set()
    for header in values:
        name, unit = split_header(header)
        spec = nutrients.get(name)
        if spec is None or spec[0] in taken:
            continue  # vitamins, amino acids, Net Carbs, ...: no vocabulary metric
        metric, default_unit = spec
        unit = unit or default_unit
        if unit is None:
            raise UnmappablePayload(f"column {header!r}: no unit in the header")
        unit = unit_quirks.get((metric, unit), unit)
        try:
            check_unit(metric, unit)
        except UnitError as exc:
            raise UnmappablePayload(f"column {header!r}: {exc}") from None
        taken.add(metric)
        columns.append(Column(header, metric, unit))
    return columns


def daily_nutrition(
    envelope: RawPayloadReceived,
    export: Export,
    *,
    nutrients: dict[str, tuple[str, str | None]],
    day: tuple[str, ...],
    meal: str | None,
    unit_quirks: dict[tuple[str, str], str],
) -> MappingResult:
    """Nutrition rows summed into one sample per metric per local day. `meal` names the
    column whose value splits the day into details["meals"]; absent from the header, none."""
    result = MappingResult()
    totals: dict[tuple[date, str], DayTotal] = {}
    short: set[date] = set()
    has_meals = False
    for where, row in export.rows:
        result.records_seen += 1
        try:
            values = cells(row)
            row_day = read_day(values, day)
        except BadRecord as exc:
            result.rejections.append(Rejection(where, str(exc)))
            continue
        try:
            entries = [
                (c, number(c.header, values[c.header]))
                for c in nutrient_columns(values, nutrients, unit_quirks)
            ]
        except BadRecord as exc:
            result.rejections.append(Rejection(where, str(exc)))
            short.add(row_day)
            continue
        meal_name = None
        if meal is not None and isinstance(row, dict) and _has_column(row, meal):
            has_meals = True
            found = cell(values, meal)
            meal_name = found[1] if found else NO_MEAL
        for column, value in entries:
            add(totals, row_day, column, value, meal_name)
    result.samples.extend(day_samples(envelope, export, totals, short, meals=has_meals))
    return result


def _has_column(row: dict[str, Any], name: str) -> bool:
    values = row.get("values")
    return isinstance(values, dict) and any(
        str(h).lstrip("\ufeff").strip().lower() == name.lower() for h in values
    )


def add(
    totals: dict[tuple[date, str], DayTotal],
    day: date,
    column: Column,
    value: Decimal,
    meal: str | None = None,
    device: str | None = None,
) -> None:
    total = totals.setdefault((day, column.metric), DayTotal(column))
    total.total += value
    total.devices.add(device)
    if meal is not None:
        total.meals[meal] = total.meals.get(meal, Decimal(0)) + value


def day_samples(
    envelope: RawPayloadReceived,
    export: Export,
    totals: dict[tuple[date, str], DayTotal],
    short: set[date],
    *,
    meals: bool,
) -> list[Sample]:
    """One sample per (day, metric): the local day, source_record_id "" (the day is the key,
    so any file giving that day's total upserts the same sample). A day with a rejected row
    may be short: flagged."""
    samples = []
    for (day, metric), total in sorted(totals.items()):
        start, end, offset = day_bounds(day, export.zone)
        flags = [export.quality]
        if day in short:
            flags.append((0.5, "a row of this day was rejected: the total may be short"))
        quality, reason = combined(*flags)
        unit = total.column.unit
        details: dict[str, JsonValue] | None = None
        if meals:
            details = {
                "meals": {
                    name: to_canonical(metric, float(value), unit)
                    for name, value in total.meals.items()
                }
            }
        devices = total.devices
        samples.append(
            measurement(
                envelope,
                metric=metric,
                value=float(total.total),
                unit=unit,
                start=start,
                end=end,
                utc_offset_s=offset,
                source_field=total.column.header,
                device=next(iter(devices)) if len(devices) == 1 else None,
                details=details,
                quality=quality,
                quality_reason=reason,
            )
        )
    return samples


def snake_case(name: str) -> str:
    """An exercise name as a sport id: '"Walking, 3.5 mph"' → "walking_3_5_mph"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "other"


def workout(
    envelope: RawPayloadReceived,
    export: Export,
    *,
    day: date,
    clock: time | None,
    sport: str,
    minutes: Decimal,
    energy_kcal: Decimal | None,
    occurrence: int,
    source_field: str,
) -> Sample:
    """A diary exercise as a `workout`: from its time (or, without one, the start of its day,
    flagged) for its minutes. The diary has no id: the n-th `sport` of a day is its record id
    (stable across re-exports of the same day, unlike a line number)."""
    if minutes < 0:
        raise BadRecord(f"column {source_field!r}: negative duration {minutes}")
    start = datetime.combine(day, clock or time(), export.zone)
    flags = [export.quality]
    if clock is None:
        flags.append((0.9, "start time unknown: placed at the start of its day"))
    quality, reason = combined(*flags)
    end = start.astimezone(UTC) + timedelta(minutes=float(minutes))
    details: dict[str, JsonValue] = {"sport": sport}
    if energy_kcal is not None:
        details["energy_kcal"] = to_canonical("active_energy", float(energy_kcal), "kcal")
    return measurement(
        envelope,
        metric="workout",
        value=float(minutes),
        unit="min",
        start=start,
        end=end,
        utc_offset_s=utc_offset(start),
        source_field=source_field,
        source_record_id=f"{sport}#{occurrence}",
        details=details,
        quality=quality,
        quality_reason=reason,
    )
