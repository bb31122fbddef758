"""Generic CSV rows, mapped by the user's column mapping (published by the CSV importer).

Payload: {"mapping": CsvMapping, "rows": [{"row": <line number>, "values": {header: text}}]}.
A row is a record: rejected whole if its time or any mapped value is unreadable; blank cells are
simply absent. A date-only row covers that local day; times without offset take the mapping's
timezone, else UTC; offsets in the data win.
"""

import math
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from healthmesh.common.events import CsvMapping, RawPayloadReceived
from healthmesh.normalizer.mapping import (
    MappingResult,
    Rejection,
    Sample,
    UnmappablePayload,
    measurement,
)

_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%p", "%z", "%c", "%X", "%f")


class _BadRow(ValueError):
    pass


def map_rows(envelope: RawPayloadReceived) -> MappingResult:
    payload = envelope.payload
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(rows, list):
        raise UnmappablePayload("csv payload needs 'mapping' and a list of 'rows'")
    try:
        mapping = CsvMapping.model_validate(payload.get("mapping"))
    except ValidationError as exc:
        raise UnmappablePayload(f"invalid csv mapping: {exc.errors()[0]['msg']}") from None
    zone: tzinfo = ZoneInfo(mapping.timezone) if mapping.timezone else UTC
    result = MappingResult()
    for row in rows:
        result.records_seen += 1
        where = f"row {row.get('row', '?')}" if isinstance(row, dict) else "row ?"
        try:
            result.samples.extend(_map_row(envelope, mapping, zone, row))
        except _BadRow as exc:
            result.rejections.append(Rejection(where, str(exc)))
    return result


def _map_row(
    envelope: RawPayloadReceived, mapping: CsvMapping, zone: tzinfo, row: Any
) -> list[Sample]:
    if not isinstance(row, dict) or not isinstance(row.get("values"), dict):
        raise _BadRow("malformed row")
    values: dict[str, Any] = row["values"]
    start, end = _interval(str(values.get(mapping.timestamp) or ""), mapping, zone)
    offset = start.utcoffset() or timedelta(0)
    samples = []
    for column, target in mapping.columns.items():
        text = str(values.get(column) or "").strip()
        if not text:
            continue
        samples.append(
            measurement(
                envelope,
                metric=target.metric,
                value=_number(column, text),
                unit=target.unit,
                start=start,
                end=end,
                utc_offset_s=int(offset.total_seconds()),
                source_field=target.metric,  # the user named the metric; the header is free text
            )
        )
    if not samples:
        raise _BadRow("no values in the mapped columns")
    return samples


def _number(column: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise _BadRow(f"column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise _BadRow(f"column {column!r}: {text!r} is not a finite number")
    return number


def _interval(text: str, mapping: CsvMapping, zone: tzinfo) -> tuple[datetime, datetime]:
    text = text.strip()
    if not text:
        raise _BadRow(f"column {mapping.timestamp!r} is empty")
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
            raise _BadRow(f"time {text!r} does not match format {fmt!r}") from None
        return parsed if any(d in fmt for d in _TIME_DIRECTIVES) else parsed.date()
    raise _BadRow(f"time {text!r} is not ISO 8601 (and the mapping gives no format)")
