"""Generic CSV rows, mapped by the user's column mapping (published by the CSV importer).

Payload: {"mapping": CsvMapping, "rows": [{"row": <line number>, "values": {header: text}}]}.
How a row's time and numbers are read lives in `healthmesh.common.csv_rows`, shared with the
gateway's import preview; this module turns what it reads into samples.
"""

from datetime import tzinfo
from typing import Any

from pydantic import ValidationError

from healthmesh.common.csv_rows import BadRow, mapping_zone, read_row
from healthmesh.common.events import CsvMapping, RawPayloadReceived
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Sample,
    UnmappablePayload,
    map_records,
    measurement,
)


def map_rows(envelope: RawPayloadReceived) -> MappingResult:
    payload = envelope.payload
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(rows, list):
        raise UnmappablePayload("csv payload needs 'mapping' and a list of 'rows'")
    try:
        mapping = CsvMapping.model_validate(payload.get("mapping"))
    except ValidationError as exc:
        raise UnmappablePayload(f"invalid csv mapping: {exc.errors()[0]['msg']}") from None
    zone = mapping_zone(mapping)
    numbered = (
        (f"row {row.get('row', '?')}" if isinstance(row, dict) else "row ?", row) for row in rows
    )
    return map_records(numbered, lambda row: _map_row(envelope, mapping, zone, row))


def _map_row(
    envelope: RawPayloadReceived, mapping: CsvMapping, zone: tzinfo, row: Any
) -> list[Sample]:
    if not isinstance(row, dict) or not isinstance(row.get("values"), dict):
        raise BadRecord("malformed row")
    try:
        found = read_row(mapping, zone, row["values"])
    except BadRow as exc:
        raise BadRecord(str(exc)) from None
    return [
        measurement(
            envelope,
            metric=value.metric,
            value=value.value,
            unit=value.unit,
            start=value.start,
            end=value.end,
            utc_offset_s=value.utc_offset_s,
            source_field=value.metric,  # the user named the metric; the header is free text
        )
        for value in found
    ]
