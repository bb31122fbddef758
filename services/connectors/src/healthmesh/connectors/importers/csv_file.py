"""Generic CSV files: read row by row (never whole), cut into raw batches of rows.

The rows are published as read (header -> text), with the mapping beside them; turning text into
numbers, times and units is the normalizer's job, so a mapper fix can be replayed.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from healthmesh.common.events import CsvMapping


class UnreadableFile(ValueError):
    """The file as a whole cannot be read; `where` says where reading stopped."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass
class RowBatch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    bytes_read: int = 0


def _decoded_lines(raw: BinaryIO) -> Iterator[str]:
    """Decode line by line, so a bad byte stops the file at its own line, not a chunk earlier."""
    for number, line in enumerate(raw, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"line {number}", f"not UTF-8 text ({exc.reason})") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def read_batches(
    path: Path, mapping: CsvMapping, max_rows: int, max_bytes: int
) -> Iterator[RowBatch]:
    """Yield batches of {"row": line number, "values": {header: text}} in file order."""
    with path.open("rb") as raw:
        reader = csv.reader(_decoded_lines(raw))
        try:
            header = next(reader)
        except StopIteration:
            raise UnreadableFile("line 1", "the file is empty") from None
        except csv.Error as exc:
            raise UnreadableFile("line 1", str(exc)) from None
        missing = [c for c in (mapping.timestamp, *mapping.columns) if c not in header]
        if missing:
            raise UnreadableFile("line 1", f"columns not in the header: {', '.join(missing)}")
        mapped = {mapping.timestamp, *mapping.columns}
        wanted = [i for i, name in enumerate(header) if name in mapped]
        batch = RowBatch()
        failure: UnreadableFile | None = None
        try:
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                values = {header[i]: cells[i] if i < len(cells) else "" for i in wanted}
                batch.rows.append({"row": reader.line_num, "values": values})
                batch.size += sum(len(v) for v in values.values()) + 32
                if len(batch.rows) >= max_rows or batch.size >= max_bytes:
                    batch.bytes_read = raw.tell()
                    yield batch
                    batch = RowBatch()
        except csv.Error as exc:
            failure = UnreadableFile(f"line {reader.line_num}", str(exc))
        except UnreadableFile as exc:
            failure = exc
        if batch.rows:  # what was read before a failure is kept
            batch.bytes_read = raw.tell()
            yield batch
        if failure is not None:
            raise failure
