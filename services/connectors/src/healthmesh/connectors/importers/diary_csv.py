"""Nutrition-diary CSV exports (Cronometer, MyFitnessPal) read row by row into raw batches of
whole days; what the two importers share.

The normalizer sums a day's rows into that day's totals within one payload, so a batch is cut
only where a new day starts: a day's rows never straddle two batches (a day longer than the
batch target makes a bigger batch rather than be split). Rows go out as read, every column kept
(`{"row": line number, "values": {header: text}}`), so a mapper fix can be replayed from the raw
archive. A row the reader cannot trust goes out as `{"row", "error"}` and the normalizer rejects
it alone with that reason: a line whose cells do not match the header (cut short or garbled),
or a row of a day whose other rows already went out in an earlier batch (the file is not in
date order), which would otherwise overwrite that day's total with a part of it.
"""

import csv
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

import orjson

from healthmesh.common.diary_exports import DiaryExport, NotAnExport, column_name, recognise
from healthmesh.connectors.importers.csv_file import UnreadableFile


@dataclass
class DayBatch:
    export: DiaryExport
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    bytes_read: int = 0
    """How far into the uploaded file (the zip, when zipped) reading had got."""


def _decoded_lines(raw: IO[bytes]) -> Iterator[str]:
    """Decode line by line, so a bad byte stops the file at its own line (and a damaged zip
    member at the line it was being read for)."""
    number = 0
    try:
        for number, line in enumerate(raw, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UnreadableFile(f"line {number}", f"not UTF-8 text ({exc.reason})") from None
            yield text.removeprefix("\ufeff") if number == 1 else text
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UnreadableFile(f"line {number + 1}", f"the file cannot be read ({exc})") from None


def read_day_batches(
    csv_file: IO[bytes],
    upload: IO[bytes],
    source: str,
    date_formats: tuple[str, ...],
    max_rows: int,
    max_bytes: int,
) -> Iterator[DayBatch]:
    """Yield batches of whole days in file order. Raises `UnreadableFile` for a file that is not
    one of `source`'s exports, and once every row before an unreadable place was yielded."""
    reader = csv.reader(_decoded_lines(csv_file))
    try:
        header = next(reader)
        export = recognise(source, header)
    except StopIteration:
        raise UnreadableFile("line 1", "the file is empty") from None
    except (csv.Error, NotAnExport) as exc:
        raise UnreadableFile("line 1", str(exc)) from None
    day_at = next(i for i, h in enumerate(header) if column_name(h) == export.day_column.lower())
    batch = DayBatch(export)
    current: date | None = None
    pending: set[date] = set()
    published: set[date] = set()
    failure: UnreadableFile | None = None
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            day = _day(cells, day_at, date_formats)
            if day is not None and day != current:
                current = day
                if len(batch.rows) >= max_rows or batch.size >= max_bytes:
                    batch.bytes_read = upload.tell()
                    yield batch
                    published |= pending
                    pending = set()
                    batch = DayBatch(export)
            row = _row(reader.line_num, header, cells, day, published)
            if day is not None:
                pending.add(day)
            batch.rows.append(row)
            batch.size += len(orjson.dumps(row))
    except csv.Error as exc:
        failure = UnreadableFile(f"line {reader.line_num}", str(exc))
    except UnreadableFile as exc:
        failure = exc
    if batch.rows:  # what was read before a failure is kept
        batch.bytes_read = upload.tell()
        yield batch
    if failure is not None:
        raise failure


def _day(cells: list[str], at: int, formats: tuple[str, ...]) -> date | None:
    """The row's day, or None when unreadable (the normalizer rejects that row, naming it)."""
    text = cells[at].strip() if at < len(cells) else ""
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    return None


def _row(
    line: int, header: list[str], cells: list[str], day: date | None, published: set[date]
) -> dict[str, Any]:
    extra = cells[len(header) :]
    if len(cells) < len(header) or any(cell.strip() for cell in extra):
        return {
            "row": line,
            "error": f"{len(cells)} cells where the header has {len(header)}: "
            "the line is cut short or garbled",
        }
    if day is not None and day in published:
        return {
            "row": line,
            "error": f"rows of {day.isoformat()} are not together in the file and the earlier "
            "ones were already imported, so this one is left out: sort the file by date",
        }
    return {"row": line, "values": dict(zip(header, cells, strict=False))}
