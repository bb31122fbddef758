"""Cronometer's CSV exports (web: Account → Export Data), each file uploaded on its own.

Which export a file is (Daily Nutrition, Food & Recipe Entries, Exercises, Biometrics) is told
by its header (`healthmesh.common.diary_exports`); the rows go out in batches of whole days
(`diary_csv`), the payload the normalizer's cronometer mapper reads. Reference:
shared/reference/providers/cronometer.md ("[CM]").
"""

from collections.abc import Iterator
from pathlib import Path

from healthmesh.connectors.importers.diary_csv import DayBatch, read_day_batches

SOURCE = "cronometer"
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")
"""`Date`/`Day` is YYYY-MM-DD; a copy re-saved by a spreadsheet has 1/27/2026 [CM]."""


def read_batches(path: Path, max_rows: int, max_bytes: int) -> Iterator[DayBatch]:
    """Yield the file's batches of whole days; raises `UnreadableFile` for a file that is not a
    Cronometer export, and where reading stopped once the rows before were yielded."""
    with path.open("rb") as raw:
        yield from read_day_batches(raw, raw, SOURCE, DATE_FORMATS, max_rows, max_bytes)
