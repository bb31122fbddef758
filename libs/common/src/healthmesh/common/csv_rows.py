"""One generic-CSV row read by its column mapping: its time span and its numbers.

Shared by the normalizer (which turns the values into samples) and the gateway's import preview
(which shows them before anything is queued), so both read a row the same way. A row is a
record: rejected whole if its time or any mapped value is unreadable; blank cells are simply
absent. A date-only row covers that local day; times without offset take the mapping's timezone,
else UTC; offsets in the data win.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from healthmesh.common.events import CsvMapping

_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%p", "%z", "%c", "%X", "%f")


class BadRow(ValueError):
    """The row cannot be read; it is rejected alone, with this reason."""


@dataclass(frozen=True, slots=True)
class RowValue:
    """One mapped value of a row, still in the column's unit."""

    metric: str
    value: float
    unit: str
    start: datetime
    end: datetime
    utc_offset_s: int


def mapping_zone(mapping: CsvMapping) -> tzinfo:
    return ZoneInfo(mapping.timezone) if mapping.timezone else UTC


def read_row(mapping: CsvMapping, zone: tzinfo, values: Mapping[str, object]) -> list[RowValue]:
    """The row's non-blank mapped values, each with the row's time span; `values` is
    header -> cell text, `zone` is `mapping_zone(mapping)`."""
    start, end = _interval(str(values.get(mapping.timestamp) or ""), mapping, zone)
    offset = int((start.utcoffset() or timedelta(0)).total_seconds())
    found = []
    for column, target in mapping.columns.items():
        text = str(values.get(column) or "").strip()
        if text:
            found.append(
                RowValue(target.metric, _number(column, text), target.unit, start, end, offset)
            )
    if not found:
        raise BadRow("no values in the mapped columns")
    return found


def _number(column: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise BadRow(f"column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise BadRow(f"column {column!r}: {text!r} is not a finite number")
    return number


def _interval(text: str, mapping: CsvMapping, zone: tzinfo) -> tuple[datetime, datetime]:
    text = text.strip()
    if not text:
        raise BadRow(f"column {mapping.timestamp!r} is empty")
    parsed = _parse_time(text, mapping.format)
    if isinstance(parsed, datetime):
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
        return moment, moment
    start = datetime.combine(parsed, time(), zone)
    end = datetime.combine(parsed + timedelta(days=1), time(), zone)
    return start, end


def _parse_time(text: str, fmt: str | None) -> date | datetime:
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    if fmt:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            raise BadRow(f"time {text!r} does not match format {fmt!r}") from None
        return parsed if any(d in fmt for d in _TIME_DIRECTIVES) else parsed.date()
    raise BadRow(f"time {text!r} is not ISO 8601 (and the mapping gives no format)")
