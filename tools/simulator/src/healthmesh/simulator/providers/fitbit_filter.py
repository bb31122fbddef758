"""The `filter` of dataPoints.list: the AIP-160 subset the Google Health API accepts.

`<type>.<time field> <op> "<value>"` joined by AND. Which time field is allowed depends on the
data type's record kind (interval start, sample time, date, sleep's end); anything else is a 400
INVALID_DATA_POINT_FILTER, as at Google.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from healthmesh.simulator.providers.fitbit_data import DataType, Point, Record

_CLAUSE = re.compile(r'^\s*([a-z_.]+)\s*(>=|<=|>|<|=)\s*"([^"]*)"\s*$')
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
}
# record kind -> {filter field suffix: (Point attribute, value kind)}
_FIELDS = {
    Record.INTERVAL: {
        "interval.start_time": ("start", "physical"),
        "interval.civil_start_time": ("civil_start", "civil"),
    },
    Record.SAMPLE: {
        "sample_time.physical_time": ("start", "physical"),
        "sample_time.civil_time": ("civil_start", "civil"),
    },
    Record.DAILY: {"date": ("civil_start", "date")},
    Record.SESSION: {"interval.civil_start_time": ("civil_start", "civil")},
    Record.SLEEP: {
        "interval.end_time": ("end", "physical"),
        "interval.civil_end_time": ("civil_end", "civil"),
    },
}


class FilterError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Clause:
    attribute: str
    op: str
    value: float | datetime

    def test(self, point: Point) -> bool:
        return bool(_OPS[self.op](getattr(point, self.attribute), self.value))


def parse_filter(text: str | None, data_type: DataType) -> list[Clause]:
    if not text or not text.strip():
        return []
    if re.search(r"\bOR\b", text):
        raise FilterError("INVALID_DATA_POINT_FILTER_SYNTAX", "OR is not supported here.")
    clauses = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        match = _CLAUSE.match(part)
        if match is None:
            raise FilterError("INVALID_DATA_POINT_FILTER_SYNTAX", f"Cannot parse: {part}")
        field, op, raw = match.groups()
        prefix = data_type.snake + "."
        allowed = _FIELDS[data_type.record]
        if not field.startswith(prefix) or field[len(prefix) :] not in allowed:
            raise FilterError(
                "INVALID_DATA_POINT_FILTER",
                f"Filter field '{field}' is not supported for data type '{data_type.kebab}'.",
            )
        attribute, kind = allowed[field[len(prefix) :]]
        clauses.append(Clause(attribute, op, _value(kind, raw)))
    return clauses


def _value(kind: str, raw: str) -> float | datetime:
    try:
        if kind == "physical":
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError(raw)
            return moment.timestamp()
        if kind == "date":
            return datetime.combine(date.fromisoformat(raw), datetime.min.time())
        return datetime.fromisoformat(raw).replace(tzinfo=None)
    except ValueError:
        raise FilterError("INVALID_FILTER_FORMAT", f"Invalid time value: {raw}") from None


def day_span(clauses: list[Clause], tz: ZoneInfo, first: date, last: date) -> tuple[date, date]:
    """Local days that can hold matching points (one day of slack each side)."""
    lo, hi = first, last
    for clause in clauses:
        value = clause.value
        day = (
            datetime.fromtimestamp(value, UTC).astimezone(tz).date()
            if isinstance(value, float)
            else value.date()
        )
        if clause.op in (">", ">=", "="):
            lo = max(lo, day - timedelta(days=1))
        if clause.op in ("<", "<=", "="):
            hi = min(hi, day + timedelta(days=1))
    return lo, hi
