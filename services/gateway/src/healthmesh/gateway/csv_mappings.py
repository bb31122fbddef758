"""Generic CSV mappings as the client handles them: inline or from a saved preset, and a preview
of a file's first rows as the import would take them (nothing stored or queued).

The preview reads each row with `healthmesh.common.csv_rows`, the code the normalizer maps rows
with, and converts with `healthmesh.common.units`, so it shows what the import will store.
"""

import csv
import io
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import asyncpg
import orjson
from pydantic import ValidationError

from healthmesh.common.csv_rows import BadRow, RowValue, mapping_zone, read_row
from healthmesh.common.events import CsvMapping
from healthmesh.common.http import ApiError
from healthmesh.common.units import to_canonical
from healthmesh.common.vocabulary import metric_def
from healthmesh.gateway import db

MAX_PRESETS = 100
PRESET_NAME = r"^[\w .()-]{1,100}$"
"""Letters, digits, spaces and `_ . ( ) -`: safe in a path, readable in a list."""
PREVIEW_ROWS = 20
MAX_PREVIEW_ROWS = 100
PREVIEW_HEAD_BYTES = 1 << 20
"""What a preview keeps of the uploaded file: far more than 100 rows of any real export."""


def parse_mapping(text: str | None) -> CsvMapping:
    """The `mapping` form field: JSON, checked as a saved preset is."""
    if not text:
        raise ApiError(422, "invalid_request", "kind=csv needs a 'mapping' (JSON) or a 'preset'")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ApiError(422, "invalid_mapping", "'mapping' is not valid JSON") from None
    return check_mapping(data)


def check_mapping(data: object) -> CsvMapping:
    """The mapping, or 422 with the first reason (for the form field and saved presets alike)."""
    try:
        return CsvMapping.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = " ".join(["mapping", ".".join(str(p) for p in first["loc"])]).strip()
        raise ApiError(422, "invalid_mapping", f"{where}: {first['msg']}") from None


def check_csv_header(path: Path, mapping: CsvMapping) -> None:
    """Refuse a file whose header lacks a column the mapping names (nothing gets queued)."""
    with path.open("rb") as raw:
        head = raw.read(64 * 1024)
    if not head.strip():
        raise ApiError(422, "unreadable_file", "the file is empty")
    try:
        first_line = head.decode("utf-8-sig").splitlines()[0]
    except UnicodeDecodeError:
        raise ApiError(422, "unreadable_file", "the file is not UTF-8 text") from None
    header = next(csv.reader(io.StringIO(first_line)), [])
    missing = [c for c in (mapping.timestamp, *mapping.columns) if c not in header]
    if missing:
        raise ApiError(
            422,
            "invalid_mapping",
            f"the mapping names columns the file does not have: {', '.join(missing)} "
            f"(header: {', '.join(header)})",
        )


async def form_mapping(fields: dict[str, str], pool: asyncpg.Pool, user_id: UUID) -> CsvMapping:
    """The upload's mapping: the `mapping` field (JSON), or the caller's preset named `preset`."""
    name = fields.get("preset")
    if not name:
        return parse_mapping(fields.get("mapping"))
    if fields.get("mapping"):
        raise ApiError(422, "invalid_request", "send either 'mapping' or 'preset', not both")
    saved = await db.get_csv_preset(pool, user_id, name)
    if saved is None:
        raise ApiError(
            422, "unknown_preset", f"you have no preset {name!r}; GET /v1/csv-presets lists yours"
        )
    return check_mapping(saved["mapping"])


def preset_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "mapping": row["mapping"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


class _Undecodable(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


def preview_rows(path: Path, mapping: CsvMapping, limit: int, *, cut: bool) -> list[dict[str, Any]]:
    """The first `limit` non-blank rows, numbered by line as the import's errors are: each with
    its samples (canonical unit, UTC times) or the reason the import would reject it.

    `cut` says `path` holds only the head of the upload: its last line may be incomplete and is
    left out. Reading stops at `limit` rows, as the import stops at a line it cannot decode.
    """
    zone = mapping_zone(mapping)
    shown: list[dict[str, Any]] = []
    with path.open("rb") as raw:
        reader = csv.reader(_lines(raw, cut))
        try:
            header = next(reader, [])
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                try:
                    found = read_row(mapping, zone, dict(zip(header, cells, strict=False)))
                except BadRow as exc:
                    shown.append({"row": reader.line_num, "reason": str(exc)})
                else:
                    shown.append({"row": reader.line_num, "samples": [_sample(v) for v in found]})
                if len(shown) >= limit:
                    break
        except _Undecodable as exc:
            shown.append({"row": exc.line, "reason": f"{exc}; the import stops at this line"})
        except csv.Error as exc:
            shown.append({"row": reader.line_num, "reason": f"{exc}; the import stops here"})
    return shown


def _lines(raw: BinaryIO, cut: bool) -> Iterator[str]:
    """Decoded line by line, as the importer reads: a BOM dropped, a bad byte stops the file."""
    for number, line in enumerate(raw, start=1):
        if cut and not line.endswith(b"\n"):
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Undecodable(number, f"not UTF-8 text ({exc.reason})") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _sample(value: RowValue) -> dict[str, Any]:
    return {
        "metric": value.metric,
        "value": to_canonical(value.metric, value.value, value.unit),
        "unit": metric_def(value.metric).unit,
        "start": value.start.astimezone(UTC).isoformat(),
        "end": value.end.astimezone(UTC).isoformat(),
        "utc_offset_s": value.utc_offset_s,
    }
